//! Finishing a file: the part [`crate::WebmWriter::finish`] and [`crate::repair`] share.
//!
//! Both end up with the same facts (where the reserved spaces are, where each cluster
//! starts, the last timestamps) and must produce byte-identical endings, so one function
//! writes Cues, Duration, SeekHead and the Segment size.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use crate::ebml::{self, id};

/// Bytes reserved for the SeekHead right at the Segment's data start. Three Seek
/// entries with 8-byte positions take 68 bytes; the rest stays a Void (never 1 byte).
pub(crate) const SEEK_HEAD_RESERVED: usize = 96;

/// Bytes reserved in Info for the Duration: id (2) + size (1) + 8-byte float.
pub(crate) const DURATION_SLOT: usize = 11;

/// Width of the Segment size field, so the real size can replace "unknown" in place.
pub(crate) const SEGMENT_SIZE_WIDTH: usize = 8;

/// Absolute file offsets of everything finishing overwrites or points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchors {
    /// Offset of the Segment's 8-byte size field.
    pub segment_size_pos: u64,
    /// Offset of the Segment's first child; Seek and Cue positions are relative to it.
    pub data_start: u64,
    /// Offset of Info.
    pub info_pos: u64,
    /// Offset of Tracks.
    pub tracks_pos: u64,
    /// Offset of the 11-byte Duration slot inside Info.
    pub duration_pos: u64,
}

/// Where one cluster starts and whether it can be a seek target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClusterIndex {
    /// Absolute offset of the Cluster element.
    pub pos: u64,
    /// The cluster's Timestamp (ms).
    pub ts_ms: u64,
    /// Whether its first block is a keyframe.
    pub starts_with_keyframe: bool,
}

/// How many recent timestamps feed the frame-duration estimate.
const RECENT: usize = 9;

/// The last few frame timestamps, to estimate how long the final frame lasts (the
/// Duration must cover it, and no frame carries its own duration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecentTimestamps {
    ring: [u64; RECENT],
    len: usize,
    next: usize,
}

impl RecentTimestamps {
    /// Records one frame's timestamp.
    pub fn push(&mut self, ts_ms: u64) {
        self.ring[self.next] = ts_ms;
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    /// The newest timestamp.
    pub fn last(&self) -> Option<u64> {
        (self.len > 0).then(|| self.ring[(self.next + RECENT - 1) % RECENT])
    }

    /// The median gap between the recent frames, or `fallback` when there is no
    /// usable gap (a single frame, or identical timestamps).
    pub fn frame_duration(&self, fallback: u64) -> u64 {
        let ordered: Vec<u64> = (0..self.len)
            .map(|i| self.ring[(self.next + RECENT - self.len + i) % RECENT])
            .collect();
        let mut gaps: Vec<u64> = ordered
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        gaps.sort_unstable();
        match gaps.get(gaps.len() / 2) {
            Some(&gap) if gap > 0 => gap,
            _ => fallback,
        }
    }

    /// The file's Duration in ms: last timestamp plus one frame, or `None` with no frames.
    pub fn duration_ms(&self, is_video: bool) -> Option<u64> {
        let fallback = if is_video { 33 } else { 20 };
        self.last()
            .map(|last| last.saturating_add(self.frame_duration(fallback)))
    }
}

/// Builds the Cues element: one CuePoint per cluster for audio, per keyframe-led
/// cluster for video. `None` when there is nothing to point at (Cues may not be empty).
fn build_cues(clusters: &[ClusterIndex], data_start: u64, is_video: bool) -> Option<Vec<u8>> {
    let mut points = Vec::new();
    for c in clusters
        .iter()
        .filter(|c| !is_video || c.starts_with_keyframe)
    {
        let mut positions = Vec::new();
        ebml::put_uint(&mut positions, id::CUE_TRACK, 1);
        ebml::put_uint(&mut positions, id::CUE_CLUSTER_POSITION, c.pos - data_start);
        let mut point = Vec::new();
        ebml::put_uint(&mut point, id::CUE_TIME, c.ts_ms);
        ebml::put_bytes(&mut point, id::CUE_TRACK_POSITIONS, &positions);
        ebml::put_bytes(&mut points, id::CUE_POINT, &point);
    }
    if points.is_empty() {
        return None;
    }
    let mut cues = Vec::with_capacity(points.len() + 12);
    ebml::put_bytes(&mut cues, id::CUES, &points);
    Some(cues)
}

/// Builds the reserved area's new content: a SeekHead for `targets` (id, absolute
/// offset) followed by a Void filling the rest, exactly [`SEEK_HEAD_RESERVED`] bytes.
fn build_seek_head(targets: &[(u32, u64)], data_start: u64) -> Vec<u8> {
    let mut seeks = Vec::new();
    for &(target, pos) in targets {
        let mut seek = Vec::new();
        let mut target_id = Vec::new();
        ebml::put_id(&mut target_id, target);
        ebml::put_bytes(&mut seek, id::SEEK_ID, &target_id);
        ebml::put_uint_fixed(&mut seek, id::SEEK_POSITION, pos - data_start);
        ebml::put_bytes(&mut seeks, id::SEEK, &seek);
    }
    let mut out = Vec::with_capacity(SEEK_HEAD_RESERVED);
    ebml::put_bytes(&mut out, id::SEEK_HEAD, &seeks);
    let rest = SEEK_HEAD_RESERVED.saturating_sub(out.len());
    if rest > 0 {
        ebml::put_void(&mut out, rest);
    }
    debug_assert_eq!(out.len(), SEEK_HEAD_RESERVED);
    out
}

fn write_at(file: &mut File, pos: u64, bytes: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.write_all(bytes)
}

/// Finishes a file whose last complete cluster ends at `end`: appends Cues, fills the
/// Duration, SeekHead and Segment size, and fsyncs. Returns the final file length.
///
/// The Segment size goes last, so a crash part-way still leaves an "unfinished" file
/// that repair recognises and finishes again.
pub(crate) fn finish_file(
    file: &mut File,
    anchors: &Anchors,
    end: u64,
    clusters: &[ClusterIndex],
    is_video: bool,
    duration_ms: Option<u64>,
) -> io::Result<u64> {
    let cues = build_cues(clusters, anchors.data_start, is_video);
    let mut file_len = end;
    if let Some(cues) = &cues {
        write_at(file, end, cues)?;
        file_len += cues.len() as u64;
    }
    // Anything beyond (an older, partial ending) would otherwise sit inside the Segment.
    file.set_len(file_len)?;

    // With no frames there is no meaningful Duration (it must be > 0); the Void stays.
    if let Some(ms) = duration_ms.filter(|&ms| ms > 0) {
        let mut duration = Vec::with_capacity(DURATION_SLOT);
        ebml::put_float(&mut duration, id::DURATION, ms as f64);
        debug_assert_eq!(duration.len(), DURATION_SLOT);
        write_at(file, anchors.duration_pos, &duration)?;
    }

    let mut targets = vec![
        (id::INFO, anchors.info_pos),
        (id::TRACKS, anchors.tracks_pos),
    ];
    if cues.is_some() {
        targets.push((id::CUES, end));
    }
    write_at(
        file,
        anchors.data_start,
        &build_seek_head(&targets, anchors.data_start),
    )?;

    let mut size = Vec::with_capacity(SEGMENT_SIZE_WIDTH);
    ebml::put_size_width(&mut size, file_len - anchors.data_start, SEGMENT_SIZE_WIDTH);
    write_at(file, anchors.segment_size_pos, &size)?;
    file.sync_all()?;
    Ok(file_len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn duration_adds_the_median_gap_to_the_last_frame() {
        let mut recent = RecentTimestamps::default();
        assert_eq!(recent.duration_ms(true), None);
        recent.push(1000);
        assert_eq!(recent.duration_ms(true), Some(1033));
        assert_eq!(recent.duration_ms(false), Some(1020));
        // One long stall among steady 20 ms gaps does not skew the estimate.
        for ts in [1020, 1040, 1060, 1500, 1520, 1540, 1560, 1580, 1600, 1620] {
            recent.push(ts);
        }
        assert_eq!(recent.last(), Some(1620));
        assert_eq!(recent.duration_ms(false), Some(1640));
    }

    #[test]
    fn identical_timestamps_fall_back_to_the_default_frame_length() {
        let mut recent = RecentTimestamps::default();
        for _ in 0..5 {
            recent.push(40);
        }
        assert_eq!(recent.duration_ms(false), Some(60));
    }

    #[test]
    fn seek_head_fills_the_reservation_exactly_with_or_without_cues() {
        let two = build_seek_head(&[(id::INFO, 200), (id::TRACKS, 300)], 100);
        let three = build_seek_head(&[(id::INFO, 200), (id::TRACKS, 300), (id::CUES, 9000)], 100);
        assert_eq!(two.len(), SEEK_HEAD_RESERVED);
        assert_eq!(three.len(), SEEK_HEAD_RESERVED);
    }

    #[test]
    fn video_cues_skip_clusters_without_a_leading_keyframe() {
        let clusters = [
            ClusterIndex {
                pos: 100,
                ts_ms: 0,
                starts_with_keyframe: true,
            },
            ClusterIndex {
                pos: 500,
                ts_ms: 1000,
                starts_with_keyframe: false,
            },
        ];
        let video = build_cues(&clusters, 50, true).unwrap();
        let audio = build_cues(&clusters, 50, false).unwrap();
        assert!(audio.len() > video.len());
        let only_delta = [clusters[1]];
        assert!(build_cues(&only_delta, 50, true).is_none());
    }
}
