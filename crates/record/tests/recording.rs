//! A recording driven packet by packet, with time passed in: what reaches the file, and when
//! the recorder asks for a keyframe.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use bytes::Bytes;
use hearth_proto::{MediaKind, ParticipantId, TrackId, TrackInfo, TrackSource};
use hearth_record::{Manifest, Presence, Recording, RecordingSetup, RecordingState};
use rtc::rtp;
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn camera() -> TrackInfo {
    TrackInfo {
        id: TrackId::from_string("t1"),
        participant_id: ParticipantId::from_string("p1"),
        kind: MediaKind::Video,
        codec: "video/VP8".into(),
        source: TrackSource::Camera,
    }
}

/// A one-packet VP8 frame: a keyframe header for 64x48 or a delta frame, then `marker` bytes.
fn vp8(seq: u16, frame: u32, keyframe: bool) -> rtp::Packet {
    let mut payload = vec![0x10]; // descriptor: start of partition 0
    if keyframe {
        payload.extend_from_slice(&[0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 48, 0]);
    } else {
        payload.extend_from_slice(&[0x51, 0x01, 0x00]);
    }
    payload.extend_from_slice(&frame.to_be_bytes());
    let mut p = rtp::Packet::default();
    p.header.sequence_number = seq;
    p.header.timestamp = frame * 3000;
    p.header.marker = true;
    p.payload = Bytes::from(payload);
    p
}

fn frame_number(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[data.len() - 4..].try_into().unwrap())
}

#[test]
fn video_starts_on_a_keyframe_and_restarts_on_one_after_loss() {
    let dir = temp_dir("keyframes");
    let t0 = Instant::now();
    let mut rec = Recording::start(
        RecordingSetup {
            id: "r1".into(),
            session_id: "s1".into(),
            title: "t".into(),
            dir: dir.clone(),
            started_at_ms: 1_700_000_000_000,
        },
        vec![Presence {
            id: "p1".into(),
            name: "Ada".into(),
            role: "host".into(),
        }],
        t0,
    )
    .unwrap();
    assert!(rec.add_stream(1, camera()));
    let at = |frame: u32| t0 + Duration::from_millis(u64::from(frame) * 33);

    // Joined mid-stream: deltas are useless until a keyframe, and one is asked for at once.
    let mut asked = Vec::new();
    for (seq, frame, key) in [(0, 0, false), (1, 1, false), (2, 2, true), (3, 3, false)] {
        asked.push(rec.packet(1, vp8(seq, frame, key), at(frame)).unwrap());
    }
    assert!(asked[0], "a keyframe is requested while waiting for one");
    // Packet 4 is lost: frame 5 cannot be decoded without it, nor anything until a keyframe.
    for (seq, frame, key) in [(5, 5, false), (6, 6, false), (7, 7, true), (8, 8, false)] {
        rec.packet(1, vp8(seq, frame, key), at(frame)).unwrap();
    }
    // The hole is given up on after the reorder wait; time passes without packets.
    rec.tick(at(8) + Duration::from_millis(400)).unwrap();
    let manifest: Manifest = rec.stop(at(9) + Duration::from_secs(1)).unwrap();
    assert_eq!(manifest.state, RecordingState::Complete);
    let stream = &manifest.streams[0];
    assert_eq!((stream.width, stream.height), (Some(64), Some(48)));
    assert_eq!(stream.gaps, 1, "one loss, one restart");
    let file = hearth_webm::read_file(&dir.join(&stream.file)).unwrap();
    let frames: Vec<(u32, bool, u64)> = file
        .frames
        .iter()
        .map(|f| (frame_number(&f.data), f.keyframe, f.ts_ms))
        .collect();
    assert_eq!(
        frames,
        vec![
            (2, true, 0),
            (3, false, 33),
            (7, true, 166),
            (8, false, 200)
        ],
        "frames before the first keyframe and between the loss and the next keyframe are left out"
    );
    assert_eq!(
        Manifest::load(&dir).unwrap(),
        manifest,
        "the manifest on disk is the final one"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn packets_for_unknown_or_ended_streams_are_ignored_and_chat_is_timed() {
    let dir = temp_dir("events");
    let t0 = Instant::now();
    let mut rec = Recording::start(
        RecordingSetup {
            id: "r2".into(),
            session_id: "s1".into(),
            title: "t".into(),
            dir: dir.clone(),
            started_at_ms: 0,
        },
        Vec::new(),
        t0,
    )
    .unwrap();
    assert!(
        !rec.packet(9, vp8(0, 0, true), t0).unwrap(),
        "no such stream"
    );
    assert!(rec.add_stream(1, camera()));
    assert!(!rec.add_stream(1, camera()), "a key is used once");
    rec.packet(1, vp8(0, 0, true), t0).unwrap();
    rec.end_stream(1, t0 + Duration::from_millis(100)).unwrap();
    rec.packet(1, vp8(1, 1, false), t0 + Duration::from_millis(150))
        .unwrap();
    rec.joined(
        Presence {
            id: "p2".into(),
            name: "Bo".into(),
            role: "attendee".into(),
        },
        t0 + Duration::from_millis(500),
    );
    rec.chat("p2", "Bo", "hi", t0 + Duration::from_millis(1500));
    rec.left("p2", t0 + Duration::from_millis(2500));
    let manifest = rec.stop(t0 + Duration::from_secs(3)).unwrap();
    assert_eq!(
        manifest.streams[0].frames, 1,
        "nothing written after the stream ended"
    );
    assert!(manifest.streams[0].finished);
    let times: Vec<u64> = manifest.events.iter().map(|e| e.at_ms).collect();
    assert_eq!(times, vec![500, 1500, 2500]);
    assert_eq!(manifest.participants[0].joined_ms, 500);
    assert_eq!(manifest.participants[0].left_ms, Some(2500));
    assert_eq!(manifest.duration_ms, 3000);
    std::fs::remove_dir_all(&dir).unwrap();
}
