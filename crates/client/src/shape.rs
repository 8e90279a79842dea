//! The shape of a real encoder's output, without an encoder: how many bytes each frame has at a
//! target bitrate, and how a frame splits into RTP packets. Pure arithmetic, so it is tested
//! without a clock or a socket.

/// The largest RTP payload we send: with the 12-byte RTP header a packet is 1200 bytes, what
/// browsers aim for to stay under any path MTU once SRTP and UDP/IP headers are added.
pub(crate) const MAX_PAYLOAD: usize = 1188;

/// How much bigger a keyframe is than a delta frame. Real VP8 at 720p and 1.5 Mbit/s gives
/// keyframes of 40-60 kB against 5-7 kB deltas; 8x is in that range.
const KEYFRAME_RATIO: usize = 8;

/// The smallest frame we emit: a frame must hold our identifying payload header.
const MIN_FRAME: usize = 100;

/// Frame sizes of a VP8-like encoder at a constant target bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoShape {
    /// Bytes of a delta frame, before jitter.
    pub(crate) delta_bytes: usize,
    /// Bytes of a keyframe.
    pub(crate) key_bytes: usize,
}

impl VideoShape {
    /// Sizes such that a run of `keyframe_every` frames (one keyframe, the rest deltas) averages
    /// `bitrate` bits per second at `frame_rate` frames per second. With no periodic keyframe
    /// the deltas alone carry the bitrate (keyframes on request add to it, as with a real
    /// encoder).
    pub(crate) fn new(bitrate: u32, frame_rate: u32, keyframe_every: Option<u32>) -> Self {
        let frame_rate = frame_rate.max(1) as usize;
        let mean = (bitrate as usize / 8 / frame_rate).max(MIN_FRAME);
        let delta_bytes = match keyframe_every {
            // One keyframe of RATIO deltas plus (gop - 1) deltas carry gop mean frames.
            Some(gop) => {
                let gop = gop.max(1) as usize;
                (gop * mean / (KEYFRAME_RATIO + gop - 1)).max(MIN_FRAME)
            }
            None => mean,
        };
        Self {
            delta_bytes,
            key_bytes: delta_bytes * KEYFRAME_RATIO,
        }
    }

    /// Bytes of the next frame. `jitter` (-1 to 1) varies delta frames by up to 15%, as scene
    /// content does; keyframes are steadier.
    pub(crate) fn frame_bytes(&self, keyframe: bool, jitter: f64) -> usize {
        let base = if keyframe {
            self.key_bytes
        } else {
            self.delta_bytes
        };
        let scaled = base as f64 * (1.0 + 0.15 * jitter.clamp(-1.0, 1.0));
        (scaled as usize).max(MIN_FRAME)
    }
}

/// Splits a frame into packet payload sizes of at most [`MAX_PAYLOAD`], as even as possible,
/// like the VP8 packetizer of a browser.
pub(crate) fn split(frame_bytes: usize) -> impl Iterator<Item = usize> {
    let packets = frame_bytes.div_ceil(MAX_PAYLOAD).max(1);
    let base = frame_bytes / packets;
    let extra = frame_bytes % packets;
    (0..packets).map(move |i| base + usize::from(i < extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_interval_averages_the_target_bitrate() {
        let shape = VideoShape::new(1_500_000, 30, Some(90));
        assert!(shape.key_bytes > 5 * shape.delta_bytes);
        let gop: usize = (0..90).map(|i| shape.frame_bytes(i == 0, 0.0)).sum();
        let bits_per_second = gop * 8 / 3;
        assert!(
            bits_per_second.abs_diff(1_500_000) < 15_000,
            "{bits_per_second} bit/s"
        );
    }

    #[test]
    fn frames_split_into_packets_of_at_most_1200_bytes_that_add_up() {
        for size in [1, 500, 1188, 1189, 6250, 46_000] {
            let parts: Vec<usize> = split(size).collect();
            assert_eq!(parts.iter().sum::<usize>(), size);
            assert!(parts.iter().all(|p| *p <= MAX_PAYLOAD), "{size}: {parts:?}");
            assert_eq!(parts.len(), size.div_ceil(MAX_PAYLOAD).max(1));
        }
    }

    #[test]
    fn jitter_varies_deltas_within_fifteen_percent() {
        let shape = VideoShape::new(1_500_000, 30, None);
        assert_eq!(shape.delta_bytes, 6250);
        assert_eq!(shape.frame_bytes(false, 1.0), 7187);
        assert_eq!(shape.frame_bytes(false, -5.0), 5312);
    }
}
