//! The recorder. It is a subscriber like any other, fed in-process: each recorded track's
//! packets are put back in order, reassembled into frames and written, without transcoding, to
//! one crash-safe WebM file per stream (Matroska for H.264). A manifest beside the files says
//! where each stream starts on the recording's timeline and what happened when (joins, leaves,
//! chat), so a replay can show the session as it was.
//!
//! Nothing here knows signaling or WebRTC connections: the server feeds packets through
//! [`StreamFeed`]s and room events through [`Recorder`]. Time is passed in everywhere but the
//! worker thread, which reads the clock for all of them.

mod bitstream;
pub mod clock;
pub mod depacketize;
pub mod export;
pub mod manifest;
mod recording;
mod recover;
pub mod reorder;
mod stream;
mod worker;

pub use manifest::{Manifest, RecordingState, StreamEntry, is_safe_file_name};
pub use recording::{Presence, Recording, RecordingSetup};
pub use recover::{Recovered, recover};
pub use stream::SEEK_KEYFRAME_INTERVAL;
pub use worker::{KeyframeRequester, Outcome, Recorder, RecorderGone, StreamFeed, describe};
