//! Test helpers: temp dirs, ffmpeg/ffprobe as subprocesses, and tiny parsers for the
//! source formats ffmpeg produces (IVF, Ogg, Annex-B H.264), so the tests feed the
//! writer real encoded media.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hearth_webm::{FileSummary, TrackSpec, WebmWriter};

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "hearth-webm-{name}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, failing the test with a clear message when it is not installed.
pub fn run(tool: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run `{tool}` ({e}); these tests need ffmpeg and ffprobe on PATH"),
    }
}

/// Runs a tool and insists it succeeds.
pub fn run_ok(tool: &str, args: &[&str]) -> Output {
    let out = run(tool, args);
    assert!(
        out.status.success(),
        "`{tool} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Encodes a synthetic clip with ffmpeg: `input` is a lavfi source, `codec_args` the
/// encoder and muxer options.
pub fn ffmpeg_generate(input: &str, secs: u32, codec_args: &[&str], out: &Path) {
    let secs = secs.to_string();
    let mut args = vec!["-v", "error", "-y", "-f", "lavfi", "-i", input, "-t", &secs];
    args.extend_from_slice(codec_args);
    args.push(out.to_str().unwrap());
    run_ok("ffmpeg", &args);
}

/// What ffprobe says about a file's first stream and its format.
#[derive(Debug, Default)]
pub struct Probe {
    pub codec_name: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub channels: Option<u32>,
    pub nb_read_frames: Option<u64>,
    pub nb_read_packets: Option<u64>,
    pub duration_s: Option<f64>,
}

/// `ffprobe -show_streams -show_format -count_frames -count_packets -of json`.
pub fn probe(path: &Path) -> Probe {
    let out = run_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_frames",
            "-count_packets",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (streams, format) = text.split_once("\"format\"").unwrap_or((&text, ""));
    Probe {
        codec_name: json_field(streams, "codec_name"),
        width: json_field(streams, "width").and_then(|v| v.parse().ok()),
        height: json_field(streams, "height").and_then(|v| v.parse().ok()),
        channels: json_field(streams, "channels").and_then(|v| v.parse().ok()),
        nb_read_frames: json_field(streams, "nb_read_frames").and_then(|v| v.parse().ok()),
        nb_read_packets: json_field(streams, "nb_read_packets").and_then(|v| v.parse().ok()),
        duration_s: json_field(format, "duration").and_then(|v| v.parse().ok()),
    }
}

/// The first `"key": value` in ffprobe's pretty-printed JSON, quotes removed.
fn json_field(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\": ");
    let start = text.find(&needle)? + needle.len();
    let value = text[start..].split([',', '\n']).next()?.trim();
    Some(value.trim_matches('"').to_string())
}

/// Decodes the whole file to nowhere and returns what ffmpeg complained about.
pub fn decode_errors(path: &Path, before_input: &[&str], after_input: &[&str]) -> String {
    let mut args = vec!["-v", "error"];
    args.extend_from_slice(before_input);
    args.extend_from_slice(&["-i", path.to_str().unwrap()]);
    args.extend_from_slice(after_input);
    args.extend_from_slice(&["-f", "null", "-"]);
    let out = run("ffmpeg", &args);
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!("(exit status {})", out.status));
    }
    errors
}

/// The per-frame MD5s of the decoded pictures (`-f framemd5`), timestamps left out.
pub fn frame_hashes(path: &Path) -> Vec<String> {
    let out = run_ok(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "framemd5",
            "-",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// One encoded frame taken from a source file.
#[derive(Debug, Clone)]
pub struct SrcFrame {
    pub ts_ms: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Parses an IVF file: a 32-byte header, then (u32 size, u64 pts) + data per frame.
/// `is_key` tells keyframes from the frame bytes (codec specific).
pub fn read_ivf(path: &Path, is_key: fn(&[u8]) -> bool) -> (u32, u32, Vec<SrcFrame>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"DKIF", "not an IVF file");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let header_len = usize::from(u16_at(6));
    let (width, height) = (u32::from(u16_at(12)), u32::from(u16_at(14)));
    let (den, num) = (u64::from(u32_at(16)), u64::from(u32_at(20)));
    let mut frames = Vec::new();
    let mut pos = header_len;
    while pos + 12 <= bytes.len() {
        let size = u32_at(pos) as usize;
        let pts = u64::from_le_bytes(bytes[pos + 4..pos + 12].try_into().unwrap());
        let data = bytes[pos + 12..pos + 12 + size].to_vec();
        frames.push(SrcFrame {
            ts_ms: pts * 1000 * num / den,
            keyframe: is_key(&data),
            data,
        });
        pos += 12 + size;
    }
    (width, height, frames)
}

/// VP8: bit 0 of the first byte is 0 on keyframes.
pub fn vp8_is_key(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 1 == 0)
}

/// VP9 profile 0: show_existing_frame and frame_type bits are both 0 on keyframes.
pub fn vp9_is_key(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 0x0C == 0)
}

/// Parses an Ogg Opus file into packets, skipping OpusHead and OpusTags; timestamps
/// come from each packet's own duration (its TOC byte).
pub fn read_ogg_opus(path: &Path) -> Vec<SrcFrame> {
    let bytes = std::fs::read(path).unwrap();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while pos + 27 <= bytes.len() {
        assert_eq!(&bytes[pos..pos + 4], b"OggS", "bad Ogg page at {pos}");
        let segments = usize::from(bytes[pos + 26]);
        let table = &bytes[pos + 27..pos + 27 + segments];
        let mut data = pos + 27 + segments;
        for &lace in table {
            current.extend_from_slice(&bytes[data..data + usize::from(lace)]);
            data += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        pos = data;
    }
    let mut samples = 0u64;
    packets
        .into_iter()
        .skip(2)
        .map(|data| {
            let frame = SrcFrame {
                ts_ms: samples / 48,
                keyframe: true,
                data,
            };
            samples += opus_packet_samples(&frame.data);
            frame
        })
        .collect()
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte.
fn opus_packet_samples(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let count = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(packet.get(1).map_or(0, |b| b & 0x3F)),
    };
    per_frame * count
}

/// Splits an Annex-B H.264 stream into access units (length-prefixed NALs, as Matroska
/// wants) and builds the avcC from the first SPS and PPS. Frames are 30 fps, in order
/// (baseline has no B-frames).
pub fn read_annexb_h264(path: &Path) -> (Vec<u8>, Vec<SrcFrame>) {
    let bytes = std::fs::read(path).unwrap();
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start = None;
    while i + 3 <= bytes.len() {
        if bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1 {
            if let Some(s) = start {
                let mut end = i;
                while end > s && bytes[end - 1] == 0 {
                    end -= 1;
                }
                nals.push(&bytes[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(&bytes[s..]);
    }

    let (mut sps, mut pps) = (None, None);
    let mut units: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut current: Option<(bool, Vec<u8>, bool)> = None; // (key, data, has_slice)
    for nal in nals {
        let kind = nal[0] & 0x1F;
        match kind {
            7 if sps.is_none() => sps = Some(nal.to_vec()),
            8 if pps.is_none() => pps = Some(nal.to_vec()),
            _ => {}
        }
        if kind == 9 {
            continue;
        }
        let is_slice = kind == 1 || kind == 5;
        let starts_unit = match &current {
            Some((_, _, has_slice)) => {
                *has_slice && (!is_slice || nal.get(1).is_some_and(|b| b & 0x80 != 0))
            }
            None => true,
        };
        if starts_unit && let Some((key, data, _)) = current.take() {
            units.push((key, data));
        }
        let unit = current.get_or_insert_with(|| (false, Vec::new(), false));
        unit.0 |= kind == 5;
        unit.2 |= is_slice;
        unit.1.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        unit.1.extend_from_slice(nal);
    }
    if let Some((key, data, _)) = current {
        units.push((key, data));
    }

    let (sps, pps) = (sps.expect("no SPS"), pps.expect("no PPS"));
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&pps);
    let frames = units
        .into_iter()
        .enumerate()
        .map(|(n, (keyframe, data))| SrcFrame {
            ts_ms: n as u64 * 1000 / 30,
            keyframe,
            data,
        })
        .collect();
    (avcc, frames)
}

/// Writes `frames` to a new file and finishes it, with a fake clock that follows the
/// media timestamps (as a live recording would).
pub fn write_file(path: &Path, spec: &TrackSpec, frames: &[SrcFrame]) -> FileSummary {
    let t0 = Instant::now();
    let mut writer = WebmWriter::create(path, spec, 1_700_000_000_000, t0).unwrap();
    for f in frames {
        let now = t0 + Duration::from_millis(f.ts_ms);
        writer
            .write_frame(f.ts_ms, f.keyframe, &f.data, now)
            .unwrap();
    }
    writer.finish().unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
