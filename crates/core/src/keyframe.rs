//! Keyframe detection and the throttle on keyframe requests sent to a publisher.

use std::time::{Duration, Instant};

/// Whether an RTP payload starts a keyframe, for the codecs Hearth forwards. `mime` is the
/// codec's MIME type (case-insensitive). Audio is never a keyframe; an unknown codec never is.
pub fn is_keyframe(mime: &str, payload: &[u8]) -> bool {
    if mime.eq_ignore_ascii_case("video/VP8") {
        vp8_is_keyframe(payload)
    } else if mime.eq_ignore_ascii_case("video/H264") {
        h264_is_keyframe(payload)
    } else {
        false
    }
}

/// RFC 7741: the payload descriptor, then (on the first packet of a frame) the VP8 payload
/// header whose lowest bit is 0 for a key frame.
fn vp8_is_keyframe(payload: &[u8]) -> bool {
    vp8_header_offset(payload).is_some_and(|offset| payload[offset] & 0x01 == 0)
}

/// The frame size a VP8 keyframe's first packet declares (RFC 6386, section 9.1: after the
/// 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height), or `None` for any
/// other packet. How the SFU learns how large each simulcast layer is.
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<(u32, u32)> {
    let offset = vp8_header_offset(payload)?;
    if payload[offset] & 0x01 != 0 {
        return None;
    }
    let header = payload.get(offset..offset + 10)?;
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([header[6], header[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([header[8], header[9]]) & 0x3fff);
    Some((width, height))
}

/// Where the VP8 payload header starts, if this packet starts partition 0 of a frame.
fn vp8_header_offset(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x0f;
    if !start_of_partition || partition_id != 0 {
        return None;
    }
    let mut offset = 1;
    if extended {
        let x = *payload.get(1)?;
        offset += 1;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes, depending on its M bit.
            let pid = *payload.get(offset)?;
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            offset += 1; // TID/Y/KEYIDX
        }
    }
    (offset < payload.len()).then_some(offset)
}

/// RFC 6184: an IDR slice (type 5) or SPS (type 7), alone, in a STAP-A, or at the start of a
/// FU-A.
fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        5 | 7 => true,
        24 => {
            // STAP-A: 16-bit size, then a NAL unit, repeated.
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(nal) = rest.get(2..2 + size) else {
                    return false;
                };
                if nal.first().is_some_and(|h| matches!(h & 0x1f, 5 | 7)) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7)),
        _ => false,
    }
}

/// Coalesces keyframe requests for one published track. Every subscriber that joins, loses
/// packets or overflows asks for a keyframe; the publisher must see at most one request per
/// interval, or a room of twenty turns into a stream of keyframes that starves the encoder.
///
/// A request that is refused is not forgotten: [`KeyframeThrottle::poll`] reports when the
/// deferred request becomes due, so the last asker still gets its keyframe.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_sent: Option<Instant>,
    deferred: bool,
}

impl KeyframeThrottle {
    /// A throttle that lets one request through per `min_interval`.
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last_sent: None,
            deferred: false,
        }
    }

    /// A subscriber asks for a keyframe at `now`. Returns `true` when the request should be sent
    /// upstream now; otherwise it is deferred to the end of the interval.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < self.min_interval => {
                self.deferred = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.deferred = false;
                true
            }
        }
    }

    /// When a deferred request is waiting, the instant it becomes due.
    pub fn deadline(&self) -> Option<Instant> {
        if self.deferred {
            self.last_sent.map(|last| last + self.min_interval)
        } else {
            None
        }
    }

    /// Called at `now` (typically at [`Self::deadline`]): returns `true` when the deferred
    /// request should be sent now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.last_sent = Some(now);
                self.deferred = false;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_and_delta_frame() {
        // Descriptor: S=1, PID=0, no extension; payload header with P=0 (key frame).
        assert!(is_keyframe("video/VP8", &[0x10, 0x10, 0x02, 0x00]));
        // P=1: interframe.
        assert!(!is_keyframe("video/VP8", &[0x10, 0x11, 0x02, 0x00]));
        // Not the start of a partition: cannot tell, so not a keyframe.
        assert!(!is_keyframe("video/VP8", &[0x00, 0x10]));
        // Extended descriptor with a 2-byte PictureID (as Chrome sends): X=1, I=1, M=1.
        assert!(is_keyframe("video/VP8", &[0x90, 0x80, 0x81, 0x23, 0x50]));
        assert!(!is_keyframe("video/VP8", &[0x90, 0x80, 0x81, 0x23, 0x51]));
        // Truncated input never panics.
        assert!(!is_keyframe("video/VP8", &[0x90, 0x80, 0x81]));
        assert!(!is_keyframe("video/VP8", &[]));
    }

    #[test]
    fn h264_keyframes_in_each_packetization() {
        assert!(is_keyframe("video/H264", &[0x65, 0x88])); // IDR
        assert!(is_keyframe("video/H264", &[0x67, 0x42])); // SPS
        assert!(!is_keyframe("video/H264", &[0x41, 0x9a])); // non-IDR slice
        // STAP-A with SPS inside.
        assert!(is_keyframe("video/H264", &[0x78, 0x00, 0x02, 0x67, 0x42]));
        // STAP-A with a size that runs past the end: no panic, no keyframe.
        assert!(!is_keyframe("video/H264", &[0x78, 0x00, 0x09, 0x67]));
        // FU-A start of an IDR, and its continuation.
        assert!(is_keyframe("video/H264", &[0x7c, 0x85, 0x00]));
        assert!(!is_keyframe("video/H264", &[0x7c, 0x05, 0x00]));
    }

    #[test]
    fn audio_is_never_a_keyframe() {
        assert!(!is_keyframe("audio/opus", &[0x10, 0x10]));
    }

    #[test]
    fn throttle_lets_one_request_through_per_interval_and_defers_the_rest() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(throttle.request(t0));
        // Twenty subscribers ask within the interval: none goes up now.
        for i in 1..=20 {
            assert!(!throttle.request(t0 + Duration::from_millis(i * 10)));
        }
        assert_eq!(throttle.deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(!throttle.poll(t0 + Duration::from_millis(499)));
        // ...but one deferred request goes up when the interval ends.
        assert!(throttle.poll(t0 + Duration::from_millis(500)));
        assert_eq!(throttle.deadline(), None);
        assert!(!throttle.poll(t0 + Duration::from_millis(2000)));
        // After a quiet interval, a request passes at once.
        assert!(throttle.request(t0 + Duration::from_millis(1200)));
    }

    #[test]
    fn vp8_keyframes_declare_their_size() {
        // Descriptor with a 15-bit picture id, then a keyframe header: 1280x720.
        let mut key = vec![0x90, 0x80, 0x81, 0x23, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
        key.extend_from_slice(&1280u16.to_le_bytes());
        key.extend_from_slice(&(720u16 | 0x4000).to_le_bytes()); // scaling bits are not size
        key.extend_from_slice(&[0; 20]);
        assert_eq!(vp8_keyframe_size(&key), Some((1280, 720)));
        assert!(is_keyframe("video/VP8", &key));
        let mut delta = key.clone();
        delta[4] |= 0x01;
        assert_eq!(vp8_keyframe_size(&delta), None);
        assert_eq!(vp8_keyframe_size(&key[..12]), None, "truncated");
        assert_eq!(vp8_keyframe_size(&[0x10, 0x10]), None, "no start code");
    }
}
