//! One recorded stream: packets in, reordered, reassembled into frames, gated on keyframes and
//! written to its own file.

use crate::bitstream::{avc_config, vp8_dimensions};
use crate::clock::{Placement, StreamClock};
use crate::depacketize::{Assembled, Codec, FrameAssembler};
use crate::manifest::StreamEntry;
use crate::reorder::{Ordered, Reorder};
use hearth_proto::{MediaKind, TrackInfo, TrackSource};
use hearth_webm::{TrackCodec, TrackSpec, WebmError, WebmWriter};
use rtc::rtp;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most one keyframe request per this interval from one recorded stream (the publisher's
/// own throttle applies on top).
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

/// A keyframe at least this often keeps replay seeking quick: a seek decodes from the keyframe
/// before the target, and browsers send one only when asked.
pub const SEEK_KEYFRAME_INTERVAL: Duration = Duration::from_secs(10);

/// Records one published track into one file.
pub struct StreamRecorder {
    id: String,
    file: String,
    path: PathBuf,
    info: TrackInfo,
    codec: Codec,
    /// When the recording started: arrival times count from it.
    origin: Instant,
    /// The recording's wall-clock start (ms since the epoch), for the file's date.
    origin_unix_ms: i64,
    reorder: Reorder,
    assembler: FrameAssembler,
    clock: StreamClock,
    writer: Option<WebmWriter>,
    /// Video waits for a keyframe: at the start and after any loss.
    waiting_keyframe: bool,
    /// When the first frame arrived, in ms since the recording started.
    arrival_ms: Option<f64>,
    sender_report: Option<(u64, u32)>,
    last_keyframe: Option<Instant>,
    last_request: Option<Instant>,
    gaps: u64,
    size: Option<(u32, u32)>,
    /// What the last writer wrote, once finished.
    finished: Option<hearth_webm::FileSummary>,
    ordered: Vec<Ordered>,
    assembled: Vec<Assembled>,
}

impl std::fmt::Debug for StreamRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecorder")
            .field("id", &self.id)
            .field("file", &self.file)
            .finish()
    }
}

impl StreamRecorder {
    /// A recorder for `info` writing into `dir`, or `None` when its codec cannot be recorded.
    /// `id` names the stream within its recording and its file.
    pub fn new(
        id: String,
        dir: &Path,
        info: TrackInfo,
        origin: Instant,
        origin_unix_ms: i64,
    ) -> Option<Self> {
        let codec = Codec::from_mime(&info.codec)?;
        let ext = match codec {
            Codec::H264 => "mkv",
            Codec::Vp8 | Codec::Opus => "webm",
        };
        let source = match info.source {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
        };
        let file = format!("{id}-{source}.{ext}");
        let rate = if codec.is_video() { 90_000 } else { 48_000 };
        Some(Self {
            path: dir.join(&file),
            id,
            file,
            info,
            codec,
            origin,
            origin_unix_ms,
            reorder: Reorder::new(),
            assembler: FrameAssembler::new(codec),
            clock: StreamClock::new(rate),
            writer: None,
            waiting_keyframe: codec.is_video(),
            arrival_ms: None,
            sender_report: None,
            last_keyframe: None,
            last_request: None,
            gaps: 0,
            size: None,
            finished: None,
            ordered: Vec::new(),
            assembled: Vec::new(),
        })
    }

    /// The track this records.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// Takes one packet that arrived at `now`. Returns whether the publisher should be asked
    /// for a keyframe.
    pub fn push(&mut self, packet: rtp::Packet, now: Instant) -> Result<bool, WebmError> {
        let mut ordered = std::mem::take(&mut self.ordered);
        self.reorder.push(packet, now, &mut ordered);
        let result = self.consume(&mut ordered, now);
        self.ordered = ordered;
        result?;
        Ok(self.wants_keyframe(now))
    }

    /// Lets time pass: releases packets that waited too long and writes out a cluster that
    /// has been open for a second. Returns whether a keyframe should be requested.
    pub fn tick(&mut self, now: Instant) -> Result<bool, WebmError> {
        let mut ordered = std::mem::take(&mut self.ordered);
        self.reorder.tick(now, &mut ordered);
        let result = self.consume(&mut ordered, now);
        self.ordered = ordered;
        result?;
        if let Some(writer) = &mut self.writer {
            writer.tick(now)?;
        }
        Ok(self.wants_keyframe(now))
    }

    /// Notes the publisher's latest sender report for this track.
    pub fn sender_report(&mut self, ntp_time: u64, rtp_time: u32) {
        self.sender_report = Some((ntp_time, rtp_time));
    }

    fn consume(&mut self, ordered: &mut Vec<Ordered>, now: Instant) -> Result<(), WebmError> {
        let mut assembled = std::mem::take(&mut self.assembled);
        for item in ordered.drain(..) {
            self.assembler.push(item, &mut assembled);
        }
        let mut result = Ok(());
        for item in assembled.drain(..) {
            if result.is_ok() {
                result = self.frame(item, now);
            }
        }
        self.assembled = assembled;
        result
    }

    fn frame(&mut self, item: Assembled, now: Instant) -> Result<(), WebmError> {
        let frame = match item {
            Assembled::Lost => {
                if self.codec.is_video() && self.writer.is_some() && !self.waiting_keyframe {
                    self.gaps += 1;
                    self.waiting_keyframe = true;
                }
                return Ok(());
            }
            Assembled::Frame(frame) => frame,
        };
        if self.waiting_keyframe && !frame.keyframe {
            return Ok(());
        }
        if self.writer.is_none() {
            let Some(spec) = self.spec(&frame.data) else {
                // A keyframe we cannot describe (H.264 without its parameter sets): wait for
                // another.
                return Ok(());
            };
            let arrival_ms = now.saturating_duration_since(self.origin).as_secs_f64() * 1000.0;
            let date = self.origin_unix_ms + arrival_ms as i64;
            self.writer = Some(WebmWriter::create(&self.path, &spec, date, now)?);
            self.arrival_ms = Some(arrival_ms);
        }
        if frame.keyframe && self.codec.is_video() {
            self.waiting_keyframe = false;
            self.last_keyframe = Some(now);
        }
        let ts_ms = self.clock.ms(frame.rtp_ts);
        let writer = self.writer.as_mut().expect("created above");
        writer.write_frame(ts_ms, frame.keyframe, &frame.data, now)
    }

    /// The file header's description of this stream, from its first keyframe.
    fn spec(&mut self, keyframe: &[u8]) -> Option<TrackSpec> {
        let (codec, size) = match self.codec {
            Codec::Opus => (TrackCodec::Opus { channels: 2 }, None),
            Codec::Vp8 => (TrackCodec::Vp8, Some(vp8_dimensions(keyframe)?)),
            Codec::H264 => {
                let config = avc_config(keyframe)?;
                let size = (config.width, config.height);
                (
                    TrackCodec::H264 {
                        avcc: config.record,
                    },
                    Some(size),
                )
            }
        };
        self.size = size;
        let (width, height) = size.unwrap_or((0, 0));
        Some(TrackSpec {
            codec,
            width,
            height,
        })
    }

    fn wants_keyframe(&mut self, now: Instant) -> bool {
        if !self.codec.is_video() {
            return false;
        }
        let since = |at: Option<Instant>| at.map(|t| now.saturating_duration_since(t));
        let due = if self.waiting_keyframe {
            since(self.last_request).is_none_or(|d| d >= KEYFRAME_RETRY)
        } else {
            since(self.last_keyframe).is_some_and(|d| d >= SEEK_KEYFRAME_INTERVAL)
                && since(self.last_request).is_none_or(|d| d >= SEEK_KEYFRAME_INTERVAL)
        };
        if due {
            self.last_request = Some(now);
        }
        due
    }

    /// Where this stream's first frame falls, for [`crate::clock::place`]; `None` before it.
    pub fn placement(&self) -> Option<Placement> {
        let arrival_ms = self.arrival_ms?;
        let sender_wall_ms = self
            .sender_report
            .and_then(|(ntp, rtp)| self.clock.first_frame_wall_ms(ntp, rtp));
        Some(Placement {
            arrival_ms,
            sender_wall_ms,
        })
    }

    /// The manifest entry for this stream, placed at `start_ms`; `None` while it has no file.
    pub fn entry(&self, start_ms: u64) -> Option<StreamEntry> {
        let (duration_ms, frames, bytes, finished) = match (&self.finished, &self.writer) {
            (Some(summary), _) => (summary.duration_ms, summary.frames, summary.bytes, true),
            (None, Some(writer)) => (
                writer.last_ts_ms().unwrap_or(0),
                writer.frames(),
                writer.bytes_written(),
                false,
            ),
            (None, None) => return None,
        };
        let video = self.info.kind == MediaKind::Video;
        Some(StreamEntry {
            id: self.id.clone(),
            participant_id: self.info.participant_id.to_string(),
            kind: if video { "video" } else { "audio" }.into(),
            source: self.file_source().into(),
            codec: self.info.codec.clone(),
            file: self.file.clone(),
            content_type: match self.codec {
                Codec::H264 => "video/x-matroska",
                Codec::Vp8 => "video/webm",
                Codec::Opus => "audio/webm",
            }
            .into(),
            start_ms,
            duration_ms,
            frames,
            bytes,
            width: self.size.map(|s| s.0),
            height: self.size.map(|s| s.1),
            gaps: self.gaps,
            finished,
        })
    }

    fn file_source(&self) -> &'static str {
        match self.info.source {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
        }
    }

    /// Finishes the file (index, duration). Later calls do nothing.
    pub fn finish(&mut self) -> Result<(), WebmError> {
        if let Some(writer) = self.writer.take() {
            self.finished = Some(writer.finish()?);
        }
        Ok(())
    }
}
