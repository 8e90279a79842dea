//! "Export as one file": the ffmpeg command that composites a recording into one video, every
//! camera and screen in a grid, each appearing and leaving when it did, all audio mixed. Pure:
//! it builds arguments and reads progress lines; the server runs the process.

use crate::manifest::{Manifest, StreamEntry, is_safe_file_name};
use std::path::Path;

/// Width of the composite.
const WIDTH: u32 = 1280;
/// Frame rate of the composite.
const FPS: u32 = 30;

/// The encoders an export can use, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// H.264 + AAC in MP4: plays everywhere; needs ffmpeg's libx264.
    Mp4,
    /// VP8 + Opus in WebM: needs libvpx and libopus.
    Webm,
}

impl ExportFormat {
    /// The output file's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
        }
    }

    /// The output's MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
        }
    }

    /// The best format `encoders` (the output of `ffmpeg -hide_banner -encoders`) allows.
    pub fn pick(encoders: &str) -> Option<Self> {
        let has = |name: &str| {
            encoders
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name))
        };
        if has("libx264") && has("aac") {
            Some(Self::Mp4)
        } else if has("libvpx") && has("libopus") {
            Some(Self::Webm)
        } else {
            None
        }
    }
}

/// Where each video goes in the grid: cell size and columns for `n` tiles.
fn grid(n: usize) -> (u32, u32, u32, u32) {
    let n = n.max(1) as u32;
    let cols = (f64::from(n).sqrt().ceil() as u32).max(1);
    let rows = n.div_ceil(cols);
    let cell_w = (WIDTH / cols) & !1;
    let cell_h = (cell_w * 9 / 16) & !1;
    (cols, rows, cell_w, cell_h)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The arguments (after the program name) that export the recording in `dir` to `output`,
/// writing progress lines to standard output. `None` when there is nothing to export.
pub fn ffmpeg_args(
    manifest: &Manifest,
    dir: &Path,
    output: &Path,
    format: ExportFormat,
) -> Option<Vec<String>> {
    let usable = |s: &&StreamEntry| s.frames > 0 && is_safe_file_name(&s.file);
    let videos: Vec<&StreamEntry> = manifest
        .streams
        .iter()
        .filter(usable)
        .filter(|s| s.kind == "video")
        .collect();
    let audios: Vec<&StreamEntry> = manifest
        .streams
        .iter()
        .filter(usable)
        .filter(|s| s.kind == "audio")
        .collect();
    if videos.is_empty() && audios.is_empty() {
        return None;
    }
    let duration = manifest.duration_ms.max(1);
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-y", "-v", "error"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for stream in videos.iter().chain(&audios) {
        args.push("-i".into());
        args.push(dir.join(&stream.file).to_string_lossy().into_owned());
    }

    let (cols, rows, cell_w, cell_h) = grid(videos.len());
    let mut filter = format!(
        "color=c=0x1d1d22:s={}x{}:r={FPS}:d={}[bg0];",
        cols * cell_w,
        rows * cell_h,
        seconds(duration)
    );
    for (i, stream) in videos.iter().enumerate() {
        let (x, y) = ((i as u32 % cols) * cell_w, (i as u32 / cols) * cell_h);
        // Each tile starts when its stream did and is gone when it ends (eof_action=pass).
        filter.push_str(&format!(
            "[{i}:v]setpts=PTS-STARTPTS+{start}/TB,scale={cell_w}:{cell_h}:force_original_aspect_ratio=decrease,pad={cell_w}:{cell_h}:(ow-iw)/2:(oh-ih)/2,format=yuv420p[v{i}];\
             [bg{i}][v{i}]overlay=x={x}:y={y}:eof_action=pass:repeatlast=0[bg{next}];",
            start = seconds(stream.start_ms),
            next = i + 1,
        ));
    }
    filter.push_str(&format!("[bg{}]format=yuv420p[vout]", videos.len()));
    if !audios.is_empty() {
        filter.push(';');
        for (j, stream) in audios.iter().enumerate() {
            let input = videos.len() + j;
            filter.push_str(&format!(
                "[{input}:a]adelay={}:all=1,aresample=48000[a{j}];",
                stream.start_ms
            ));
        }
        for j in 0..audios.len() {
            filter.push_str(&format!("[a{j}]"));
        }
        filter.push_str(&format!(
            "amix=inputs={}:duration=longest:normalize=0[aout]",
            audios.len()
        ));
    }
    args.push("-filter_complex".into());
    args.push(filter);
    args.extend(["-map".into(), "[vout]".into()]);
    if !audios.is_empty() {
        args.extend(["-map".into(), "[aout]".into()]);
    }
    let codecs: &[&str] = match format {
        ExportFormat::Mp4 => &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
        ],
        ExportFormat::Webm => &[
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "2M",
            "-c:a",
            "libopus",
            "-b:a",
            "96k",
        ],
    };
    args.extend(codecs.iter().map(|s| (*s).to_owned()));
    args.extend([
        "-t".into(),
        seconds(duration),
        "-progress".into(),
        "pipe:1".into(),
        "-nostats".into(),
        output.to_string_lossy().into_owned(),
    ]);
    Some(args)
}

/// Reads one line of ffmpeg's `-progress` output: the fraction done (0 to 1) of a recording
/// `duration_ms` long, when the line says how far it got.
pub fn progress(line: &str, duration_ms: u64) -> Option<f64> {
    let (key, value) = line.trim().split_once('=')?;
    let micros: f64 = match key {
        "out_time_us" | "out_time_ms" => value.parse().ok()?,
        _ => return None,
    };
    Some((micros / 1000.0 / duration_ms.max(1) as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_grid_fits_every_tile() {
        assert_eq!(grid(1), (1, 1, 1280, 720));
        assert_eq!(grid(2), (2, 1, 640, 360));
        assert_eq!(grid(4), (2, 2, 640, 360));
        assert_eq!(grid(5), (3, 2, 426, 238));
    }

    #[test]
    fn the_best_available_encoder_is_chosen() {
        let x264 = " V....D libx264   libx264 H.264\n A..... aac   AAC\n";
        assert_eq!(ExportFormat::pick(x264), Some(ExportFormat::Mp4));
        let vpx = " V....D libvpx   libvpx VP8\n A..... libopus  Opus\n";
        assert_eq!(ExportFormat::pick(vpx), Some(ExportFormat::Webm));
        assert_eq!(ExportFormat::pick(""), None);
    }

    #[test]
    fn progress_lines_become_fractions() {
        assert_eq!(progress("out_time_us=5000000", 10_000), Some(0.5));
        assert_eq!(progress("out_time_ms=20000000", 10_000), Some(1.0));
        assert_eq!(progress("frame=12", 10_000), None);
        assert_eq!(progress("out_time_us=N/A", 10_000), None);
    }
}
