//! The writer: header at once, then one whole cluster per write, then a clean ending.

use std::fs::{File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ebml::{self, id};
use crate::finish::{
    self, Anchors, ClusterIndex, DURATION_SLOT, RecentTimestamps, SEEK_HEAD_RESERVED,
};
use crate::{FileSummary, MAX_FRAME_BYTES, TrackCodec, TrackSpec, WebmError};

/// Media time after which a new cluster starts.
const CLUSTER_MAX_SPAN_MS: u64 = 1000;
/// Buffered bytes after which a new cluster starts (bounds memory and loss on a crash).
const CLUSTER_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Wall time after which an open cluster is written out even without new frames.
const CLUSTER_MAX_WALL: Duration = Duration::from_secs(1);
/// Unix time (ms) of Matroska's DateUTC epoch, 2001-01-01T00:00:00Z.
const MATROSKA_EPOCH_UNIX_MS: i64 = 978_307_200_000;
/// Opus SeekPreRoll that WebM requires: 80 ms, in ns.
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

/// Frame counters, kept per open cluster so a cluster that fails to reach the disk can
/// be forgotten without leaving the totals wrong.
#[derive(Debug, Clone, Default)]
struct Totals {
    frames: u64,
    keyframes: u64,
    recent: RecentTimestamps,
}

/// The cluster being filled in memory.
#[derive(Debug)]
struct OpenCluster {
    ts_ms: u64,
    /// Wall time of its first frame, for [`WebmWriter::tick`].
    opened: Instant,
    starts_with_keyframe: bool,
    /// The SimpleBlocks, already encoded.
    blocks: Vec<u8>,
    /// Totals including this cluster's frames.
    totals: Totals,
}

/// Whether a frame at `ts_ms` must go into a new cluster rather than `open`.
fn needs_new_cluster(open: &OpenCluster, ts_ms: u64, keyframe: bool, is_video: bool) -> bool {
    let span = ts_ms.saturating_sub(open.ts_ms);
    // Starting video clusters at keyframes makes every such cluster a seek target.
    (is_video && keyframe)
        || span >= CLUSTER_MAX_SPAN_MS
        || span > i16::MAX as u64
        || open.blocks.len() >= CLUSTER_MAX_BYTES
}

/// Writes one single-track WebM/Matroska file, crash-safely (see the crate docs).
///
/// Dropping it without [`WebmWriter::finish`] loses only the buffered cluster; the file
/// on disk stays repairable with [`crate::repair`].
#[derive(Debug)]
pub struct WebmWriter {
    file: File,
    is_video: bool,
    anchors: Anchors,
    /// Bytes on disk that belong to the file (header plus whole clusters).
    written: u64,
    cluster: Option<OpenCluster>,
    /// Every cluster on disk, for the Cues.
    index: Vec<ClusterIndex>,
    /// Totals of the clusters on disk.
    totals: Totals,
    /// Last accepted timestamp, to clamp ones that go backwards.
    last_ts_ms: Option<u64>,
}

impl WebmWriter {
    /// Creates (truncates) the file and writes the whole header before returning, so a
    /// crash right after still leaves a parseable (empty) recording.
    ///
    /// `date_unix_ms` becomes DateUTC. `now` is unused today but keeps the clock out of
    /// the writer like every other method.
    pub fn create(
        path: &Path,
        spec: &TrackSpec,
        date_unix_ms: i64,
        now: Instant,
    ) -> Result<WebmWriter, WebmError> {
        let _ = now;
        validate(spec)?;
        let (header, anchors) = build_header(spec, date_unix_ms, track_uid(path, date_unix_ms));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(&header)?;
        Ok(WebmWriter {
            file,
            is_video: spec.codec.is_video(),
            anchors,
            written: header.len() as u64,
            cluster: None,
            index: Vec::new(),
            totals: Totals::default(),
            last_ts_ms: None,
        })
    }

    /// Adds one frame at `ts_ms` since the file's start (a SimpleBlock on track 1).
    ///
    /// Timestamps that go backwards are clamped to the last one. Audio frames are always
    /// flagged as keyframes. The frame is buffered; it reaches the disk when its cluster
    /// closes (see [`WebmWriter::tick`] and the crate docs for when clusters close).
    /// An empty frame is skipped (`Ok`, not counted): it carries nothing to decode, and
    /// one odd packet must not end a recording. A frame over [`MAX_FRAME_BYTES`] is
    /// refused with [`WebmError::Invalid`].
    ///
    /// If writing a closed cluster fails, that cluster's frames are dropped, the file is
    /// cut back to its last whole cluster and the error is returned; the writer stays
    /// usable (e.g. to `finish()` after a full disk).
    pub fn write_frame(
        &mut self,
        ts_ms: u64,
        keyframe: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), WebmError> {
        if data.is_empty() {
            return Ok(());
        }
        if data.len() > MAX_FRAME_BYTES {
            return Err(WebmError::Invalid(format!(
                "frame of {} bytes exceeds {MAX_FRAME_BYTES}",
                data.len()
            )));
        }
        let ts_ms = ts_ms.max(self.last_ts_ms.unwrap_or(0));
        let keyframe = keyframe || !self.is_video;
        self.tick(now)?;
        if let Some(open) = &self.cluster
            && needs_new_cluster(open, ts_ms, keyframe, self.is_video)
        {
            self.flush_cluster()?;
        }
        let totals = &self.totals;
        let open = self.cluster.get_or_insert_with(|| OpenCluster {
            ts_ms,
            opened: now,
            starts_with_keyframe: keyframe,
            blocks: Vec::new(),
            totals: totals.clone(),
        });
        let relative = i16::try_from(ts_ms - open.ts_ms).unwrap_or(i16::MAX);
        ebml::put_id(&mut open.blocks, id::SIMPLE_BLOCK);
        ebml::put_size(&mut open.blocks, data.len() as u64 + 4);
        open.blocks.push(0x81); // track number 1 as a vint
        open.blocks.extend_from_slice(&relative.to_be_bytes());
        open.blocks.push(if keyframe { 0x80 } else { 0x00 });
        open.blocks.extend_from_slice(data);
        open.totals.frames += 1;
        open.totals.keyframes += u64::from(keyframe);
        open.totals.recent.push(ts_ms);
        self.last_ts_ms = Some(ts_ms);
        Ok(())
    }

    /// Writes out the open cluster if it was started at least a second ago (wall time),
    /// so a crash loses about a second at most even when frames stop arriving.
    pub fn tick(&mut self, now: Instant) -> Result<(), WebmError> {
        match &self.cluster {
            Some(open) if now.saturating_duration_since(open.opened) >= CLUSTER_MAX_WALL => {
                self.flush_cluster()
            }
            _ => Ok(()),
        }
    }

    /// Clean stop: writes the open cluster, then Cues, Duration, SeekHead and the
    /// Segment size, and fsyncs. Returns what the file holds.
    pub fn finish(mut self) -> Result<FileSummary, WebmError> {
        self.flush_cluster()?;
        let duration_ms = self.totals.recent.duration_ms(self.is_video);
        let bytes = finish::finish_file(
            &mut self.file,
            &self.anchors,
            self.written,
            &self.index,
            self.is_video,
            duration_ms,
        )?;
        Ok(FileSummary {
            duration_ms: duration_ms.unwrap_or(0),
            frames: self.totals.frames,
            keyframes: self.totals.keyframes,
            bytes,
        })
    }

    /// Bytes written to the file so far (not counting the buffered cluster).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Frames accepted so far (buffered ones included).
    pub fn frames(&self) -> u64 {
        self.cluster
            .as_ref()
            .map_or(self.totals.frames, |c| c.totals.frames)
    }

    /// Timestamp of the last frame accepted, if any (after clamping).
    pub fn last_ts_ms(&self) -> Option<u64> {
        self.last_ts_ms
    }

    /// Appends the open cluster with a single write, its size and CRC-32 known.
    fn flush_cluster(&mut self) -> Result<(), WebmError> {
        let Some(open) = self.cluster.take() else {
            return Ok(());
        };
        let bytes = encode_cluster(&open);
        let result = self
            .file
            .seek(SeekFrom::Start(self.written))
            .and_then(|_| self.file.write_all(&bytes));
        if let Err(e) = result {
            // Cut off whatever part did land, so later clusters follow a whole one. If
            // even that fails, repair() will still stop at the torn cluster.
            let _ = self.file.set_len(self.written);
            return Err(e.into());
        }
        self.index.push(ClusterIndex {
            pos: self.written,
            ts_ms: open.ts_ms,
            starts_with_keyframe: open.starts_with_keyframe,
        });
        self.written += bytes.len() as u64;
        self.totals = open.totals;
        Ok(())
    }
}

/// The full Cluster element: id, size, CRC-32 (first child, over the rest), Timestamp,
/// blocks. The CRC is what lets repair tell a whole cluster from a torn one.
fn encode_cluster(open: &OpenCluster) -> Vec<u8> {
    let mut timestamp = Vec::with_capacity(10);
    ebml::put_uint(&mut timestamp, id::TIMESTAMP, open.ts_ms);
    let mut crc = ebml::Crc32::new();
    crc.update(&timestamp);
    crc.update(&open.blocks);
    let body_len = 6 + timestamp.len() + open.blocks.len();
    let mut out = Vec::with_capacity(body_len + 12);
    ebml::put_id(&mut out, id::CLUSTER);
    ebml::put_size(&mut out, body_len as u64);
    ebml::put_bytes(&mut out, id::CRC32, &crc.value().to_le_bytes());
    out.extend_from_slice(&timestamp);
    out.extend_from_slice(&open.blocks);
    out
}

fn validate(spec: &TrackSpec) -> Result<(), WebmError> {
    match &spec.codec {
        TrackCodec::Opus { channels } if !(1..=2).contains(channels) => Err(WebmError::Invalid(
            format!("opus needs 1 or 2 channels, got {channels}"),
        )),
        TrackCodec::H264 { avcc } if avcc.is_empty() => {
            Err(WebmError::Invalid("h264 needs an avcC record".into()))
        }
        codec if codec.is_video() && (spec.width == 0 || spec.height == 0) => {
            Err(WebmError::Invalid(format!(
                "video size {}x{} must be > 0",
                spec.width, spec.height
            )))
        }
        _ => Ok(()),
    }
}

/// A stable, non-zero TrackUID: deterministic so the same input gives the same bytes.
fn track_uid(path: &Path, date_unix_ms: i64) -> u64 {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    date_unix_ms.hash(&mut hasher);
    hasher.finish().max(1)
}

/// The OpusHead CodecPrivate: version 1, pre-skip 0, 48 kHz, gain 0, mapping family 0.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&0u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// Everything before the first cluster, and where finishing must write later.
fn build_header(spec: &TrackSpec, date_unix_ms: i64, uid: u64) -> (Vec<u8>, Anchors) {
    let mut out = Vec::with_capacity(512);

    let mut ebml_head = Vec::new();
    ebml::put_uint(&mut ebml_head, id::EBML_VERSION, 1);
    ebml::put_uint(&mut ebml_head, id::EBML_READ_VERSION, 1);
    ebml::put_uint(&mut ebml_head, id::EBML_MAX_ID_LENGTH, 4);
    ebml::put_uint(&mut ebml_head, id::EBML_MAX_SIZE_LENGTH, 8);
    ebml::put_bytes(
        &mut ebml_head,
        id::DOC_TYPE,
        spec.codec.doc_type().as_bytes(),
    );
    ebml::put_uint(&mut ebml_head, id::DOC_TYPE_VERSION, 4);
    ebml::put_uint(&mut ebml_head, id::DOC_TYPE_READ_VERSION, 2);
    ebml::put_bytes(&mut out, id::EBML, &ebml_head);

    ebml::put_id(&mut out, id::SEGMENT);
    let segment_size_pos = out.len() as u64;
    out.extend_from_slice(&ebml::UNKNOWN_SIZE_8);
    let data_start = out.len() as u64;
    ebml::put_void(&mut out, SEEK_HEAD_RESERVED);

    let mut info = Vec::new();
    ebml::put_uint(&mut info, id::TIMESTAMP_SCALE, 1_000_000);
    ebml::put_bytes(&mut info, id::MUXING_APP, b"hearth");
    ebml::put_bytes(&mut info, id::WRITING_APP, b"hearth");
    let date_ns = date_unix_ms
        .saturating_sub(MATROSKA_EPOCH_UNIX_MS)
        .saturating_mul(1_000_000);
    ebml::put_int(&mut info, id::DATE_UTC, date_ns);
    let duration_offset = info.len();
    ebml::put_void(&mut info, DURATION_SLOT);
    let info_pos = out.len() as u64;
    ebml::put_id(&mut out, id::INFO);
    ebml::put_size(&mut out, info.len() as u64);
    let duration_pos = out.len() as u64 + duration_offset as u64;
    out.extend_from_slice(&info);

    let mut entry = Vec::new();
    ebml::put_uint(&mut entry, id::TRACK_NUMBER, 1);
    ebml::put_uint(&mut entry, id::TRACK_UID, uid);
    ebml::put_uint(
        &mut entry,
        id::TRACK_TYPE,
        if spec.codec.is_video() { 1 } else { 2 },
    );
    ebml::put_uint(&mut entry, id::FLAG_LACING, 0);
    ebml::put_bytes(&mut entry, id::CODEC_ID, spec.codec.codec_id().as_bytes());
    match &spec.codec {
        TrackCodec::H264 { avcc } => ebml::put_bytes(&mut entry, id::CODEC_PRIVATE, avcc),
        TrackCodec::Opus { channels } => {
            ebml::put_bytes(&mut entry, id::CODEC_PRIVATE, &opus_head(*channels));
            ebml::put_uint(&mut entry, id::CODEC_DELAY, 0);
            ebml::put_uint(&mut entry, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
        }
        TrackCodec::Vp8 | TrackCodec::Vp9 => {}
    }
    if let TrackCodec::Opus { channels } = &spec.codec {
        let mut audio = Vec::new();
        ebml::put_float(&mut audio, id::SAMPLING_FREQUENCY, 48_000.0);
        ebml::put_uint(&mut audio, id::CHANNELS, u64::from(*channels));
        ebml::put_bytes(&mut entry, id::AUDIO, &audio);
    } else {
        let mut video = Vec::new();
        ebml::put_uint(&mut video, id::PIXEL_WIDTH, u64::from(spec.width));
        ebml::put_uint(&mut video, id::PIXEL_HEIGHT, u64::from(spec.height));
        ebml::put_bytes(&mut entry, id::VIDEO, &video);
    }
    let mut tracks = Vec::new();
    ebml::put_bytes(&mut tracks, id::TRACK_ENTRY, &entry);
    let tracks_pos = out.len() as u64;
    ebml::put_bytes(&mut out, id::TRACKS, &tracks);

    let anchors = Anchors {
        segment_size_pos,
        data_start,
        info_pos,
        tracks_pos,
        duration_pos,
    };
    (out, anchors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open_at(ts_ms: u64, bytes: usize) -> OpenCluster {
        OpenCluster {
            ts_ms,
            opened: Instant::now(),
            starts_with_keyframe: true,
            blocks: vec![0; bytes],
            totals: Totals::default(),
        }
    }

    #[test]
    fn video_keyframe_starts_a_cluster_but_audio_does_not() {
        let open = open_at(0, 10);
        assert!(needs_new_cluster(&open, 33, true, true));
        assert!(!needs_new_cluster(&open, 33, false, true));
        assert!(!needs_new_cluster(&open, 20, true, false));
    }

    #[test]
    fn a_second_of_media_or_two_mebibytes_closes_a_cluster() {
        assert!(!needs_new_cluster(&open_at(500, 10), 1499, false, true));
        assert!(needs_new_cluster(&open_at(500, 10), 1500, false, true));
        assert!(needs_new_cluster(
            &open_at(0, CLUSTER_MAX_BYTES),
            1,
            false,
            false
        ));
    }

    #[test]
    fn opus_head_is_nineteen_bytes_with_the_channel_count() {
        let head = opus_head(2);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2);
        assert_eq!(&head[12..16], &48_000u32.to_le_bytes());
    }

    #[test]
    fn header_reserves_the_duration_slot_inside_info() {
        let spec = TrackSpec {
            codec: TrackCodec::Vp8,
            width: 320,
            height: 240,
        };
        let (header, anchors) = build_header(&spec, 1_700_000_000_000, 7);
        let slot = &header[anchors.duration_pos as usize..][..DURATION_SLOT];
        assert_eq!(slot[0], 0xEC);
        assert_eq!(slot[1], 0x80 | 9);
        assert!(
            anchors.info_pos < anchors.duration_pos && anchors.duration_pos < anchors.tracks_pos
        );
        assert_eq!(
            anchors.data_start + SEEK_HEAD_RESERVED as u64,
            anchors.info_pos
        );
    }

    #[test]
    fn invalid_specs_are_refused() {
        let bad = [
            TrackSpec {
                codec: TrackCodec::Opus { channels: 3 },
                width: 0,
                height: 0,
            },
            TrackSpec {
                codec: TrackCodec::Vp8,
                width: 0,
                height: 240,
            },
            TrackSpec {
                codec: TrackCodec::H264 { avcc: vec![] },
                width: 2,
                height: 2,
            },
        ];
        for spec in bad {
            assert!(
                matches!(validate(&spec), Err(WebmError::Invalid(_))),
                "{spec:?}"
            );
        }
        let audio = TrackSpec {
            codec: TrackCodec::Opus { channels: 1 },
            width: 0,
            height: 0,
        };
        assert!(validate(&audio).is_ok());
    }
}
