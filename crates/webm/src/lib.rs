//! Crash-safe, single-track WebM/Matroska files for Hearth's recorder.
//!
//! The process writing a recording may be killed at any moment, so the file layout is
//! chosen so that every byte already written stays recoverable:
//!
//! - the whole header (EBML header, Segment start, Info, Tracks) is written by
//!   [`WebmWriter::create`] before it returns;
//! - the Segment keeps the "unknown" size until [`WebmWriter::finish`];
//! - frames are buffered per cluster and each cluster is appended with one write, with
//!   its size known and a CRC-32 first child, so a torn cluster is always detectable.
//!   A cluster closes before a video keyframe, once it spans 1000 ms of media or holds
//!   2 MiB, and after 1 s of wall time ([`WebmWriter::tick`]), which bounds what a
//!   crash can lose;
//! - space for the SeekHead and the Duration is reserved up front (Void elements), so
//!   finishing only overwrites bytes in place and never moves anything.
//!
//! [`repair`] turns a file left by a crash into a finished one (cutting the torn tail),
//! sharing the finishing code with the writer. [`read_file`] reads files back.
//!
//! Nothing here reads the clock: callers pass `now`, so tests drive time by hand.

mod ebml;
mod error;
mod finish;
mod reader;
mod repair;
mod scan;
mod writer;

pub use error::WebmError;
pub use reader::read_file;
pub use repair::repair;
pub use writer::WebmWriter;

/// What the one track of a file carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackCodec {
    /// VP8 video (`V_VP8`).
    Vp8,
    /// VP9 video (`V_VP9`).
    Vp9,
    /// H.264 in Matroska (`V_MPEG4/ISO/AVC`); `avcc` is the AVCDecoderConfigurationRecord
    /// (CodecPrivate). Frames are length-prefixed (4-byte) NAL units.
    H264 {
        /// The AVCDecoderConfigurationRecord.
        avcc: Vec<u8>,
    },
    /// Opus, 48 kHz; `channels` 1 or 2. The writer builds the OpusHead itself.
    Opus {
        /// 1 (mono) or 2 (stereo).
        channels: u8,
    },
}

impl TrackCodec {
    /// The Matroska CodecID: "V_VP8", "V_VP9", "V_MPEG4/ISO/AVC" or "A_OPUS".
    pub fn codec_id(&self) -> &'static str {
        match self {
            TrackCodec::Vp8 => "V_VP8",
            TrackCodec::Vp9 => "V_VP9",
            TrackCodec::H264 { .. } => "V_MPEG4/ISO/AVC",
            TrackCodec::Opus { .. } => "A_OPUS",
        }
    }

    /// True for the video codecs.
    pub fn is_video(&self) -> bool {
        !matches!(self, TrackCodec::Opus { .. })
    }

    /// "webm" for VP8/VP9/Opus, "mkv" for H.264 (WebM does not allow H.264).
    pub fn file_extension(&self) -> &'static str {
        match self {
            TrackCodec::H264 { .. } => "mkv",
            _ => "webm",
        }
    }

    /// The EBML DocType matching [`TrackCodec::file_extension`].
    pub(crate) fn doc_type(&self) -> &'static str {
        match self {
            TrackCodec::H264 { .. } => "matroska",
            _ => "webm",
        }
    }
}

/// The track a file will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// The codec and its parameters.
    pub codec: TrackCodec,
    /// Video width in pixels; must be > 0 for video, ignored for audio.
    pub width: u32,
    /// Video height in pixels; must be > 0 for video, ignored for audio.
    pub height: u32,
}

/// What a finished (or repaired) file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// The Duration written into the file, in ms (0 when there are no frames).
    pub duration_ms: u64,
    /// Frames in the file.
    pub frames: u64,
    /// Keyframes among them (every audio frame counts as one).
    pub keyframes: u64,
    /// Final file size in bytes.
    pub bytes: u64,
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairReport {
    /// The file as it is now.
    pub summary: FileSummary,
    /// Bytes cut off the torn tail.
    pub truncated_bytes: u64,
    /// The file was already cleanly finished (nothing changed).
    pub was_complete: bool,
}

/// One frame read back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Presentation time in ms since the file's start.
    pub ts_ms: u64,
    /// The block's keyframe flag (always set for audio).
    pub keyframe: bool,
    /// The frame's bytes, exactly as passed to [`WebmWriter::write_frame`].
    pub data: Vec<u8>,
}

/// What a file holds (used by tests and by the export code).
#[derive(Debug, Clone, PartialEq)]
pub struct FileContents {
    /// The track's CodecID, e.g. "V_VP8".
    pub codec_id: String,
    /// The track's CodecPrivate, if any (avcC for H.264, OpusHead for Opus).
    pub codec_private: Option<Vec<u8>>,
    /// Video width (0 for audio).
    pub width: u32,
    /// Video height (0 for audio).
    pub height: u32,
    /// Audio channels (0 for video).
    pub channels: u8,
    /// The Duration element in ms, if the file was finished.
    pub duration_ms: Option<f64>,
    /// Every frame of every complete cluster, in file order.
    pub frames: Vec<Frame>,
    /// Whether a Cues element was found.
    pub has_cues: bool,
}

/// Largest element the reader accepts; anything claiming more is treated as garbage,
/// so a torn size field cannot make us allocate gigabytes.
pub const MAX_ELEMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Largest frame [`WebmWriter::write_frame`] accepts (its cluster must stay readable).
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;
