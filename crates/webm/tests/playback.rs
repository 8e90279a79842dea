//! Files the writer produces from real encoded media play back in ffmpeg: right codec,
//! size, frame count and duration, decoding without a single error.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    SrcFrame, TempDir, decode_errors, ffmpeg_generate, frame_hashes, probe, read_annexb_h264,
    read_ivf, read_ogg_opus, vp8_is_key, vp9_is_key, write_file,
};
use hearth_webm::{TrackCodec, TrackSpec, read_file};

fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: no duration reported"));
    assert!(
        (actual - expected).abs() <= 0.1,
        "{what}: duration {actual} s, expected {expected} s"
    );
}

/// Four seconds of 320x240 VP8 at 30 fps with a keyframe a second, as an IVF file in `dir`, and
/// its frames.
fn vp8_source(dir: &TempDir) -> (std::path::PathBuf, (u32, u32, Vec<SrcFrame>)) {
    let ivf = dir.path("src.ivf");
    ffmpeg_generate(
        "testsrc2=size=320x240:rate=30",
        4,
        &[
            "-c:v",
            "libvpx",
            "-g",
            "30",
            "-deadline",
            "realtime",
            "-f",
            "ivf",
        ],
        &ivf,
    );
    let read = read_ivf(&ivf, vp8_is_key);
    (ivf, read)
}

#[test]
fn vp8_recording_decodes_to_the_same_pictures_as_its_source() {
    let dir = TempDir::new("vp8");
    let (ivf, (width, height, frames)) = vp8_source(&dir);
    assert_eq!(frames.len(), 120);
    let out = dir.path("out.webm");
    let spec = TrackSpec {
        codec: TrackCodec::Vp8,
        width,
        height,
    };
    let summary = write_file(&out, &spec, &frames);
    assert_eq!(summary.frames, 120);
    assert_eq!(summary.keyframes, 4);

    let p = probe(&out);
    assert_eq!(p.codec_name.as_deref(), Some("vp8"));
    assert_eq!((p.width, p.height), (Some(320), Some(240)));
    assert_eq!(p.nb_read_frames, Some(120));
    assert_close(p.duration_s, 4.0, "vp8");
    assert_eq!(decode_errors(&out, &[], &[]), "");
    let expected = frame_hashes(&ivf);
    assert_eq!(expected.len(), 120);
    assert_eq!(
        frame_hashes(&out),
        expected,
        "decoded pictures differ from the source"
    );
}

#[test]
fn vp9_recording_decodes_cleanly() {
    let dir = TempDir::new("vp9");
    let ivf = dir.path("src.ivf");
    ffmpeg_generate(
        "testsrc2=size=320x240:rate=30",
        2,
        &[
            "-c:v",
            "libvpx-vp9",
            "-g",
            "30",
            "-deadline",
            "realtime",
            "-row-mt",
            "0",
            "-f",
            "ivf",
        ],
        &ivf,
    );
    let (width, height, frames) = read_ivf(&ivf, vp9_is_key);
    let out = dir.path("out.webm");
    let spec = TrackSpec {
        codec: TrackCodec::Vp9,
        width,
        height,
    };
    write_file(&out, &spec, &frames);

    let p = probe(&out);
    assert_eq!(p.codec_name.as_deref(), Some("vp9"));
    assert_eq!(p.nb_read_packets, Some(frames.len() as u64));
    assert_close(p.duration_s, 2.0, "vp9");
    assert_eq!(decode_errors(&out, &[], &[]), "");
    assert_eq!(frame_hashes(&out), frame_hashes(&ivf));
}

#[test]
fn opus_recording_decodes_cleanly_with_the_right_duration() {
    let dir = TempDir::new("opus");
    let ogg = dir.path("src.ogg");
    ffmpeg_generate(
        "sine=frequency=440:sample_rate=48000",
        4,
        &[
            "-c:a",
            "libopus",
            "-b:a",
            "48k",
            "-page_duration",
            "20000",
            "-f",
            "ogg",
        ],
        &ogg,
    );
    let packets = read_ogg_opus(&ogg);
    assert!(packets.len() >= 199, "only {} opus packets", packets.len());
    let out = dir.path("out.webm");
    let spec = TrackSpec {
        codec: TrackCodec::Opus { channels: 1 },
        width: 0,
        height: 0,
    };
    let summary = write_file(&out, &spec, &packets);
    assert_eq!(summary.frames, packets.len() as u64);

    let p = probe(&out);
    assert_eq!(p.codec_name.as_deref(), Some("opus"));
    assert_eq!(p.channels, Some(1));
    assert_eq!(p.nb_read_packets, Some(packets.len() as u64));
    let expected = (packets.last().unwrap().ts_ms + 20) as f64 / 1000.0;
    assert_close(p.duration_s, expected, "opus");
    assert_eq!(decode_errors(&out, &[], &[]), "");
    let contents = read_file(&out).unwrap();
    assert!(contents.has_cues);
    assert_eq!(contents.channels, 1);
}

#[test]
fn h264_recording_in_mkv_decodes_every_frame() {
    let dir = TempDir::new("h264");
    let annexb = dir.path("src.h264");
    ffmpeg_generate(
        "testsrc2=size=320x240:rate=30",
        2,
        &[
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
        ],
        &annexb,
    );
    let (avcc, frames) = read_annexb_h264(&annexb);
    assert_eq!(frames.len(), 60);
    let codec = TrackCodec::H264 { avcc: avcc.clone() };
    assert_eq!(codec.file_extension(), "mkv");
    let out = dir.path(&format!("out.{}", codec.file_extension()));
    let spec = TrackSpec {
        codec,
        width: 320,
        height: 240,
    };
    let summary = write_file(&out, &spec, &frames);
    assert_eq!(summary.keyframes, 2);

    let p = probe(&out);
    assert_eq!(p.codec_name.as_deref(), Some("h264"));
    assert_eq!((p.width, p.height), (Some(320), Some(240)));
    assert_eq!(p.nb_read_frames, Some(60));
    assert_close(p.duration_s, 2.0, "h264");
    assert_eq!(decode_errors(&out, &[], &[]), "");
    assert_eq!(read_file(&out).unwrap().codec_private, Some(avcc));
}

#[test]
fn seeking_to_two_seconds_decodes_and_duration_is_reported() {
    let dir = TempDir::new("seek");
    let (_, (width, height, frames)) = vp8_source(&dir);
    let out = dir.path("out.webm");
    write_file(
        &out,
        &TrackSpec {
            codec: TrackCodec::Vp8,
            width,
            height,
        },
        &frames,
    );
    assert!(read_file(&out).unwrap().has_cues);

    assert_eq!(decode_errors(&out, &["-ss", "2"], &["-frames:v", "1"]), "");
    assert_eq!(decode_errors(&out, &["-ss", "3.5"], &[]), "");
    assert_close(probe(&out).duration_s, 4.0, "seek");
    // Without the clean decode above, a seek into a delta frame would show up here.
    let shown = common::run_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-read_intervals",
            "2%+#1",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            out.to_str().unwrap(),
        ],
    );
    let first: f64 = String::from_utf8_lossy(&shown.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!((first - 2.0).abs() < 0.05, "seek landed at {first} s");
}
