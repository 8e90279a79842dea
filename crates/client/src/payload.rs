//! Synthetic media payloads. Each carries the sender's id, a counter and a checksum, so a
//! receiver can prove a packet came from whom it claims, in one piece. Video payloads start with
//! a real VP8 payload descriptor and payload header, so the SFU's keyframe detection sees real
//! keyframes and delta frames.

use bytes::{BufMut, Bytes, BytesMut};

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

/// Checks and decodes a payload (audio, or video when `video`). `None` if it is not one of
/// ours or was damaged.
pub fn decode(payload: &[u8], video: bool) -> Option<Decoded> {
    let body = if video { payload.get(2..)? } else { payload };
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
}
