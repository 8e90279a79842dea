//! Synthetic media out: the sender loops and keyframe-on-request.

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::codec::{CLIENT_PT_OPUS, VideoCodec};
use crate::payload;
use crate::shape::{VideoShape, split};
use crate::state::{Shared, lock};

/// Bytes of an audio payload: Opus voice at about 48 kbit/s, 50 packets a second.
const AUDIO_PAYLOAD: usize = 120;
/// Body bytes of a video packet when the size is not derived from a bitrate.
const FIXED_VIDEO_BODY: usize = 1000;

/// How a participant publishes.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// RTP packets per video frame, when `video_bitrate` is not set.
    pub video_packets_per_frame: u16,
    /// A keyframe every this many frames; `None` sends keyframes only when asked (PLI/FIR),
    /// like an encoder would after its first one.
    pub keyframe_every: Option<u32>,
    /// The codec of the video track. The SFU forwards it as is, so subscribers receive this one.
    pub video_codec: VideoCodec,
    /// Also share a "screen": a second video track declared as `screen` in `publish_offer`.
    pub screen: bool,
    /// Publish a microphone track (Opus-sized packets, 50 a second).
    pub audio: bool,
    /// Publish a camera track. Off for an audio-only speaker.
    pub video: bool,
    /// Size video like an encoder at this many bits per second: frame sizes follow from the
    /// bitrate and frame rate, keyframes are several times bigger than delta frames, and frames
    /// are split into packets of at most 1200 bytes. `None`: `video_packets_per_frame` packets
    /// of about 1000 bytes.
    pub video_bitrate: Option<u32>,
    /// Video frames per second.
    pub frame_rate: u32,
    /// Send these real encoded frames (VP8 and Opus) instead of synthetic payloads.
    pub clip: Option<(std::sync::Arc<crate::Clip>, crate::ClipSending)>,
    /// Mark audio packets with this level (-dBov, 0 loudest, 127 silence; RFC 6464), as a
    /// browser does; `None` sends no level until `Participant::set_audio_level`.
    pub audio_level: Option<u8>,
    /// Send the camera as simulcast: one layer per entry, at that many bits per second,
    /// smallest first (at most three, RIDs `q`, `h`, `f` as the web client uses). Each layer
    /// is its own RTP stream with its own SSRC, sequence numbers and keyframes, as a browser
    /// sends them. `None`: one stream at `video_bitrate`.
    pub simulcast: Option<Vec<u32>>,
    /// Pace video like a browser's sender: packets leave no faster than this multiple of
    /// `video_bitrate` (libwebrtc paces at 2.5), so a keyframe's dozens of packets are spread
    /// over tens of milliseconds instead of leaving at once, and the frames behind it wait
    /// their turn. Each packet is stamped when it leaves. `None`: every frame's packets leave
    /// back to back, the worst case for the SFU's latency.
    pub pacing: Option<f64>,
}

/// The RIDs of simulcast layers, smallest first.
pub const SIMULCAST_RIDS: [&str; 3] = ["q", "h", "f"];

/// The header extension naming a simulcast stream's RID (RFC 8852).
pub(crate) const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The header extension naming a packet's media section (RFC 8843).
pub(crate) const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The `a=mid` of the media section that sends MediaStreamTrack `track_id`, in `sdp`.
pub(crate) fn mid_of_track(sdp: &str, track_id: &str) -> Option<String> {
    let mut mid = None;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(msid) = line.strip_prefix("a=msid:")
            && msid.split_whitespace().nth(1) == Some(track_id)
        {
            return mid;
        }
    }
    None
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            video_packets_per_frame: 3,
            keyframe_every: Some(15),
            video_codec: VideoCodec::Vp8,
            screen: false,
            audio: true,
            video: true,
            video_bitrate: None,
            frame_rate: 30,
            clip: None,
            audio_level: None,
            simulcast: None,
            pacing: None,
        }
    }
}

/// Marks that the next video frame of a stream must be a keyframe whenever the server asks
/// for one. `streams` maps each SSRC of the track (one per simulcast layer) to its flag; a
/// request naming none of them marks them all.
pub(crate) async fn watch_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    streams: Vec<(u32, Arc<AtomicBool>)>,
    state: Shared,
) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                for packet in packets
                    .iter()
                    .filter(|p| hearth_media::is_keyframe_request(p.as_ref()))
                {
                    lock(&state).keyframe_requests += 1;
                    let named: Vec<u32> = packet.destination_ssrc();
                    let mut any = false;
                    for (ssrc, flag) in &streams {
                        if named.contains(ssrc) {
                            flag.store(true, Ordering::Relaxed);
                            any = true;
                        }
                    }
                    if !any {
                        for (_, flag) in &streams {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            Some(_) => {}
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The level a participant's audio says it has when it carries none.
pub(crate) const NO_AUDIO_LEVEL: u8 = u8::MAX;

/// One published track's sending end.
pub(crate) struct Sender {
    pub kind: RtpCodecKind,
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    /// Set when the server asked for a keyframe.
    pub wants_keyframe: Arc<AtomicBool>,
    /// Audio: the negotiated id of the level extension, and the level to put in it.
    pub level: Option<(u8, Arc<AtomicU8>)>,
    /// Header extensions every packet carries (a simulcast layer's MID and RID), by id.
    pub fixed_extensions: Vec<(u8, Bytes)>,
    /// Off while the server has this simulcast layer paused: nothing is sent, and the first
    /// frame after it is back on is a keyframe (as browsers do).
    pub on: Arc<AtomicBool>,
}

/// Sends synthetic media on `sender`'s track until aborted, counting what it sent into `state`.
pub(crate) async fn send_media(sender: Sender, me: &str, options: PublishOptions, state: Shared) {
    let Sender {
        kind,
        track,
        ssrc,
        wants_keyframe,
        level,
        fixed_extensions,
        on,
    } = sender;
    let video = kind == RtpCodecKind::Video;
    let frame_rate = options.frame_rate.max(1);
    let (period, payload_type, ts_step) = if video {
        (
            Duration::from_micros(1_000_000 / u64::from(frame_rate)),
            options.video_codec.payload_type(),
            90_000 / frame_rate,
        )
    } else {
        (Duration::from_millis(20), CLIENT_PT_OPUS, 960u32)
    };
    let shape = options
        .video_bitrate
        .map(|bitrate| VideoShape::new(bitrate, frame_rate, options.keyframe_every));
    let mut pacer = match (video, options.pacing, options.video_bitrate) {
        (true, Some(factor), Some(bitrate)) if factor > 0.0 => Some(Pacer::new(
            factor * f64::from(bitrate),
            tokio::time::Instant::now(),
        )),
        _ => None,
    };
    let mut ticker = tokio::time::interval(period);
    // A paced sender catches up on the frames that queued behind a keyframe, as a pacer's
    // queue drains; an unpaced one never falls behind its clock but by stalls.
    ticker.set_missed_tick_behavior(if pacer.is_some() {
        tokio::time::MissedTickBehavior::Burst
    } else {
        tokio::time::MissedTickBehavior::Delay
    });
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut counter: u32 = 0;
    let mut frame: u32 = 0;
    let mut was_on = true;
    loop {
        ticker.tick().await;
        let is_on = on.load(Ordering::Relaxed);
        if !is_on {
            was_on = false;
            continue;
        }
        if !was_on {
            was_on = true;
            wants_keyframe.store(true, Ordering::Relaxed);
        }
        let periodic = options
            .keyframe_every
            .is_some_and(|n| frame.is_multiple_of(n.max(1)));
        let keyframe = video && (periodic || wants_keyframe.swap(false, Ordering::Relaxed));
        let sizes: Vec<usize> = match (video, shape) {
            (false, _) => vec![AUDIO_PAYLOAD],
            (true, Some(shape)) => {
                let jitter = rand::random::<f64>() * 2.0 - 1.0;
                split(shape.frame_bytes(keyframe, jitter)).collect()
            }
            (true, None) => {
                let overhead = payload::VIDEO_OVERHEAD;
                vec![
                    FIXED_VIDEO_BODY + overhead;
                    usize::from(options.video_packets_per_frame.max(1))
                ]
            }
        };
        let mut bytes = 0;
        for (i, size) in sizes.iter().enumerate() {
            if let Some(pacer) = pacer.as_mut() {
                let departure = pacer.departure(tokio::time::Instant::now(), *size);
                tokio::time::sleep_until(departure).await;
            }
            let payload = if video {
                video_payload(options.video_codec, me, counter, keyframe, i == 0, *size)
            } else {
                payload::audio(me, counter, *size)
            };
            bytes += payload.len() as u64;
            let mut packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: i + 1 == sizes.len(),
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            for (id, value) in &fixed_extensions {
                let _ = packet.header.set_extension(*id, value.clone());
            }
            if let Some((ext, value)) = &level {
                let value = value.load(Ordering::Relaxed);
                if value != NO_AUDIO_LEVEL {
                    // RFC 6464: the voice-activity flag, then the level.
                    let byte = if value < 127 { 0x80 | value } else { value };
                    let _ = packet.header.set_extension(*ext, Bytes::from(vec![byte]));
                }
            }
            // Before negotiation completes the track is unbound; keep the clock running anyway.
            let _ = track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
            counter = counter.wrapping_add(1);
        }
        {
            let mut s = lock(&state);
            s.packets_sent += sizes.len() as u64;
            s.bytes_sent += bytes;
            if keyframe {
                s.keyframes_sent += 1;
            }
        }
        timestamp = timestamp.wrapping_add(ts_step);
        frame = frame.wrapping_add(1);
    }
}

/// When each packet may leave, at a fixed rate: a packet waits for the ones before it to have
/// left at that rate, and an idle sender starts at once.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    bits_per_second: f64,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(bits_per_second: f64, now: tokio::time::Instant) -> Self {
        Self {
            bits_per_second,
            next: now,
        }
    }

    /// When a packet of `bytes` may leave, if asked at `now`.
    fn departure(&mut self, now: tokio::time::Instant, bytes: usize) -> tokio::time::Instant {
        let at = self.next.max(now);
        self.next = at + Duration::from_secs_f64(bytes as f64 * 8.0 / self.bits_per_second);
        at
    }
}

/// A video packet payload of about `size` bytes, framed as `codec` frames it; `first` is the
/// first packet of its frame.
fn video_payload(
    codec: VideoCodec,
    me: &str,
    counter: u32,
    keyframe: bool,
    first: bool,
    size: usize,
) -> Bytes {
    let body = size.saturating_sub(payload::VIDEO_OVERHEAD);
    match codec {
        // Only the first packet of a frame carries the start-of-partition descriptor (and with
        // it the keyframe bit).
        VideoCodec::Vp8 => {
            let p = payload::video(me, counter, keyframe && first, body);
            if first { p } else { with_continuation(p) }
        }
        // Each packet is a whole slice NAL unit; every slice of an IDR picture is an IDR slice.
        VideoCodec::H264 => payload::h264(me, counter, keyframe, body),
    }
}

/// Clears the start-of-partition bit, making the packet a continuation of its frame.
fn with_continuation(p: Bytes) -> Bytes {
    let mut v = p.to_vec();
    v[0] &= !0x10;
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_keyframe_is_spread_at_the_pacing_rate_and_an_idle_pacer_waits_for_nothing() {
        let start = tokio::time::Instant::now();
        // 2.5 x 1.5 Mbit/s, as libwebrtc paces a 1.5 Mbit/s camera.
        let mut pacer = Pacer::new(3_750_000.0, start);
        // A keyframe of 40 full packets, all asked for at once.
        let departures: Vec<_> = (0..40).map(|_| pacer.departure(start, 1200)).collect();
        assert_eq!(departures[0], start, "the first leaves at once");
        let spread = departures[39] - departures[0];
        // 39 packets of 9 600 bits at 3.75 Mbit/s: 99.84 ms.
        assert!(
            (spread.as_secs_f64() - 0.09984).abs() < 1e-6,
            "spread {spread:?}"
        );
        // Long after, the next packet leaves when asked.
        let later = start + Duration::from_secs(1);
        assert_eq!(pacer.departure(later, 1200), later);
    }
}
