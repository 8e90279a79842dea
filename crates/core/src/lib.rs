//! The parts of Hearth that decide rather than do: who is in a room, what a subscriber's next
//! packet looks like, whether a keyframe request goes upstream. Nothing here touches a socket, a
//! task or the clock: time comes in as an `Instant` argument, so every decision is a plain
//! function with plain unit tests.

pub mod forwarder;
pub mod gaps;
pub mod keyframe;
pub mod layers;
pub mod permissions;
pub mod rate;
pub mod room;
pub mod speaker;

pub use forwarder::{Decision, Forwarder, PacketMeta, Rewrite};
pub use gaps::{Arrival, SequenceGaps};
pub use keyframe::{KeyframeThrottle, is_keyframe, vp8_keyframe_size};
pub use layers::{Demand, Headroom, Layer, allocate};
pub use permissions::{Action, allowed, allowed_on, hears_about};
pub use rate::TokenBucket;
pub use room::{JoinError, Room};
pub use speaker::{LevelSample, SpeakerDetector, Speakers};
