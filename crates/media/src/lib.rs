//! The webrtc-rs adapter. Peer connections, the task that reads a publisher's track, the task
//! that writes each subscriber's copy. Decisions (what to forward, how to renumber, when to ask
//! for a keyframe) come from `hearth-core`; this crate only moves packets and SDP.
//!
//! Each participant has two connections (see `docs/protocol.md`): a [`Publisher`] that answers
//! the client's offers and yields [`PublishedTrack`]s, and a [`Subscriber`] that makes offers
//! carrying one [`DownTrack`] per forwarded track.

mod allocation;
mod codecs;
mod config;
pub mod congestion;
mod diversion;
mod error;
mod fanout;
mod interceptor;
mod levels;
pub use interceptor::{RtcpTap, is_keyframe_request, sender_report};
pub mod pausing;
mod peer;
mod publisher;
pub mod sdp;
mod simulcast;
mod stats;
mod subscriber;

pub use codecs::codec_for;
pub use config::{MediaConfig, PortRange};
pub use error::MediaError;
pub use fanout::{PacketTap, PublishedTrack, TapHandle};
pub use peer::{MediaEvent, PeerFactory, connection_parts};
pub use publisher::Publisher;
pub use stats::MediaStats;
pub use subscriber::{DownTrack, Subscriber};
