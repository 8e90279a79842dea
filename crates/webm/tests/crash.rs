//! Files torn by a crash: repair keeps every whole cluster and nothing else, the result
//! plays, repairing again changes nothing, and no input makes the reader panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Rng, SrcFrame, TempDir, decode_errors, ffmpeg_generate, probe, read_ivf, vp8_is_key};
use hearth_webm::{TrackCodec, TrackSpec, WebmError, WebmWriter, read_file, repair};

/// An unfinished recording: its bytes as a crash would leave them, plus where each
/// whole cluster ends and how many frames the file holds up to there.
struct Torn {
    bytes: Vec<u8>,
    header_len: usize,
    /// (end offset, frames before it), in order.
    cluster_ends: Vec<(usize, u64)>,
}

impl Torn {
    /// Frames repair must keep when the file is cut at `cut`.
    fn frames_kept(&self, cut: usize) -> (u64, usize) {
        self.cluster_ends
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut)
            .map_or((0, self.header_len), |&(end, frames)| (frames, end))
    }
}

/// Writes real VP8 (keyframe every 10 frames, so many clusters) and "crashes" before
/// finish: the file is copied while the writer still holds an open cluster.
fn torn_recording(dir: &TempDir) -> Torn {
    let ivf = dir.path("src.ivf");
    ffmpeg_generate(
        "testsrc2=size=160x120:rate=30",
        3,
        &[
            "-c:v",
            "libvpx",
            "-g",
            "10",
            "-deadline",
            "realtime",
            "-f",
            "ivf",
        ],
        &ivf,
    );
    let (width, height, frames) = read_ivf(&ivf, vp8_is_key);
    let path = dir.path("live.webm");
    let t0 = Instant::now();
    let spec = TrackSpec {
        codec: TrackCodec::Vp8,
        width,
        height,
    };
    let mut writer = WebmWriter::create(&path, &spec, 1_700_000_000_000, t0).unwrap();
    let header_len = writer.bytes_written() as usize;
    let mut cluster_ends = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let before = writer.bytes_written();
        let now = t0 + Duration::from_millis(f.ts_ms);
        writer
            .write_frame(f.ts_ms, f.keyframe, &f.data, now)
            .unwrap();
        if writer.bytes_written() != before {
            cluster_ends.push((writer.bytes_written() as usize, i as u64));
        }
    }
    assert!(
        cluster_ends.len() >= 8,
        "only {} clusters",
        cluster_ends.len()
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, writer.bytes_written());
    drop(writer); // the crash: never finished
    Torn {
        bytes,
        header_len,
        cluster_ends,
    }
}

/// Repairs `bytes` as a file and checks the outcome; returns the repaired path when
/// there is something for ffmpeg to look at.
fn check_repair(
    dir: &TempDir,
    name: &str,
    bytes: &[u8],
    torn: &Torn,
    cut: usize,
) -> Option<std::path::PathBuf> {
    let path = dir.path(name);
    std::fs::write(&path, bytes).unwrap();
    let result = repair(&path);
    if cut < torn.header_len {
        assert!(
            matches!(result, Err(WebmError::NotRepairable(_))),
            "{name}: torn header gave {result:?}"
        );
        return None;
    }
    let report = result.unwrap_or_else(|e| panic!("{name}: {e}"));
    let (frames, kept_end) = torn.frames_kept(cut);
    assert!(!report.was_complete, "{name}: torn file called complete");
    assert_eq!(report.summary.frames, frames, "{name}");
    assert_eq!(
        report.truncated_bytes,
        (bytes.len() - kept_end) as u64,
        "{name}"
    );
    let contents = read_file(&path).unwrap();
    assert_eq!(contents.frames.len() as u64, frames, "{name}");
    assert_eq!(contents.has_cues, frames > 0, "{name}");

    let repaired = std::fs::read(&path).unwrap();
    let again = repair(&path).unwrap();
    assert!(
        again.was_complete,
        "{name}: second repair changed something"
    );
    assert_eq!(again.summary, report.summary, "{name}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        repaired,
        "{name}: second repair wrote"
    );
    Some(path)
}

/// ffprobe reads it, ffmpeg decodes it without a word, with the expected frame count.
/// Files without frames are skipped: ffmpeg 5.1 refuses any Matroska file that has no
/// cluster (its own output too), so it has nothing to say about them.
fn check_plays(path: &Path, frames: u64) {
    if frames == 0 {
        return;
    }
    let p = probe(path);
    assert_eq!(p.nb_read_frames.unwrap_or(0), frames, "{}", path.display());
    assert_eq!(decode_errors(path, &[], &[]), "", "{}", path.display());
}

/// Runs the ffmpeg checks on a few threads: there are dozens of files.
fn check_all_play(files: Vec<(std::path::PathBuf, u64)>) {
    let chunk = files.len().div_ceil(4).max(1);
    std::thread::scope(|s| {
        for part in files.chunks(chunk) {
            s.spawn(move || part.iter().for_each(|(p, n)| check_plays(p, *n)));
        }
    });
}

#[test]
fn torn_files_are_repaired_to_their_complete_clusters() {
    let dir = TempDir::new("torn");
    let torn = torn_recording(&dir);
    let mut cuts: Vec<usize> = (0..torn.header_len + 2).collect();
    cuts.extend((0..torn.bytes.len()).step_by(997));
    cuts.extend(
        torn.cluster_ends
            .iter()
            .flat_map(|&(end, _)| [end - 1, end, end + 1]),
    );
    cuts.push(torn.bytes.len());
    cuts.retain(|&c| c <= torn.bytes.len());
    cuts.sort_unstable();
    cuts.dedup();

    let mut to_play = Vec::new();
    for cut in cuts {
        let name = format!("cut-{cut}.webm");
        if let Some(path) = check_repair(&dir, &name, &torn.bytes[..cut], &torn, cut)
            && cut % 997 == 0
        {
            to_play.push((path, torn.frames_kept(cut).0));
        }
    }
    assert!(to_play.len() > 10);
    check_all_play(to_play);
}

#[test]
fn garbage_after_the_last_whole_cluster_is_cut_off() {
    let dir = TempDir::new("garbage");
    let torn = torn_recording(&dir);
    let mut rng = Rng::new(42);
    let mut fake_cluster = vec![0x1F, 0x43, 0xB6, 0x75, 0x10, 0x00, 0x10, 0x00];
    fake_cluster.extend(rng.bytes(5000));
    let tails: Vec<Vec<u8>> = vec![rng.bytes(3000), vec![0; 4096], fake_cluster, rng.bytes(1)];
    let mut cuts: Vec<usize> = torn.cluster_ends.iter().map(|&(end, _)| end).collect();
    cuts.extend(torn.cluster_ends.iter().map(|&(end, _)| end - 300));
    cuts.push(torn.header_len);
    cuts.push(torn.bytes.len());

    let mut to_play = Vec::new();
    for (i, &cut) in cuts.iter().enumerate() {
        let tail = &tails[i % tails.len()];
        let mut bytes = torn.bytes[..cut].to_vec();
        bytes.extend_from_slice(tail);
        let name = format!("garbage-{cut}-{i}.webm");
        let path = check_repair(&dir, &name, &bytes, &torn, cut).unwrap();
        if i % 3 == 0 {
            to_play.push((path, torn.frames_kept(cut).0));
        }
    }
    check_all_play(to_play);
}

#[test]
fn a_finished_file_is_left_untouched_by_repair() {
    let dir = TempDir::new("finished");
    let path = dir.path("v.webm");
    let frames: Vec<SrcFrame> = (0..100)
        .map(|i| SrcFrame {
            ts_ms: i * 33,
            keyframe: i % 30 == 0,
            data: vec![i as u8; 300],
        })
        .collect();
    let spec = TrackSpec {
        codec: TrackCodec::Vp8,
        width: 64,
        height: 64,
    };
    let summary = common::write_file(&path, &spec, &frames);
    let before = std::fs::read(&path).unwrap();
    let report = repair(&path).unwrap();
    assert!(report.was_complete);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.summary, summary);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn repairing_an_unfinished_file_gives_the_same_bytes_as_finishing_it() {
    let dir = TempDir::new("same");
    let (live, copy) = (dir.path("live.webm"), dir.path("copy.webm"));
    let t0 = Instant::now();
    let spec = TrackSpec {
        codec: TrackCodec::Opus { channels: 2 },
        width: 0,
        height: 0,
    };
    let mut writer = WebmWriter::create(&live, &spec, 1_700_000_000_000, t0).unwrap();
    for i in 0..150u64 {
        writer
            .write_frame(i * 20, true, &[0xFC, i as u8, 1, 2], t0)
            .unwrap();
    }
    writer.tick(t0 + Duration::from_secs(1)).unwrap(); // everything on disk
    std::fs::copy(&live, &copy).unwrap();
    let summary = writer.finish().unwrap();
    let report = repair(&copy).unwrap();
    assert_eq!(report.summary, summary);
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&live).unwrap());
}

#[test]
fn a_crash_during_finish_is_repaired() {
    let dir = TempDir::new("midfinish");
    let path = dir.path("v.webm");
    let frames: Vec<SrcFrame> = (0..60)
        .map(|i| SrcFrame {
            ts_ms: i * 33,
            keyframe: i % 30 == 0,
            data: vec![1; 100],
        })
        .collect();
    let spec = TrackSpec {
        codec: TrackCodec::Vp8,
        width: 64,
        height: 64,
    };
    let summary = common::write_file(&path, &spec, &frames);
    let finished = std::fs::read(&path).unwrap();
    // Everything written but the Segment size (the last step), and a torn Cues.
    let segment = finished
        .windows(4)
        .position(|w| w == [0x18, 0x53, 0x80, 0x67])
        .unwrap();
    let mut no_size = finished.clone();
    no_size[segment + 4..segment + 12]
        .copy_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    for bytes in [
        no_size.clone(),
        no_size[..no_size.len() - 5].to_vec(),
        finished[..finished.len() - 5].to_vec(),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let report = repair(&path).unwrap();
        assert!(!report.was_complete);
        assert_eq!(report.summary, summary);
        assert_eq!(std::fs::read(&path).unwrap(), finished);
    }
}

#[test]
fn random_bytes_never_panic_the_reader_or_repair() {
    let dir = TempDir::new("random");
    let path = dir.path("r.webm");
    let mut rng = Rng::new(7);
    // A real header prefix makes the random part reach the deeper parsers.
    let header = {
        let p = dir.path("h.webm");
        let spec = TrackSpec {
            codec: TrackCodec::Vp8,
            width: 64,
            height: 64,
        };
        WebmWriter::create(&p, &spec, 0, Instant::now()).unwrap();
        std::fs::read(&p).unwrap()
    };
    for round in 0..400 {
        let len = (rng.next_u64() % 3000) as usize;
        let mut bytes = if round % 2 == 0 {
            header.clone()
        } else {
            Vec::new()
        };
        bytes.extend(rng.bytes(len));
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_file(&path);
        let _ = repair(&path);
        let _ = read_file(&path);
    }
}

#[test]
fn every_truncation_and_bit_flip_of_a_small_file_is_handled() {
    let dir = TempDir::new("trunc");
    let path = dir.path("small.webm");
    let frames: Vec<SrcFrame> = (0..40)
        .map(|i| SrcFrame {
            ts_ms: i * 50,
            keyframe: i % 10 == 0,
            data: vec![i as u8; 20],
        })
        .collect();
    let spec = TrackSpec {
        codec: TrackCodec::H264 {
            avcc: vec![1, 66, 0, 30, 0xFF, 0xE0, 0],
        },
        width: 8,
        height: 8,
    };
    common::write_file(&path, &spec, &frames);
    let whole = std::fs::read(&path).unwrap();
    let copy = dir.path("copy.mkv");
    for cut in 0..whole.len() {
        std::fs::write(&copy, &whole[..cut]).unwrap();
        let read = read_file(&copy);
        let repaired = repair(&copy);
        if let (Ok(read), Ok(repaired)) = (read, repaired) {
            assert_eq!(
                read.frames.len() as u64,
                repaired.summary.frames,
                "cut {cut}"
            );
        }
    }
    let mut rng = Rng::new(99);
    for _ in 0..500 {
        let mut bytes = whole.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = (rng.next_u64() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (rng.next_u64() % 8);
        }
        std::fs::write(&copy, &bytes).unwrap();
        let _ = read_file(&copy);
        let _ = repair(&copy);
        let _ = read_file(&copy);
    }
}
