//! A headless Hearth participant. It speaks the signaling protocol over a real WebSocket and
//! sends and receives real RTP over webrtc-rs peer connections, exactly as a browser tab would,
//! so end-to-end tests and the load tool exercise the server through its public edges only.
//!
//! - [`Signal`]: a raw signaling socket (send any text, read typed messages): for protocol and
//!   bad-input tests.
//! - [`Participant`]: joins, publishes synthetic Opus and VP8 or H.264 ([`VideoCodec`]), answers
//!   subscribe offers and records what it receives.
//! - [`payload`]: synthetic media whose every packet names its sender, carries its send time
//!   and a checksum; receivers count loss and one-way latency ([`LatencyHistogram`]) cheaply,
//!   for the load tool (`crates/bench`).

mod clip;
mod codec;
mod driver;
mod frames;
mod participant;
pub mod payload;
mod peer;
mod publish;
mod reconnect;
mod shape;
mod signal;
mod state;
mod stats;

pub use clip::{Clip, ClipFrame, ClipSending};
pub use codec::VideoCodec;
pub use frames::{FREEZE, FrameTracker};
pub use participant::{ClientError, JoinOptions, Key, Participant};
pub use publish::PublishOptions;
pub use signal::{Signal, SignalError};
pub use state::{Received, Snapshot, Traffic};
pub use stats::{LatencyHistogram, now_us};
