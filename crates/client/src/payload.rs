//! Synthetic media payloads. Each carries the sender's id, a counter and a checksum, so a
//! receiver can prove a packet came from whom it claims, in one piece. Video payloads start with
//! the codec's real framing (a VP8 payload descriptor and header, or an H.264 NAL unit header),
//! so the SFU's keyframe detection sees real keyframes and delta frames.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::VideoCodec;

const MAGIC: &[u8] = b"HRTH";

/// What a receiver learns from a valid payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The sender's participant id.
    pub sender: String,
    /// The sender's packet counter.
    pub counter: u32,
}

fn checksum(data: &[u8]) -> u32 {
    // FNV-1a: enough to catch truncation or corruption, not meant to resist forgery.
    data.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn body(sender: &str, counter: u32, len: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(len + 16);
    buf.put_slice(MAGIC);
    let id = sender.as_bytes();
    buf.put_u8(u8::try_from(id.len()).unwrap_or(u8::MAX));
    buf.put_slice(&id[..id.len().min(255)]);
    buf.put_u32(counter);
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
        decode_body(payload)
    }
}

/// Checks and decodes a video payload in `codec`'s framing. `None` if it is not one of ours or
/// was damaged. The framing lengths differ, so a payload decoded as the wrong codec misses the
/// magic and counts as damaged rather than passing by luck.
pub fn decode_video(payload: &[u8], codec: VideoCodec) -> Option<Decoded> {
    decode_body(payload.get(framing(codec)..)?)
}

fn decode_body(body: &[u8]) -> Option<Decoded> {
    if body.len() < MAGIC.len() + 1 + 4 + 4 || !body.starts_with(MAGIC) {
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
    Some(Decoded {
        sender: sender.to_owned(),
        counter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_detect_damage() {
        let v = video("alice", 7, true, 1000);
        assert!(v.len() >= 1000);
        assert_eq!(
            decode(&v, true),
            Some(Decoded {
                sender: "alice".into(),
                counter: 7
            })
        );
        let a = audio("bob", 9, 120);
        assert_eq!(
            decode(&a, false),
            Some(Decoded {
                sender: "bob".into(),
                counter: 9
            })
        );
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
            decode_video(&key, VideoCodec::H264),
            Some(Decoded {
                sender: "carol".into(),
                counter: 3
            })
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
