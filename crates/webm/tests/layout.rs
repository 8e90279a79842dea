//! What the writer puts where: frames come back exactly, clusters are cut where they
//! should be, and buffered frames reach the disk within a second of wall time.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{SrcFrame, TempDir, write_file};
use hearth_webm::{Frame, TrackCodec, TrackSpec, WebmError, WebmWriter, read_file};

fn vp8() -> TrackSpec {
    TrackSpec {
        codec: TrackCodec::Vp8,
        width: 640,
        height: 360,
    }
}

/// `n` synthetic 30 fps frames, a keyframe every `gop`, of varied sizes (some large
/// enough to need multi-byte element sizes).
fn synthetic(n: u64, gop: u64) -> Vec<SrcFrame> {
    (0..n)
        .map(|i| SrcFrame {
            ts_ms: i * 1000 / 30,
            keyframe: i % gop == 0,
            data: (0..(if i % gop == 0 {
                20_000
            } else {
                50 + i as usize * 7
            }))
                .map(|b| (b as u64 ^ i) as u8)
                .collect(),
        })
        .collect()
}

#[test]
fn frames_read_back_exactly_as_written() {
    let dir = TempDir::new("roundtrip");
    let path = dir.path("v.webm");
    let frames = synthetic(90, 30);
    let summary = write_file(&path, &vp8(), &frames);
    assert_eq!((summary.frames, summary.keyframes), (90, 3));
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());

    let contents = read_file(&path).unwrap();
    assert_eq!(contents.codec_id, "V_VP8");
    assert_eq!((contents.width, contents.height), (640, 360));
    assert_eq!(contents.codec_private, None);
    assert!(contents.has_cues);
    assert_eq!(contents.duration_ms, Some(summary.duration_ms as f64));
    let expected: Vec<Frame> = frames
        .iter()
        .map(|f| Frame {
            ts_ms: f.ts_ms,
            keyframe: f.keyframe,
            data: f.data.clone(),
        })
        .collect();
    assert_eq!(contents.frames, expected);
}

#[test]
fn audio_frames_are_all_keyframes_and_carry_an_opus_head() {
    let dir = TempDir::new("audio");
    let path = dir.path("a.webm");
    let frames: Vec<SrcFrame> = (0..120)
        .map(|i| SrcFrame {
            ts_ms: i * 20,
            keyframe: false,
            data: vec![0xFC, i as u8],
        })
        .collect();
    let spec = TrackSpec {
        codec: TrackCodec::Opus { channels: 2 },
        width: 0,
        height: 0,
    };
    let summary = write_file(&path, &spec, &frames);
    assert_eq!(
        (summary.frames, summary.keyframes, summary.duration_ms),
        (120, 120, 2400)
    );

    let contents = read_file(&path).unwrap();
    assert_eq!(contents.codec_id, "A_OPUS");
    assert_eq!(contents.channels, 2);
    let head = contents.codec_private.unwrap();
    assert_eq!(&head[..8], b"OpusHead");
    assert!(contents.frames.iter().all(|f| f.keyframe));
    assert_eq!(contents.frames[119].ts_ms, 2380);
}

#[test]
fn clusters_start_at_keyframes_and_span_under_a_second() {
    let dir = TempDir::new("clusters");
    let path = dir.path("v.webm");
    // Keyframes every 45 frames (1.5 s) force the 1 s rule to cut some clusters too.
    for gop in [30, 45] {
        let frames = synthetic(90, gop);
        let t0 = Instant::now();
        let mut writer = WebmWriter::create(&path, &vp8(), 0, t0).unwrap();
        // Cluster starts, seen as the moments bytes reach the file.
        let mut starts = vec![0usize];
        for (i, f) in frames.iter().enumerate() {
            let before = writer.bytes_written();
            writer
                .write_frame(f.ts_ms, f.keyframe, &f.data, t0)
                .unwrap();
            if writer.bytes_written() != before {
                starts.push(i);
            }
        }
        starts.push(frames.len());
        for w in starts.windows(2) {
            let (first, last) = (&frames[w[0]], &frames[w[1] - 1]);
            assert!(
                last.ts_ms - first.ts_ms < 1000,
                "gop {gop}: cluster at frame {} spans too long",
                w[0]
            );
            if gop == 30 {
                assert!(
                    first.keyframe,
                    "cluster at frame {} starts with a delta frame",
                    w[0]
                );
            }
        }
        let keyframes = frames.iter().filter(|f| f.keyframe).count();
        assert!(starts.len() > keyframes);
        if gop == 45 {
            assert!(
                starts.len() - 1 > keyframes,
                "the 1 s rule never cut a cluster"
            );
        }
        writer.finish().unwrap();
    }
}

#[test]
fn tick_writes_out_a_cluster_after_a_second_without_frames() {
    let dir = TempDir::new("tick");
    let path = dir.path("v.webm");
    let t0 = Instant::now();
    let mut writer = WebmWriter::create(&path, &vp8(), 0, t0).unwrap();
    let header = writer.bytes_written();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        header,
        "header not on disk"
    );
    for f in synthetic(5, 30) {
        writer
            .write_frame(
                f.ts_ms,
                f.keyframe,
                &f.data,
                t0 + Duration::from_millis(f.ts_ms),
            )
            .unwrap();
    }
    assert_eq!(writer.frames(), 5);
    writer.tick(t0 + Duration::from_millis(999)).unwrap();
    assert_eq!(
        writer.bytes_written(),
        header,
        "flushed before a second had passed"
    );
    writer.tick(t0 + Duration::from_millis(1000)).unwrap();
    assert!(
        writer.bytes_written() > header,
        "tick did not write the cluster out"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        writer.bytes_written()
    );
    // The unfinished file already holds the frames.
    assert_eq!(read_file(&path).unwrap().frames.len(), 5);
}

#[test]
fn backwards_timestamps_are_clamped_to_the_last_one() {
    let dir = TempDir::new("clamp");
    let path = dir.path("v.webm");
    let now = Instant::now();
    let mut writer = WebmWriter::create(&path, &vp8(), 0, now).unwrap();
    writer.write_frame(100, true, b"key", now).unwrap();
    writer.write_frame(50, false, b"delta", now).unwrap();
    assert_eq!(writer.last_ts_ms(), Some(100));
    writer.write_frame(133, false, b"delta2", now).unwrap();
    writer.finish().unwrap();
    let ts: Vec<u64> = read_file(&path)
        .unwrap()
        .frames
        .iter()
        .map(|f| f.ts_ms)
        .collect();
    assert_eq!(ts, [100, 100, 133]);
}

#[test]
fn empty_frames_are_skipped_and_oversized_ones_refused() {
    let dir = TempDir::new("refuse");
    let now = Instant::now();
    let mut writer = WebmWriter::create(&dir.path("v.webm"), &vp8(), 0, now).unwrap();
    writer.write_frame(0, true, b"", now).unwrap();
    let huge = vec![0; hearth_webm::MAX_FRAME_BYTES + 1];
    assert!(matches!(
        writer.write_frame(0, true, &huge, now),
        Err(WebmError::Invalid(_))
    ));
    assert_eq!(writer.frames(), 0);
}

#[test]
fn a_file_with_no_frames_finishes_and_reads_as_empty() {
    let dir = TempDir::new("empty");
    let path = dir.path("v.webm");
    let summary = write_file(&path, &vp8(), &[]);
    assert_eq!((summary.frames, summary.duration_ms), (0, 0));
    let contents = read_file(&path).unwrap();
    assert!(contents.frames.is_empty());
    assert!(!contents.has_cues);
    // No ffmpeg check: ffmpeg 5.1 refuses any Matroska file without a cluster ("End of
    // file"), its own output included.
}

#[test]
fn big_frames_get_clusters_of_their_own() {
    let dir = TempDir::new("big");
    let path = dir.path("v.webm");
    let now = Instant::now();
    let mut writer = WebmWriter::create(&path, &vp8(), 0, now).unwrap();
    let big = vec![7u8; 3 * 1024 * 1024];
    writer.write_frame(0, true, &big, now).unwrap();
    let after_first = writer.bytes_written();
    writer.write_frame(33, false, &big, now).unwrap();
    assert!(
        writer.bytes_written() > after_first,
        "2 MiB rule did not close the cluster"
    );
    writer.finish().unwrap();
    let frames = read_file(&path).unwrap().frames;
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.data == big));
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_as_such() {
    // Every write to /dev/full fails with ENOSPC.
    let result = WebmWriter::create(std::path::Path::new("/dev/full"), &vp8(), 0, Instant::now());
    let error = result.unwrap_err();
    assert!(error.is_disk_full(), "{error}");
}
