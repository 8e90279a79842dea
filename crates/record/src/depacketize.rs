//! Turns a stream's ordered RTP packets back into whole encoded frames (RFC 7741 for VP8,
//! RFC 6184 for H.264, RFC 7587 for Opus), and says when frames were lost.
//!
//! A frame is only emitted when every packet of it arrived: a frame with a hole would decode to
//! garbage, and every later frame that references it too. The caller restarts video at the next
//! keyframe after [`Assembled::Lost`].

use crate::reorder::Ordered;
use bytes::Bytes;
use rtc::rtp;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

/// The codecs a stream can be recorded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus audio: one packet is one frame.
    Opus,
    /// VP8 video.
    Vp8,
    /// H.264 video, packetization mode 1.
    H264,
}

impl Codec {
    /// The codec for a MIME type such as `video/VP8`; `None` when Hearth cannot record it.
    pub fn from_mime(mime: &str) -> Option<Self> {
        if mime.eq_ignore_ascii_case("audio/opus") {
            Some(Self::Opus)
        } else if mime.eq_ignore_ascii_case("video/VP8") {
            Some(Self::Vp8)
        } else if mime.eq_ignore_ascii_case("video/H264") {
            Some(Self::H264)
        } else {
            None
        }
    }

    /// Whether this is a video codec.
    pub fn is_video(self) -> bool {
        !matches!(self, Self::Opus)
    }
}

/// One whole encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The RTP timestamp all its packets carried.
    pub rtp_ts: u32,
    /// Whether it decodes on its own.
    pub keyframe: bool,
    /// The frame as a file stores it: the VP8 frame; H.264 NAL units each prefixed by a
    /// 4-byte length; the Opus packet.
    pub data: Vec<u8>,
}

/// What comes out of a [`FrameAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A frame, complete.
    Frame(EncodedFrame),
    /// Frames were lost here (or a broken one thrown away).
    Lost,
}

/// Most bytes one frame may have: a 4K keyframe is well under this; more is a broken or hostile
/// stream, and the frame is dropped rather than grown without bound.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Reassembles the frames of one stream from packets in sequence order.
pub struct FrameAssembler {
    codec: Codec,
    /// The frame being collected: its timestamp and the bytes so far. `None` between frames,
    /// and after a broken start until the next frame begins.
    current: Option<(u32, Vec<u8>)>,
    /// Skip packets until one with a new timestamp begins a frame.
    skipping: Option<u32>,
    h264: H264Packet,
}

impl std::fmt::Debug for FrameAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameAssembler")
            .field("codec", &self.codec)
            .finish()
    }
}

impl FrameAssembler {
    /// An assembler for `codec`.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            current: None,
            skipping: None,
            h264: avc_depacketizer(),
        }
    }

    /// Takes the next item from the reorder buffer.
    pub fn push(&mut self, item: Ordered, out: &mut Vec<Assembled>) {
        match item {
            Ordered::Lost => {
                self.abandon();
                out.push(Assembled::Lost);
            }
            Ordered::Packet(packet) => self.packet(&packet, out),
        }
    }

    /// Drops the frame in progress (its remaining packets will be skipped).
    fn abandon(&mut self) {
        if let Some((ts, _)) = self.current.take() {
            self.skipping = Some(ts);
        }
        self.h264 = avc_depacketizer();
    }

    fn packet(&mut self, packet: &rtp::Packet, out: &mut Vec<Assembled>) {
        let ts = packet.header.timestamp;
        if self.codec == Codec::Opus {
            if !packet.payload.is_empty() {
                out.push(Assembled::Frame(EncodedFrame {
                    rtp_ts: ts,
                    keyframe: true,
                    data: packet.payload.to_vec(),
                }));
            }
            return;
        }
        if self.skipping == Some(ts) {
            return;
        }
        self.skipping = None;
        // A new timestamp while a frame is open: its last packet (the marker) never came.
        if let Some((open_ts, _)) = &self.current
            && *open_ts != ts
        {
            self.current = None;
            self.h264 = avc_depacketizer();
            out.push(Assembled::Lost);
        }
        let starts = self.current.is_none();
        let Some(body) = self.depacketize(&packet.payload, starts) else {
            // Broken payload, or a frame whose start we never saw: skip the rest of it.
            if self.current.take().is_some() || starts {
                out.push(Assembled::Lost);
            }
            self.skipping = Some(ts);
            self.h264 = avc_depacketizer();
            return;
        };
        let (_, data) = self.current.get_or_insert_with(|| (ts, Vec::new()));
        if data.len() + body.len() > MAX_FRAME_BYTES {
            self.abandon();
            out.push(Assembled::Lost);
            return;
        }
        data.extend_from_slice(&body);
        if packet.header.marker {
            let (ts, data) = self.current.take().expect("inserted above");
            if data.is_empty() {
                return;
            }
            let keyframe = match self.codec {
                Codec::Vp8 => data[0] & 0x01 == 0,
                Codec::H264 => avc_nal_types(&data).any(|t| t == 5),
                Codec::Opus => true,
            };
            out.push(Assembled::Frame(EncodedFrame {
                rtp_ts: ts,
                keyframe,
                data,
            }));
        }
    }

    /// The codec payload of one packet, or `None` when it is broken or (`starts`) does not
    /// begin a frame.
    fn depacketize(&mut self, payload: &Bytes, starts: bool) -> Option<Bytes> {
        match self.codec {
            Codec::Vp8 => {
                let (begins_partition, body) = vp8_descriptor(payload)?;
                if starts && !begins_partition {
                    return None;
                }
                Some(payload.slice(body..))
            }
            Codec::H264 => {
                if starts && !h264_can_start(payload) {
                    return None;
                }
                // A FU-A fragment before the last gives an empty result: the depacketizer
                // holds it until the fragment that ends the NAL unit.
                self.h264.depacketize(payload).ok()
            }
            Codec::Opus => Some(payload.clone()),
        }
    }
}

/// Reads a VP8 payload descriptor (RFC 7741, 4.2): whether the packet begins partition 0 of
/// a frame, and where the frame data starts. `None` for a payload too short for its descriptor.
fn vp8_descriptor(payload: &[u8]) -> Option<(bool, usize)> {
    let first = *payload.first()?;
    let begins = first & 0x10 != 0 && first & 0x07 == 0;
    let mut offset = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        offset = 2;
        if ext & 0x80 != 0 {
            // PictureID: 15 bits when its first bit (M) is set, else 7.
            offset += if *payload.get(offset)? & 0x80 != 0 {
                2
            } else {
                1
            };
        }
        if ext & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            offset += 1; // TID / Y / KEYIDX
        }
    }
    (offset < payload.len()).then_some((begins, offset))
}

fn avc_depacketizer() -> H264Packet {
    let mut packet = H264Packet::default();
    packet.is_avc = true;
    packet
}

/// Whether an H.264 payload can be the first of a frame: anything but a FU-A continuation.
fn h264_can_start(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(28) => payload.get(1).is_some_and(|fu| fu & 0x80 != 0),
        Some(0) | None => false,
        Some(_) => true,
    }
}

/// The NAL unit types of a frame in 4-byte-length form. Stops at a malformed length.
pub fn avc_nal_types(data: &[u8]) -> impl Iterator<Item = u8> + '_ {
    avc_nal_units(data).filter_map(|nal| nal.first().map(|b| b & 0x1f))
}

/// The NAL units of a frame in 4-byte-length form. Stops at a malformed length.
pub fn avc_nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let nal = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(nal)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Ordered {
        let mut p = rtp::Packet::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.payload = Bytes::copy_from_slice(payload);
        Ordered::Packet(p)
    }

    /// A VP8 payload: a one-byte descriptor (S bit on the first packet), then the bytes.
    fn vp8(first: bool, body: &[u8]) -> Vec<u8> {
        let mut v = vec![if first { 0x10 } else { 0x00 }];
        v.extend_from_slice(body);
        v
    }

    fn frames(out: &[Assembled]) -> Vec<Option<(u32, bool, Vec<u8>)>> {
        out.iter()
            .map(|a| match a {
                Assembled::Frame(f) => Some((f.rtp_ts, f.keyframe, f.data.clone())),
                Assembled::Lost => None,
            })
            .collect()
    }

    #[test]
    fn vp8_frames_are_joined_from_their_packets() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        // A keyframe (first payload byte's low bit 0) in two packets, then a delta frame.
        a.push(rtp(1, 100, false, &vp8(true, &[0x10, 1])), &mut out);
        a.push(rtp(2, 100, true, &vp8(false, &[2, 3])), &mut out);
        a.push(rtp(3, 200, true, &vp8(true, &[0x11, 4])), &mut out);
        assert_eq!(
            frames(&out),
            vec![
                Some((100, true, vec![0x10, 1, 2, 3])),
                Some((200, false, vec![0x11, 4]))
            ]
        );
    }

    #[test]
    fn a_vp8_frame_missing_a_packet_is_dropped_not_emitted_broken() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        a.push(rtp(1, 100, false, &vp8(true, &[0x10, 1])), &mut out);
        a.push(Ordered::Lost, &mut out);
        a.push(rtp(3, 100, true, &vp8(false, &[3])), &mut out);
        a.push(rtp(4, 200, true, &vp8(true, &[0x10, 9])), &mut out);
        assert_eq!(frames(&out), vec![None, Some((200, true, vec![0x10, 9]))]);
    }

    #[test]
    fn a_frame_whose_marker_never_came_is_dropped() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        a.push(rtp(1, 100, false, &vp8(true, &[0x10, 1])), &mut out);
        a.push(rtp(2, 200, true, &vp8(true, &[0x11, 2])), &mut out);
        assert_eq!(frames(&out), vec![None, Some((200, false, vec![0x11, 2]))]);
    }

    #[test]
    fn a_frame_whose_start_was_lost_is_skipped() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        a.push(rtp(2, 100, false, &vp8(false, &[2])), &mut out);
        a.push(rtp(3, 100, true, &vp8(false, &[3])), &mut out);
        a.push(rtp(4, 200, true, &vp8(true, &[0x10, 4])), &mut out);
        assert_eq!(frames(&out), vec![None, Some((200, true, vec![0x10, 4]))]);
    }

    #[test]
    fn h264_fragments_and_aggregates_become_length_prefixed_nal_units() {
        let mut a = FrameAssembler::new(Codec::H264);
        let mut out = Vec::new();
        // STAP-A with SPS (7) and PPS (8), then an IDR slice (5) split in a FU-A.
        let stap = [24, 0, 2, 0x67, 1, 0, 2, 0x68, 2];
        a.push(rtp(1, 100, false, &stap), &mut out);
        a.push(rtp(2, 100, false, &[0x7c, 0x85, 10, 11]), &mut out);
        a.push(rtp(3, 100, true, &[0x7c, 0x45, 12]), &mut out);
        let got = frames(&out);
        let [Some((100, true, data))] = got.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(avc_nal_types(data).collect::<Vec<_>>(), vec![7, 8, 5]);
        let idr = avc_nal_units(data).nth(2).unwrap();
        assert_eq!(idr, &[0x65, 10, 11, 12]);
    }

    #[test]
    fn opus_packets_are_frames_and_loss_is_reported() {
        let mut a = FrameAssembler::new(Codec::Opus);
        let mut out = Vec::new();
        a.push(rtp(1, 960, true, &[1, 2]), &mut out);
        a.push(Ordered::Lost, &mut out);
        a.push(rtp(3, 2880, false, &[3]), &mut out);
        assert_eq!(
            frames(&out),
            vec![
                Some((960, true, vec![1, 2])),
                None,
                Some((2880, true, vec![3]))
            ]
        );
    }

    #[test]
    fn garbage_payloads_never_panic_and_never_make_keyframes() {
        for codec in [Codec::Vp8, Codec::H264] {
            let mut a = FrameAssembler::new(codec);
            let mut out = Vec::new();
            for (i, payload) in [&[][..], &[0xff], &[28], &[24, 0xff, 0xff], &[0x80]]
                .iter()
                .enumerate()
            {
                a.push(rtp(i as u16, i as u32, true, payload), &mut out);
            }
            // A well-formed descriptor around garbage is indistinguishable from a delta frame;
            // what matters is that no recording could start on it.
            assert!(
                out.iter()
                    .all(|o| !matches!(o, Assembled::Frame(f) if f.keyframe)),
                "{codec:?}: {out:?}"
            );
        }
    }
}
