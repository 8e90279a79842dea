//! Real encoded media out: frames of a real encoder (read from a file by the caller), sent as a
//! browser would packetize them, looping. Used where the receiver must decode what arrives:
//! recordings are checked frame by frame against what was sent.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use crate::codec::{CLIENT_PT_OPUS, VideoCodec};
use crate::shape::MAX_PAYLOAD;
use crate::state::{Shared, lock};

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipFrame {
    /// The frame as the encoder produced it (a VP8 frame; an Opus packet).
    pub data: Bytes,
    /// Whether it decodes on its own.
    pub keyframe: bool,
}

/// A short piece of real media, sent in a loop: VP8 or H.264 video at `fps` and 20 ms Opus
/// packets. The first video frame must be a keyframe, so every loop starts cleanly.
#[derive(Debug, Clone, Default)]
pub struct Clip {
    /// The video codec: VP8 frames, or H.264 access units in Annex B form (start codes).
    pub codec: VideoCodec,
    /// Video frames, in order.
    pub video: Vec<ClipFrame>,
    /// Video frames per second.
    pub fps: u32,
    /// Opus packets of 20 ms each, in order.
    pub audio: Vec<ClipFrame>,
}

impl Clip {
    /// Loads a clip: VP8 frames from an IVF file at `fps`, and Opus packets from an Ogg file
    /// holding one 20 ms packet per page (`ffmpeg … -c:a libopus -frame_duration 20
    /// -page_duration 20000 -f ogg`). `audio_packets` keeps that many (the encoder's trailing
    /// flush packet would make the audio loop longer than the video one).
    pub fn from_files(
        ivf: &Path,
        fps: u32,
        ogg: &Path,
        audio_packets: Option<usize>,
    ) -> std::io::Result<Self> {
        let invalid = |e: rtc::shared::error::Error| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        };
        let file = std::io::BufReader::new(std::fs::File::open(ivf)?);
        let (mut reader, _) = IVFReader::new(file).map_err(invalid)?;
        let mut video = Vec::new();
        while let Ok((frame, _)) = reader.parse_next_frame() {
            let keyframe = frame.first().is_some_and(|b| b & 0x01 == 0);
            video.push(ClipFrame {
                data: frame.freeze(),
                keyframe,
            });
        }
        if !video.first().is_some_and(|f| f.keyframe) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the video clip must start with a keyframe",
            ));
        }
        let audio = read_opus(ogg, audio_packets)?;
        Ok(Self {
            codec: VideoCodec::Vp8,
            video,
            fps,
            audio,
        })
    }

    /// Loads a clip of H.264 from an Annex B elementary stream (`ffmpeg … -c:v libx264 -f h264`),
    /// split into access units, and Opus as in [`Clip::from_files`].
    pub fn from_h264(
        annexb: &Path,
        fps: u32,
        ogg: &Path,
        audio_packets: Option<usize>,
    ) -> std::io::Result<Self> {
        let stream = std::fs::read(annexb)?;
        let video: Vec<ClipFrame> = access_units(&stream)
            .into_iter()
            .map(|au| {
                let keyframe = nal_units(&au).any(|n| n.first().is_some_and(|b| b & 0x1f == 5));
                ClipFrame {
                    keyframe,
                    data: Bytes::from(au),
                }
            })
            .collect();
        if !video.first().is_some_and(|f| f.keyframe) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the video clip must start with a keyframe",
            ));
        }
        Ok(Self {
            codec: VideoCodec::H264,
            video,
            fps,
            audio: read_opus(ogg, audio_packets)?,
        })
    }
}

/// Opus packets from an Ogg file with one packet per page.
fn read_opus(ogg: &Path, keep: Option<usize>) -> std::io::Result<Vec<ClipFrame>> {
    let invalid = |e: rtc::shared::error::Error| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    };
    {
        let file = std::io::BufReader::new(std::fs::File::open(ogg)?);
        let (mut reader, _) = OggReader::new(file, true).map_err(invalid)?;
        let mut audio = Vec::new();
        while let Ok((page, _)) = reader.parse_next_page() {
            if page.is_empty() || page.starts_with(b"OpusTags") {
                continue;
            }
            audio.push(ClipFrame {
                data: page.freeze(),
                keyframe: true,
            });
        }
        if let Some(n) = keep {
            audio.truncate(n);
        }
        Ok(audio)
    }
}

/// The NAL units of an Annex B stream (without their start codes).
fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // The next start code, and a leading zero of a 4-byte one.
            let code = s - 3;
            if code > 0 && stream[code - 1] == 0 {
                code - 1
            } else {
                code
            }
        })
        .chain(std::iter::once(stream.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(s, e)| &stream[s..e.max(s)])
}

/// Splits an Annex B stream into access units (pictures), each with 4-byte start codes: a new
/// one begins at a parameter set, SEI or delimiter after a slice, or at a slice whose first
/// macroblock is 0.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(stream) {
        let Some(&header) = nal.first() else { continue };
        let kind = header & 0x1f;
        let slice = matches!(kind, 1 | 5);
        // first_mb_in_slice is ue(v); its first bit is 1 exactly when it is 0.
        let first_slice = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = has_slice && (matches!(kind, 6..=9) || first_slice);
        if starts_unit && !current.is_empty() {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_slice |= slice;
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// How a clip is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipSending {
    /// Fraction (0 to 1) of RTP packets dropped before they leave, at random: a lossy uplink
    /// the SFU cannot repair (the sender never had them).
    pub loss: f64,
    /// Seed of the loss pattern, so a run can be repeated.
    pub seed: u64,
}

impl Default for ClipSending {
    fn default() -> Self {
        Self { loss: 0.0, seed: 1 }
    }
}

/// Sends `clip`'s frames of `kind` on `track` in real time until aborted.
pub(crate) async fn send_clip(
    kind: RtpCodecKind,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    clip: Arc<Clip>,
    sending: ClipSending,
    state: Shared,
) {
    let video = kind == RtpCodecKind::Video;
    let frames = if video { &clip.video } else { &clip.audio };
    if frames.is_empty() {
        return;
    }
    let fps = clip.fps.max(1);
    let (period, payload_type, ts_step) = if video {
        (
            Duration::from_micros(1_000_000 / u64::from(fps)),
            clip.codec.payload_type(),
            90_000 / fps,
        )
    } else {
        (Duration::from_millis(20), CLIENT_PT_OPUS, 960)
    };
    let mut payloader: Box<dyn Payloader> = match clip.codec {
        VideoCodec::Vp8 => Box::new(Vp8Payloader::default()),
        VideoCodec::H264 => Box::new(H264Payloader::default()),
    };
    // The same seed drops the same packets on every run (the SSRC, random, stays out of it);
    // audio and video get different patterns.
    let mut rng = rand::rngs::StdRng::seed_from_u64(sending.seed ^ u64::from(video));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    for frame in frames.iter().cycle() {
        ticker.tick().await;
        let payloads = if video {
            payloader
                .payload(MAX_PAYLOAD, &frame.data)
                .unwrap_or_default()
        } else {
            vec![frame.data.clone()]
        };
        let count = payloads.len();
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for (i, payload) in payloads.into_iter().enumerate() {
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: i + 1 == count,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            seq = seq.wrapping_add(1);
            // The sequence number is spent either way: to the receiver a dropped packet is a
            // hole, exactly like loss on the wire.
            if sending.loss > 0.0 && rng.random::<f64>() < sending.loss {
                dropped += 1;
                continue;
            }
            bytes += packet.payload.len() as u64;
            let _ = track.write_rtp(packet).await;
            sent += 1;
        }
        {
            let mut s = lock(&state);
            s.packets_sent += sent;
            s.bytes_sent += bytes;
            s.packets_dropped_on_purpose += dropped;
            if frame.keyframe && video {
                s.keyframes_sent += 1;
            }
        }
        timestamp = timestamp.wrapping_add(ts_step);
    }
}
