//! Real encoded media out: frames of a real encoder (read from a file by the caller), sent as a
//! browser would packetize them, looping. Used where the receiver must decode what arrives:
//! recordings are checked frame by frame against what was sent.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use crate::codec::{CLIENT_PT_OPUS, CLIENT_PT_VP8};
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

/// A short piece of real media, sent in a loop: VP8 video at `fps` and 20 ms Opus packets.
/// The first video frame must be a keyframe, so every loop starts cleanly.
#[derive(Debug, Clone, Default)]
pub struct Clip {
    /// VP8 frames, in order.
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
        if let Some(n) = audio_packets {
            audio.truncate(n);
        }
        Ok(Self { video, fps, audio })
    }
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
            CLIENT_PT_VP8,
            90_000 / fps,
        )
    } else {
        (Duration::from_millis(20), CLIENT_PT_OPUS, 960)
    };
    let mut payloader = Vp8Payloader::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(sending.seed ^ u64::from(ssrc));
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
