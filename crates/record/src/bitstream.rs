//! What a file header needs to know about a video stream, read from its first keyframe: the
//! picture size (VP8 frame header, H.264 sequence parameter set) and, for H.264, the decoder
//! configuration record built from its parameter sets.

use crate::depacketize::avc_nal_units;

/// Width and height of a VP8 keyframe (RFC 6386, 9.1), or `None` for anything else.
pub fn vp8_dimensions(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

/// What an H.264 file header needs, from a keyframe that carries its parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// The AVCDecoderConfigurationRecord (ISO 14496-15), Matroska's CodecPrivate.
    pub record: Vec<u8>,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

/// The configuration of an H.264 keyframe in 4-byte-length form, if it carries an SPS and a PPS.
pub fn avc_config(frame: &[u8]) -> Option<AvcConfig> {
    let sps = avc_nal_units(frame).find(|n| n.first().is_some_and(|b| b & 0x1f == 7))?;
    let pps = avc_nal_units(frame).find(|n| n.first().is_some_and(|b| b & 0x1f == 8))?;
    let (width, height) = sps_dimensions(sps)?;
    if sps.len() < 4 || sps.len() > 0xffff || pps.len() > 0xffff {
        return None;
    }
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    Some(AvcConfig {
        record,
        width,
        height,
    })
}

/// Reads bits MSB first from an RBSP (emulation prevention bytes already removed).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Exp-Golomb unsigned (ue(v)).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb signed (se(v)).
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// Removes emulation prevention bytes (00 00 03 -> 00 00).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Picture size from a sequence parameter set NAL unit (ITU-T H.264, 7.3.2.1.1).
pub fn sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let data = rbsp(sps.get(1..)?);
    let mut b = Bits {
        data: &data,
        pos: 0,
    };
    let profile = b.bits(8)?;
    b.bits(16)?; // constraint flags, level
    b.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = b.ue()?;
        if chroma_format == 3 {
            b.bit()?; // separate_colour_plane_flag
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.bit()?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            let cycle = b.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = b.ue()?.checked_add(1)?;
    let height_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.bit()?; // mb_adaptive_frame_field_flag
    }
    b.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        left = b.ue()?;
        right = b.ue()?;
        top = b.ue()?;
        bottom = b.ue()?;
    }
    let field_factor = 2 - frame_mbs_only;
    let (crop_x, crop_y) = match chroma_format {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = width_mbs
        .checked_mul(16)?
        .checked_sub(crop_x * (left.checked_add(right)?))?;
    let height = height_units
        .checked_mul(16 * field_factor)?
        .checked_sub(crop_y * (top.checked_add(bottom)?))?;
    (width > 0 && height > 0 && width <= 16_384 && height <= 16_384).then_some((width, height))
}

fn skip_scaling_list(b: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vp8_keyframes_tell_their_size_and_delta_frames_do_not() {
        // Frame tag (keyframe, version 0, show), start code, 640 x 480 with no scaling.
        let key = [
            0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0, 0,
        ];
        assert_eq!(vp8_dimensions(&key), Some((640, 480)));
        let mut delta = key;
        delta[0] |= 1;
        assert_eq!(vp8_dimensions(&delta), None);
        assert_eq!(vp8_dimensions(&key[..5]), None);
    }

    #[test]
    fn an_sps_gives_the_cropped_picture_size() {
        // The constrained baseline SPS x264 writes for 1280 x 720 (with emulation prevention).
        let sps = [
            0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
        ];
        assert_eq!(sps_dimensions(&sps), Some((1280, 720)));
        // And a garbage one does not panic.
        assert_eq!(sps_dimensions(&[0x67, 0x42]), None);
    }

    #[test]
    fn the_decoder_record_carries_both_parameter_sets() {
        let sps = [
            0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
        ];
        let pps = [0x68, 0xcb, 0x83, 0xcb, 0x20];
        let mut frame = Vec::new();
        for nal in [&sps[..], &pps[..], &[0x65, 0x88, 0x84][..]] {
            frame.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            frame.extend_from_slice(nal);
        }
        let config = avc_config(&frame).unwrap();
        assert_eq!((config.width, config.height), (1280, 720));
        assert_eq!(&config.record[..6], &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
        assert_eq!(config.record.len(), 6 + 2 + sps.len() + 1 + 2 + pps.len());
        assert_eq!(avc_config(&frame[..4 + sps.len()]), None, "no PPS");
    }
}
