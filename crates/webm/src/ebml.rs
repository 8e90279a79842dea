//! EBML primitives: element ids, variable-length integers, element builders, a
//! bounds-checked parser for in-memory element bodies, and the CRC-32 Matroska uses.
//!
//! Everything here is pure and never panics on arbitrary input: parsing returns
//! [`Parse::NeedMore`] or [`Parse::Invalid`] instead of indexing past the end.

/// Element ids used by this crate (only the ones we write or must recognise).
pub(crate) mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const VOID: u32 = 0xEC;
    pub const CRC32: u32 = 0xBF;

    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;

    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2AD7B1;
    pub const DURATION: u32 = 0x4489;
    pub const DATE_UTC: u32 = 0x4461;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;

    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;

    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;

    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
}

/// The 8-byte "unknown size" marker: the Segment carries it until the file is finished.
pub(crate) const UNKNOWN_SIZE_8: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Appends an element id (its bytes already carry the length marker).
pub(crate) fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8).min(3) as usize;
    out.extend_from_slice(&bytes[skip..]);
}

/// Bytes needed to encode `size` as a vint (the all-ones value is reserved for "unknown").
pub(crate) fn size_width(size: u64) -> usize {
    (1..=8).find(|&w| size < (1u64 << (7 * w)) - 1).unwrap_or(8)
}

/// Appends `size` as a vint of exactly `width` bytes. Fixed widths let us overwrite a
/// size in place later without moving anything.
pub(crate) fn put_size_width(out: &mut Vec<u8>, size: u64, width: usize) {
    let width = width.clamp(1, 8);
    let marked = size | (1u64 << (7 * width));
    out.extend_from_slice(&marked.to_be_bytes()[8 - width..]);
}

/// Appends `size` as the shortest vint.
pub(crate) fn put_size(out: &mut Vec<u8>, size: u64) {
    put_size_width(out, size, size_width(size));
}

/// Appends a binary (or string) element.
pub(crate) fn put_bytes(out: &mut Vec<u8>, id: u32, data: &[u8]) {
    put_id(out, id);
    put_size(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Appends an unsigned integer element in the fewest bytes (at least one).
pub(crate) fn put_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let len = (8 - (value.leading_zeros() / 8) as usize).max(1);
    put_bytes(out, id, &value.to_be_bytes()[8 - len..]);
}

/// Appends an unsigned integer element with an 8-byte body, so rewriting it never
/// changes the element's length.
pub(crate) fn put_uint_fixed(out: &mut Vec<u8>, id: u32, value: u64) {
    put_id(out, id);
    put_size_width(out, 8, 1);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a signed integer element (always 8 bytes; only DateUTC uses it).
pub(crate) fn put_int(out: &mut Vec<u8>, id: u32, value: i64) {
    put_bytes(out, id, &value.to_be_bytes());
}

/// Appends a 64-bit float element.
pub(crate) fn put_float(out: &mut Vec<u8>, id: u32, value: f64) {
    put_bytes(out, id, &value.to_be_bytes());
}

/// Appends a Void element of exactly `total` bytes (id and size included).
///
/// A Void cannot be shorter than 2 bytes; callers size their reservations so the
/// leftover is never 1. Up to 128 bytes a 1-byte size is used, beyond that an 8-byte one.
pub(crate) fn put_void(out: &mut Vec<u8>, total: usize) {
    debug_assert!(total >= 2, "a Void needs at least 2 bytes");
    if total < 2 {
        return;
    }
    out.push(0xEC);
    let (width, payload) = if total <= 128 {
        (1, total - 2)
    } else {
        (8, total - 9)
    };
    put_size_width(out, payload as u64, width);
    out.resize(out.len() + payload, 0);
}

/// Outcome of parsing a prefix of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parse<T> {
    /// Parsed; the value and how many bytes it used.
    Ok(T, usize),
    /// The bytes end before the value does.
    NeedMore,
    /// The bytes cannot start a valid value.
    Invalid,
}

/// Reads an element id of 1 to 4 bytes (the marker bits are kept, as ids are written).
pub(crate) fn read_id(buf: &[u8]) -> Parse<u32> {
    let Some(&first) = buf.first() else {
        return Parse::NeedMore;
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Parse::Invalid;
    }
    let Some(bytes) = buf.get(..len) else {
        return Parse::NeedMore;
    };
    let id = bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    Parse::Ok(id, len)
}

/// Reads an element size of 1 to 8 bytes; `None` is the reserved "unknown size".
pub(crate) fn read_size(buf: &[u8]) -> Parse<Option<u64>> {
    let Some(&first) = buf.first() else {
        return Parse::NeedMore;
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Parse::Invalid;
    }
    let Some(bytes) = buf.get(..len) else {
        return Parse::NeedMore;
    };
    let mut value = u64::from(first) & (0xFF >> len);
    for &b in &bytes[1..] {
        value = (value << 8) | u64::from(b);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Parse::Ok((value != all_ones).then_some(value), len)
}

/// An element's id and size, as found at the start of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Element id.
    pub id: u32,
    /// Bytes taken by the id and the size.
    pub len: usize,
    /// Body size; `None` for an unknown-size element.
    pub size: Option<u64>,
}

/// Reads an element header (id then size).
pub(crate) fn read_header(buf: &[u8]) -> Parse<Header> {
    let (id, id_len) = match read_id(buf) {
        Parse::Ok(v, n) => (v, n),
        Parse::NeedMore => return Parse::NeedMore,
        Parse::Invalid => return Parse::Invalid,
    };
    let rest = buf.get(id_len..).unwrap_or(&[]);
    match read_size(rest) {
        Parse::Ok(size, n) => Parse::Ok(
            Header {
                id,
                len: id_len + n,
                size,
            },
            id_len + n,
        ),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid => Parse::Invalid,
    }
}

/// Decodes an unsigned integer body (0 to 8 bytes).
pub(crate) fn read_uint(body: &[u8]) -> Option<u64> {
    (body.len() <= 8).then(|| body.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Decodes a float body (0, 4 or 8 bytes).
pub(crate) fn read_float(body: &[u8]) -> Option<f64> {
    match body.len() {
        0 => Some(0.0),
        4 => body
            .try_into()
            .ok()
            .map(|b| f64::from(f32::from_be_bytes(b))),
        8 => body.try_into().ok().map(f64::from_be_bytes),
        _ => None,
    }
}

/// One child element inside an in-memory master element body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child<'a> {
    /// Element id.
    pub id: u32,
    /// Offset of the child's first byte (its id) inside the parent body.
    pub offset: usize,
    /// Offset of the child's body inside the parent body.
    pub body_offset: usize,
    /// The child's body.
    pub body: &'a [u8],
}

impl Child<'_> {
    /// Length of the whole child element: id, size and body.
    pub fn total_len(&self) -> usize {
        self.body_offset - self.offset + self.body.len()
    }
}

/// Iterates the children of a master element body. Yields `Err(offset)` once, at the
/// first child that is torn, has an unknown size, or runs past the parent, then stops.
pub(crate) struct Children<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Walks the children of `buf` (a master element's body).
pub(crate) fn children(buf: &[u8]) -> Children<'_> {
    Children {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let rest = self.buf.get(start..).unwrap_or(&[]);
        let child = match read_header(rest) {
            Parse::Ok(
                Header {
                    id,
                    len,
                    size: Some(size),
                },
                _,
            ) => usize::try_from(size)
                .ok()
                .and_then(|size| len.checked_add(size))
                .and_then(|end| rest.get(len..end).map(|body| (id, body, end))),
            _ => None,
        };
        match child {
            Some((id, body, end)) => {
                self.pos = start + end;
                Some(Ok(Child {
                    id,
                    offset: start,
                    body_offset: start + (end - body.len()),
                    body,
                }))
            }
            None => {
                self.failed = true;
                Some(Err(start))
            }
        }
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE, reflected), as Matroska's CRC-32 element uses. Streaming, so a cluster's
/// checksum can cover its Timestamp and its blocks without joining them first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    /// A fresh checksum.
    pub fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    /// The checksum of everything fed so far.
    pub fn value(self) -> u32 {
        !self.0
    }
}

/// Checksum of one buffer.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(data);
    crc.value()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_round_trip_at_every_width() {
        for width in 1..=8 {
            let max = (1u64 << (7 * width)) - 2;
            for value in [0, 1, max / 2, max] {
                let mut out = Vec::new();
                put_size_width(&mut out, value, width);
                assert_eq!(out.len(), width);
                assert_eq!(read_size(&out), Parse::Ok(Some(value), width));
            }
        }
        assert_eq!(read_size(&UNKNOWN_SIZE_8), Parse::Ok(None, 8));
        assert_eq!(read_size(&[0xFF]), Parse::Ok(None, 1));
        assert_eq!(read_size(&[0x00]), Parse::Invalid);
        assert_eq!(read_size(&[0x40]), Parse::NeedMore);
    }

    #[test]
    fn shortest_size_avoids_the_reserved_all_ones_value() {
        assert_eq!(size_width(126), 1);
        assert_eq!(size_width(127), 2);
        assert_eq!(size_width((1 << 14) - 2), 2);
        assert_eq!(size_width((1 << 14) - 1), 3);
    }

    #[test]
    fn ids_of_one_to_four_bytes_are_read() {
        for id in [id::VOID, id::SEEK, id::TIMESTAMP_SCALE, id::CLUSTER] {
            let mut out = Vec::new();
            put_id(&mut out, id);
            assert_eq!(read_id(&out), Parse::Ok(id, out.len()));
        }
        assert_eq!(read_id(&[0x08]), Parse::Invalid);
        assert_eq!(read_id(&[0x1F, 0x43]), Parse::NeedMore);
    }

    #[test]
    fn void_has_exactly_the_requested_length() {
        for total in 2..400 {
            let mut out = Vec::new();
            put_void(&mut out, total);
            assert_eq!(out.len(), total);
            let Parse::Ok(h, n) = read_header(&out) else {
                panic!("void of {total} does not parse");
            };
            assert_eq!(h.id, id::VOID);
            assert_eq!(n as u64 + h.size.unwrap(), total as u64);
        }
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn children_stop_at_a_torn_child() {
        let mut body = Vec::new();
        put_uint(&mut body, id::TRACK_NUMBER, 1);
        put_bytes(&mut body, id::CODEC_ID, b"V_VP8");
        let whole: Vec<_> = children(&body).collect();
        assert_eq!(whole.len(), 2);
        assert!(whole.iter().all(Result::is_ok));
        let torn: Vec<_> = children(&body[..body.len() - 1]).collect();
        assert_eq!(torn.len(), 2);
        assert_eq!(torn[1].unwrap_err(), 3);
    }
}
