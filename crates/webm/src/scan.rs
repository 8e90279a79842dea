//! Walking a file's elements, shared by the reader and repair.
//!
//! Files come from crashes, so nothing here trusts a size: every element is checked
//! against the bytes that exist and against [`MAX_ELEMENT_BYTES`] before it is read,
//! and whatever does not parse ends the walk instead of panicking.

use std::io::{self, Read, Seek, SeekFrom};

use crate::MAX_ELEMENT_BYTES;
use crate::ebml::{self, Header, Parse, id};
use crate::finish::{Anchors, DURATION_SLOT, SEEK_HEAD_RESERVED, SEGMENT_SIZE_WIDTH};

/// Header elements (EBML header, Info, Tracks) are small; a larger claim is garbage.
const MAX_HEADER_ELEMENT: u64 = 1024 * 1024;
/// Longest element header: a 4-byte id and an 8-byte size.
const MAX_HEADER_LEN: usize = 12;

/// A seekable byte source of known length.
pub(crate) struct Source<R> {
    inner: R,
    len: u64,
}

impl<R: Read + Seek> Source<R> {
    /// Wraps `inner`, whose total length is `len`.
    pub fn new(inner: R, len: u64) -> Self {
        Source { inner, len }
    }

    /// Total length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Reads up to `max` bytes at `pos` (fewer at the end of the source).
    fn read_at(&mut self, pos: u64, max: u64) -> io::Result<Vec<u8>> {
        let n = max.min(self.len.saturating_sub(pos));
        let mut buf = vec![0; usize::try_from(n).unwrap_or(0)];
        self.inner.seek(SeekFrom::Start(pos))?;
        self.inner.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Parses the element header at `pos`, not looking past `end`.
    fn header_at(&mut self, pos: u64, end: u64) -> io::Result<Parse<Header>> {
        let avail = end.saturating_sub(pos).min(MAX_HEADER_LEN as u64);
        let buf = self.read_at(pos, avail)?;
        Ok(ebml::read_header(&buf))
    }
}

/// A whole element found at some offset.
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u32,
    pos: u64,
    body_pos: u64,
    end: u64,
}

/// What stopped (or did not stop) reading an element.
enum Found {
    Whole(Element),
    /// Torn, garbage, unknown-size or too large: the walk ends here.
    Broken,
}

fn element_at<R: Read + Seek>(
    src: &mut Source<R>,
    pos: u64,
    end: u64,
    max: u64,
) -> io::Result<Found> {
    let Parse::Ok(header, _) = src.header_at(pos, end)? else {
        return Ok(Found::Broken);
    };
    let Some(size) = header.size.filter(|&s| s <= max) else {
        return Ok(Found::Broken);
    };
    let body_pos = pos + header.len as u64;
    match body_pos.checked_add(size).filter(|&e| e <= end) {
        Some(elem_end) => Ok(Found::Whole(Element {
            id: header.id,
            pos,
            body_pos,
            end: elem_end,
        })),
        None => Ok(Found::Broken),
    }
}

fn body_of<R: Read + Seek>(src: &mut Source<R>, e: &Element) -> io::Result<Vec<u8>> {
    src.read_at(e.body_pos, e.end - e.body_pos)
}

/// The one track, as the header describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrackInfo {
    pub codec_id: String,
    pub codec_private: Option<Vec<u8>>,
    /// Matroska TrackType: 1 video, 2 audio.
    pub track_type: u64,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
}

/// Everything before the first cluster.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub segment_size_pos: u64,
    pub segment_size_width: usize,
    pub data_start: u64,
    /// Declared Segment size; `None` while it is still "unknown".
    pub segment_size: Option<u64>,
    pub info_pos: u64,
    pub tracks_pos: u64,
    /// Where the clusters begin (the end of the header elements).
    pub body_start: u64,
    /// Offset of the 11-byte Void or Duration in Info.
    pub duration_pos: Option<u64>,
    /// Duration in TimestampScale units, if written.
    pub duration: Option<f64>,
    pub timestamp_scale: u64,
    pub track: TrackInfo,
}

impl Layout {
    /// The offsets repair needs, if this header has exactly the shape our writer
    /// produces (anything else we must not overwrite in place).
    pub fn anchors(&self) -> Result<Anchors, String> {
        if self.segment_size_width != SEGMENT_SIZE_WIDTH {
            return Err("segment size field is not 8 bytes".into());
        }
        if self.info_pos != self.data_start + SEEK_HEAD_RESERVED as u64 {
            return Err("no reserved SeekHead space before Info".into());
        }
        if self.timestamp_scale != 1_000_000 {
            return Err(format!(
                "timestamp scale {} is not 1 ms",
                self.timestamp_scale
            ));
        }
        let duration_pos = self
            .duration_pos
            .ok_or("no reserved Duration space in Info")?;
        Ok(Anchors {
            segment_size_pos: self.segment_size_pos,
            data_start: self.data_start,
            info_pos: self.info_pos,
            tracks_pos: self.tracks_pos,
            duration_pos,
        })
    }

    /// Whether the track is video.
    pub fn is_video(&self) -> bool {
        self.track.track_type == 1
    }
}

/// Reads the header: EBML header, Segment start, and the top-level elements up to
/// both Info and Tracks. Errors are human-readable reasons.
pub(crate) fn scan_header<R: Read + Seek>(
    src: &mut Source<R>,
) -> io::Result<Result<Layout, String>> {
    let len = src.len();
    let Found::Whole(ebml_head) = element_at(src, 0, len, MAX_HEADER_ELEMENT)? else {
        return Ok(Err("EBML header is torn or missing".into()));
    };
    if ebml_head.id != id::EBML {
        return Ok(Err("not an EBML file".into()));
    }
    let body = body_of(src, &ebml_head)?;
    let doc_type = ebml::children(&body)
        .filter_map(Result::ok)
        .find(|c| c.id == id::DOC_TYPE)
        .map(|c| String::from_utf8_lossy(c.body).into_owned());
    if !matches!(doc_type.as_deref(), Some("webm" | "matroska")) {
        return Ok(Err(format!("unsupported DocType {doc_type:?}")));
    }

    let seg_pos = ebml_head.end;
    let (segment_size, segment_size_width, data_start) = match src.header_at(seg_pos, len)? {
        Parse::Ok(h, n) if h.id == id::SEGMENT => (h.size, n - 4, seg_pos + n as u64),
        Parse::Ok(..) => return Ok(Err("no Segment after the EBML header".into())),
        _ => return Ok(Err("Segment header is torn".into())),
    };
    let end = segment_size
        .and_then(|s| data_start.checked_add(s))
        .map_or(len, |e| e.min(len));

    let mut pos = data_start;
    let mut info = None;
    let mut tracks = None;
    while info.is_none() || tracks.is_none() {
        let Found::Whole(e) = element_at(src, pos, end, MAX_HEADER_ELEMENT)? else {
            return Ok(Err(format!("header element at {pos} is torn")));
        };
        match e.id {
            id::INFO => info = Some((e, body_of(src, &e)?)),
            id::TRACKS => tracks = Some((e, body_of(src, &e)?)),
            id::CLUSTER => return Ok(Err("cluster before Info/Tracks".into())),
            _ => {}
        }
        pos = e.end;
    }
    let (Some((info_e, info_body)), Some((tracks_e, tracks_body))) = (info, tracks) else {
        return Ok(Err("missing Info or Tracks".into()));
    };
    let (timestamp_scale, duration, duration_slot) = match parse_info(&info_body) {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    let track = match parse_tracks(&tracks_body) {
        Ok(t) => t,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(Layout {
        segment_size_pos: seg_pos + 4,
        segment_size_width,
        data_start,
        segment_size,
        info_pos: info_e.pos,
        tracks_pos: tracks_e.pos,
        body_start: pos,
        duration_pos: duration_slot.map(|off| info_e.body_pos + off as u64),
        duration,
        timestamp_scale,
        track,
    }))
}

/// TimestampScale, Duration, and the offset (in the body) of the Duration slot.
fn parse_info(body: &[u8]) -> Result<(u64, Option<f64>, Option<usize>), String> {
    let mut scale = 1_000_000;
    let mut duration = None;
    let mut slot = None;
    for child in ebml::children(body) {
        let child = child.map_err(|at| format!("Info child at {at} is torn"))?;
        let total = child.total_len();
        match child.id {
            id::TIMESTAMP_SCALE => {
                scale = ebml::read_uint(child.body)
                    .filter(|&s| s > 0)
                    .ok_or("bad TimestampScale")?;
            }
            id::DURATION => {
                duration = ebml::read_float(child.body).filter(|d| d.is_finite() && *d >= 0.0);
                if total == DURATION_SLOT {
                    slot = Some(child.offset);
                }
            }
            id::VOID if total == DURATION_SLOT => slot = Some(child.offset),
            _ => {}
        }
    }
    Ok((scale, duration, slot))
}

/// The first TrackEntry (this crate writes exactly one).
fn parse_tracks(body: &[u8]) -> Result<TrackInfo, String> {
    let entry = ebml::children(body)
        .filter_map(Result::ok)
        .find(|c| c.id == id::TRACK_ENTRY)
        .ok_or("no TrackEntry")?;
    let mut track = TrackInfo::default();
    for child in ebml::children(entry.body) {
        let child = child.map_err(|at| format!("TrackEntry child at {at} is torn"))?;
        match child.id {
            id::TRACK_TYPE => track.track_type = ebml::read_uint(child.body).unwrap_or(0),
            id::CODEC_ID => track.codec_id = String::from_utf8_lossy(child.body).into_owned(),
            id::CODEC_PRIVATE => track.codec_private = Some(child.body.to_vec()),
            id::VIDEO => {
                for v in ebml::children(child.body).filter_map(Result::ok) {
                    let value = ebml::read_uint(v.body).and_then(|x| u32::try_from(x).ok());
                    match v.id {
                        id::PIXEL_WIDTH => track.width = value.unwrap_or(0),
                        id::PIXEL_HEIGHT => track.height = value.unwrap_or(0),
                        _ => {}
                    }
                }
            }
            id::AUDIO => {
                for a in ebml::children(child.body).filter_map(Result::ok) {
                    if a.id == id::CHANNELS {
                        track.channels = ebml::read_uint(a.body)
                            .and_then(|x| u8::try_from(x).ok())
                            .unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }
    if track.codec_id.is_empty() {
        return Err("TrackEntry has no CodecID".into());
    }
    Ok(track)
}

/// One block of a cluster, pointing into the cluster body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// Timestamp relative to the cluster.
    pub relative: i16,
    pub keyframe: bool,
    /// Where the frame bytes lie in the cluster body.
    pub start: usize,
    pub end: usize,
}

/// A whole, checksum-verified cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// Absolute offset of the Cluster element.
    pub pos: u64,
    /// Absolute offset just past it.
    pub end: u64,
    pub ts: u64,
    pub body: Vec<u8>,
    pub blocks: Vec<Block>,
}

impl Cluster {
    /// Absolute timestamp of a block (never below 0).
    pub fn block_ts(&self, block: &Block) -> u64 {
        self.ts.saturating_add_signed(i64::from(block.relative))
    }
}

/// The next top-level element after the header.
pub(crate) enum Top {
    Cluster(Cluster),
    /// Any other whole element (Cues, Void, Tags...).
    Other {
        id: u32,
        end: u64,
    },
    /// The walk is over: `pos` is the end of the last whole element. `clean` is true
    /// when that is exactly the end of the segment (nothing torn or unreadable).
    Stop {
        clean: bool,
    },
}

/// Reads the top-level element at `pos`, stopping before `end`.
pub(crate) fn next_top<R: Read + Seek>(src: &mut Source<R>, pos: u64, end: u64) -> io::Result<Top> {
    if pos >= end {
        return Ok(Top::Stop { clean: pos == end });
    }
    let Found::Whole(e) = element_at(src, pos, end, MAX_ELEMENT_BYTES)? else {
        return Ok(Top::Stop { clean: false });
    };
    if e.id != id::CLUSTER {
        return Ok(Top::Other {
            id: e.id,
            end: e.end,
        });
    }
    let body = body_of(src, &e)?;
    match parse_cluster(&body) {
        Some((ts, blocks)) => Ok(Top::Cluster(Cluster {
            pos: e.pos,
            end: e.end,
            ts,
            body,
            blocks,
        })),
        None => Ok(Top::Stop { clean: false }),
    }
}

/// Parses a cluster body: a valid CRC-32 if present, a Timestamp, then SimpleBlocks
/// on any track number (one-track files). Laced or malformed blocks reject the cluster.
fn parse_cluster(body: &[u8]) -> Option<(u64, Vec<Block>)> {
    let mut ts = None;
    let mut blocks = Vec::new();
    for (i, child) in ebml::children(body).enumerate() {
        let child = child.ok()?;
        let body_start = child.body_offset;
        match child.id {
            id::CRC32 if i == 0 => {
                let stored = u32::from_le_bytes(child.body.try_into().ok()?);
                let rest = body.get(body_start + child.body.len()..)?;
                if ebml::crc32(rest) != stored {
                    return None;
                }
            }
            id::TIMESTAMP => ts = Some(ebml::read_uint(child.body)?),
            id::SIMPLE_BLOCK => {
                ts?;
                let (track_len, rest) = match ebml::read_size(child.body) {
                    Parse::Ok(Some(_), n) => (n, child.body.get(n..)?),
                    _ => return None,
                };
                let head = rest.get(..3)?;
                let flags = head[2];
                if flags & 0x06 != 0 {
                    return None; // lacing: never written by us
                }
                let start = body_start + track_len + 3;
                let end = body_start + child.body.len();
                blocks.push(Block {
                    relative: i16::from_be_bytes([head[0], head[1]]),
                    keyframe: flags & 0x80 != 0,
                    start,
                    end,
                });
            }
            _ => {}
        }
    }
    Some((ts?, blocks))
}
