//! Synthetic media out: the sender loops and keyframe-on-request.

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::codec::{CLIENT_PT_OPUS, VideoCodec};
use crate::payload;
use crate::state::{Shared, lock};

/// How a participant publishes.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions {
    /// RTP packets per video frame (30 frames a second).
    pub video_packets_per_frame: u16,
    /// A keyframe every this many frames; `None` sends keyframes only when asked (PLI/FIR),
    /// like an encoder would after its first one.
    pub keyframe_every: Option<u32>,
    /// The codec of the video track. The SFU forwards it as is, so subscribers receive this one.
    pub video_codec: VideoCodec,
    /// Also share a "screen": a second video track declared as `screen` in `publish_offer`.
    pub screen: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            video_packets_per_frame: 3,
            keyframe_every: Some(15),
            video_codec: VideoCodec::Vp8,
            screen: false,
        }
    }
}

/// Marks that the next video frame must be a keyframe whenever the server asks for one.
pub(crate) async fn watch_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    wants_keyframe: Arc<AtomicBool>,
    state: Shared,
) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets
                    .iter()
                    .any(|p| hearth_media::is_keyframe_request(p.as_ref()))
                {
                    lock(&state).keyframe_requests += 1;
                    wants_keyframe.store(true, Ordering::Relaxed);
                }
            }
            Some(_) => {}
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub(crate) async fn send_media(
    kind: RtpCodecKind,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    me: &str,
    options: PublishOptions,
    wants_keyframe: Arc<AtomicBool>,
    state: Shared,
) {
    let packets_per_frame = options.video_packets_per_frame;
    let video = kind == RtpCodecKind::Video;
    let (period, payload_type, ts_step) = if video {
        (
            Duration::from_millis(33),
            options.video_codec.payload_type(),
            3000u32,
        )
    } else {
        (Duration::from_millis(20), CLIENT_PT_OPUS, 960u32)
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut counter: u32 = 0;
    let mut frame: u32 = 0;
    loop {
        ticker.tick().await;
        let per_frame = if video { packets_per_frame.max(1) } else { 1 };
        let periodic = options
            .keyframe_every
            .is_some_and(|n| frame.is_multiple_of(n.max(1)));
        let keyframe = video && (periodic || wants_keyframe.swap(false, Ordering::Relaxed));
        if keyframe {
            lock(&state).keyframes_sent += 1;
        }
        for i in 0..per_frame {
            let payload = if video {
                video_payload(options.video_codec, me, counter, keyframe, i)
            } else {
                payload::audio(me, counter, 120)
            };
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: !video || i + 1 == per_frame,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            // Before negotiation completes the track is unbound; keep the clock running anyway.
            let _ = track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
            counter = counter.wrapping_add(1);
        }
        timestamp = timestamp.wrapping_add(ts_step);
        frame = frame.wrapping_add(1);
    }
}

/// Packet `index` of a video frame, framed as `codec` frames it.
fn video_payload(codec: VideoCodec, me: &str, counter: u32, keyframe: bool, index: u16) -> Bytes {
    match codec {
        // Only the first packet of a frame carries the start-of-partition descriptor (and with
        // it the keyframe bit).
        VideoCodec::Vp8 => {
            let p = payload::video(me, counter, keyframe && index == 0, 1000);
            if index == 0 { p } else { with_continuation(p) }
        }
        // Each packet is a whole slice NAL unit; every slice of an IDR picture is an IDR slice.
        VideoCodec::H264 => payload::h264(me, counter, keyframe, 1000),
    }
}

/// Clears the start-of-partition bit, making the packet a continuation of its frame.
fn with_continuation(p: Bytes) -> Bytes {
    let mut v = p.to_vec();
    v[0] &= !0x10;
    v.into()
}
