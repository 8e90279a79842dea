//! Real media for end-to-end tests: clips made by ffmpeg (whose content is known frame by
//! frame), and the checks ffprobe and ffmpeg make of what a recording wrote.

use hearth_client::{Clip, ClipFrame};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> Self {
        let bytes: [u8; 8] = rand_bytes();
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("{prefix}-{name}"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_bytes() -> [u8; 8] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ (u128::from(std::process::id()) << 64);
    let mut out = [0u8; 8];
    out.copy_from_slice(&mixed.to_le_bytes()[..8]);
    out
}

fn run(cmd: &mut Command) -> std::process::Output {
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (scripts/test installs ffmpeg: apt-get install ffmpeg)")
    });
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A clip made by ffmpeg in `dir`: VP8 of its `testsrc2` pattern (a moving picture with a frame
/// counter, so every frame differs), `seconds` long at `fps` with a keyframe every `gop` frames,
/// 320x240; and Opus of a 440 Hz tone, stereo, 20 ms packets, exactly `seconds` long so the
/// audio and video loops stay in step.
pub fn clip(dir: &Path, seconds: u32, fps: u32, gop: u32) -> Clip {
    let ivf = dir.join("clip.ivf");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate={fps}"))
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
        ])
        .args(["-cpu-used", "8", "-b:v", "400k", "-g", &gop.to_string()])
        .args([
            "-keyint_min",
            &gop.to_string(),
            "-auto-alt-ref",
            "0",
            "-f",
            "ivf",
        ])
        .arg(&ivf));
    let ogg = dir.join("clip.ogg");
    // One packet per Ogg page (20 ms pages), so a page is a packet.
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000")
        .args([
            "-t",
            &seconds.to_string(),
            "-ac",
            "2",
            "-c:a",
            "libopus",
            "-b:a",
            "48k",
        ])
        .args([
            "-frame_duration",
            "20",
            "-page_duration",
            "20000",
            "-f",
            "ogg",
        ])
        .arg(&ogg));
    Clip::from_files(&ivf, fps, &ogg, Some(seconds as usize * 50)).expect("read the clip")
}

/// Like [`clip`], with H.264 video (constrained baseline, as browsers send it) instead of VP8.
/// Returns the clip and the Annex B file its video came from (to decode what was sent).
pub fn h264_clip(dir: &Path, seconds: u32, fps: u32, gop: u32) -> (Clip, PathBuf) {
    let vp8 = clip(dir, seconds, fps, gop); // makes the Opus file too
    let annexb = dir.join("clip.h264");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate={fps}"))
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
        ])
        .args([
            "-level", "3.1", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-tune",
        ])
        .arg("zerolatency")
        .args(["-x264-params"])
        .arg(format!("keyint={gop}:min-keyint={gop}:scenecut=0"))
        .args(["-bsf:v", "h264_mp4toannexb", "-f", "h264"])
        .arg(&annexb));
    let h264 = Clip::from_h264(&annexb, fps, &dir.join("clip.ogg"), Some(vp8.audio.len()))
        .expect("read the H.264 clip");
    assert_eq!(
        h264.video.len() as u32,
        seconds * fps,
        "one access unit per frame"
    );
    (h264, annexb)
}

/// Writes `frames` as an IVF file (what ffmpeg decodes to compare pictures).
pub fn write_ivf(path: &Path, frames: &[ClipFrame], fps: u32) {
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"VP80");
    out.extend_from_slice(&320u16.to_le_bytes());
    out.extend_from_slice(&240u16.to_le_bytes());
    out.extend_from_slice(&fps.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    std::fs::write(path, out).expect("write ivf");
}

/// What ffprobe says of a file's first stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Codec name (`vp8`, `opus`, `h264`).
    pub codec: String,
    /// Picture size of video.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// The container's duration, in seconds.
    pub duration: f64,
    /// Frames (video) or packets (audio) read.
    pub frames: u64,
}

/// Probes `path` with ffprobe, counting frames.
pub fn ffprobe(path: &Path) -> Probe {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["stream=codec_name,width,height,nb_read_packets:format=duration"])
        .args(["-of", "json"])
        .arg(path));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &v["streams"][0];
    let num = |x: &serde_json::Value| {
        x.as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .or_else(|| x.as_f64())
            .unwrap_or(0.0)
    };
    Probe {
        codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
        width: s["width"].as_u64().unwrap_or(0) as u32,
        height: s["height"].as_u64().unwrap_or(0) as u32,
        duration: num(&v["format"]["duration"]),
        frames: num(&s["nb_read_packets"]) as u64,
    }
}

/// What `ffmpeg -v error` prints while decoding all of `path`: empty when it decodes cleanly.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("(exit {})", out.status));
    }
    text
}

/// The MD5 of every decoded picture of `path`'s first video stream, in order.
pub fn picture_hashes(path: &Path) -> Vec<String> {
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// Whether `part` appears in `whole` repeated (a looping clip) as one contiguous run.
pub fn is_contiguous_run_of_loop<T: PartialEq>(part: &[T], whole: &[T]) -> bool {
    if part.is_empty() || whole.is_empty() {
        return part.is_empty();
    }
    (0..whole.len()).any(|start| {
        part.iter()
            .enumerate()
            .all(|(i, x)| *x == whole[(start + i) % whole.len()])
    })
}
