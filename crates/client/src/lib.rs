//! A headless Hearth participant. It speaks the signaling protocol over a real WebSocket and
//! sends and receives real RTP over webrtc-rs peer connections, exactly as a browser tab would,
//! so end-to-end tests and the load tool exercise the server through its public edges only.
//!
//! - [`Signal`]: a raw signaling socket (send any text, read typed messages): for protocol and
//!   bad-input tests.
//! - [`Participant`]: joins, publishes synthetic Opus and VP8 or H.264 ([`VideoCodec`]), answers
//!   subscribe offers and records what it receives.
//! - [`payload`]: synthetic media whose every packet names its sender and carries a checksum.

mod codec;
mod driver;
mod participant;
pub mod payload;
mod peer;
mod publish;
mod signal;
mod state;

pub use codec::VideoCodec;
pub use participant::{ClientError, Key, Participant};
pub use publish::PublishOptions;
pub use signal::{Signal, SignalError};
pub use state::{Received, Snapshot};
