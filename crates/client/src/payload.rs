//! Synthetic media payloads. Each carries the sender's id, a counter, its send time and a
//! checksum, so a receiver can prove a packet came from whom it claims, in one piece, and measure
//! loss (gaps in the counter) and one-way latency (the send time). Video payloads start with
//! the codec's real framing (a VP8 payload descriptor and header, or an H.264 NAL unit header),
//! so the SFU's keyframe detection sees real keyframes and delta frames.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::VideoCodec;
use crate::stats::now_us;

const MAGIC: &[u8] = b"HRTH";

/// What a receiver learns from a valid payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The sender's participant id.
    pub sender: String,
    /// The sender's packet counter.
    pub counter: u32,
    /// When it was sent: microseconds since the UNIX epoch ([`crate::now_us`]).
    pub sent_us: u64,
}

/// A decoded payload borrowing its sender id: what the receive path uses, once per packet,
/// without allocating.
pub(crate) struct DecodedRef<'a> {
    pub(crate) sender: &'a str,
    pub(crate) counter: u32,
    pub(crate) sent_us: u64,
}

impl DecodedRef<'_> {
    fn owned(&self) -> Decoded {
        Decoded {
            sender: self.sender.to_owned(),
            counter: self.counter,
            sent_us: self.sent_us,
        }
    }
}

/// How many bytes a video payload adds to the body length asked for (framing and checksum).
pub(crate) const VIDEO_OVERHEAD: usize = 2 + 4;

fn checksum(data: &[u8]) -> u32 {
    // FNV-1a over 8-byte words: enough to catch truncation or corruption (not meant to resist
    // forgery), and cheap enough that 100k packets/s of receive checks stay out of the way.
    let mut chunks = data.chunks_exact(8);
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for word in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for b in chunks.remainder() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

fn body(sender: &str, counter: u32, len: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(len + 16);
    buf.put_slice(MAGIC);
    let id = sender.as_bytes();
    buf.put_u8(u8::try_from(id.len()).unwrap_or(u8::MAX));
    buf.put_slice(&id[..id.len().min(255)]);
    buf.put_u32(counter);
    buf.put_u64(now_us());
    let mut fill = counter;
    while buf.len() < len {
        fill = fill.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        buf.put_u8((fill >> 16) as u8);
    }
    buf
}

fn seal(mut buf: BytesMut, prefix: usize) -> Bytes {
    let sum = checksum(&buf[prefix..]);
    buf.put_u32(sum);
    buf.freeze()
}

/// An Opus-sized audio payload of about `len` bytes.
pub fn audio(sender: &str, counter: u32, len: usize) -> Bytes {
    seal(body(sender, counter, len), 0)
}

/// A VP8 payload of about `len` bytes: descriptor (start of partition 0), then a payload header
/// marking a keyframe or a delta frame, then the identifying body.
pub fn video(sender: &str, counter: u32, keyframe: bool, len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(len + 20);
    buf.put_u8(0x10);
    // VP8 payload header: P bit (lowest) is 0 for a key frame; show_frame set.
    buf.put_u8(if keyframe { 0x10 } else { 0x11 });
    buf.put_slice(&body(sender, counter, len));
    seal(buf, 2)
}

/// NAL unit header of an IDR slice: F=0, NRI=3 (reference, highest priority), type 5.
const NAL_IDR_SLICE: u8 = 0x65;
/// NAL unit header of a non-IDR slice: F=0, NRI=2, type 1.
const NAL_NON_IDR_SLICE: u8 = 0x41;

/// An H.264 single NAL unit packet (RFC 6184, section 5.6) of about `len` bytes: an IDR slice
/// when `keyframe`, a non-IDR slice otherwise, carrying the identifying body. A frame sent as
/// several such packets is a picture coded in several slices, each of the frame's type.
pub fn h264(sender: &str, counter: u32, keyframe: bool, len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(len + 20);
    buf.put_u8(if keyframe {
        NAL_IDR_SLICE
    } else {
        NAL_NON_IDR_SLICE
    });
    buf.put_slice(&body(sender, counter, len));
    seal(buf, 1)
}

/// How many bytes of codec framing precede the body of a `codec` payload.
fn framing(codec: VideoCodec) -> usize {
    match codec {
        VideoCodec::Vp8 => 2,
        VideoCodec::H264 => 1,
    }
}

/// Checks and decodes a payload (audio, or VP8 video when `video`). `None` if it is not one of
/// ours or was damaged.
pub fn decode(payload: &[u8], video: bool) -> Option<Decoded> {
    if video {
        decode_video(payload, VideoCodec::Vp8)
    } else {
        decode_body(payload).map(|d| d.owned())
    }
}

/// Checks and decodes a video payload in `codec`'s framing. `None` if it is not one of ours or
/// was damaged. The framing lengths differ, so a payload decoded as the wrong codec misses the
/// magic and counts as damaged rather than passing by luck.
pub fn decode_video(payload: &[u8], codec: VideoCodec) -> Option<Decoded> {
    decode_video_ref(payload, codec).map(|d| d.owned())
}

/// [`decode_video`] without allocating.
pub(crate) fn decode_video_ref(payload: &[u8], codec: VideoCodec) -> Option<DecodedRef<'_>> {
    decode_body(payload.get(framing(codec)..)?)
}

/// Decodes an audio payload without allocating.
pub(crate) fn decode_audio_ref(payload: &[u8]) -> Option<DecodedRef<'_>> {
    decode_body(payload)
}

fn decode_body(body: &[u8]) -> Option<DecodedRef<'_>> {
    if body.len() < MAGIC.len() + 1 + 4 + 8 + 4 || !body.starts_with(MAGIC) {
        return None;
    }
    let (data, sum) = body.split_at(body.len() - 4);
    if checksum(data).to_be_bytes() != sum {
        return None;
    }
    let id_len = usize::from(data[MAGIC.len()]);
    let id_start = MAGIC.len() + 1;
    let sender = std::str::from_utf8(data.get(id_start..id_start + id_len)?).ok()?;
    let counter_bytes = data.get(id_start + id_len..id_start + id_len + 4)?;
    let counter = u32::from_be_bytes(counter_bytes.try_into().ok()?);
    let sent_start = id_start + id_len + 4;
    let sent_bytes = data.get(sent_start..sent_start + 8)?;
    let sent_us = u64::from_be_bytes(sent_bytes.try_into().ok()?);
    Some(DecodedRef {
        sender,
        counter,
        sent_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_detect_damage() {
        let before = now_us();
        let v = video("alice", 7, true, 1000);
        assert_eq!(v.len(), 1000 + VIDEO_OVERHEAD);
        let d = decode(&v, true).expect("decodes");
        assert_eq!((d.sender.as_str(), d.counter), ("alice", 7));
        assert!(
            d.sent_us >= before && d.sent_us <= now_us(),
            "stamped when built"
        );
        let a = audio("bob", 9, 120);
        let d = decode(&a, false).expect("decodes");
        assert_eq!((d.sender.as_str(), d.counter), ("bob", 9));
        let mut damaged = v.to_vec();
        damaged[500] ^= 1;
        assert_eq!(decode(&damaged, true), None);
        assert_eq!(decode(&v[..v.len() - 1], true), None);
        assert_eq!(decode(b"nope", false), None);
    }

    #[test]
    fn h264_payloads_round_trip_and_are_not_mistaken_for_vp8() {
        let key = h264("carol", 3, true, 1000);
        let delta = h264("carol", 4, false, 1000);
        assert!(key.len() >= 1000);
        assert_eq!(
            decode_video(&key, VideoCodec::H264).map(|d| (d.sender, d.counter)),
            Some(("carol".to_owned(), 3))
        );
        assert_eq!(
            decode_video(&delta, VideoCodec::H264).map(|d| d.counter),
            Some(4)
        );
        assert_eq!(decode_video(&key, VideoCodec::Vp8), None);
        assert_eq!(
            decode_video(&video("carol", 3, true, 1000), VideoCodec::H264),
            None
        );
        let mut damaged = key.to_vec();
        damaged[700] ^= 1;
        assert_eq!(decode_video(&damaged, VideoCodec::H264), None);
    }

    #[test]
    fn the_sfu_sees_h264_idr_slices_as_keyframes_and_others_not() {
        // The SFU's own detector: a keyframe-on-request test means nothing if it cannot tell.
        assert!(hearth_core::is_keyframe(
            "video/H264",
            &h264("d", 1, true, 100)
        ));
        assert!(!hearth_core::is_keyframe(
            "video/H264",
            &h264("d", 2, false, 100)
        ));
        assert!(hearth_core::is_keyframe(
            "video/VP8",
            &video("d", 1, true, 100)
        ));
        assert!(!hearth_core::is_keyframe(
            "video/VP8",
            &video("d", 2, false, 100)
        ));
    }
}
