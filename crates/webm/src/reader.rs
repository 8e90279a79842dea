//! Reading a file back: for tests, and for the export code.

use std::fs::File;
use std::path::Path;

use crate::ebml::id;
use crate::scan::{self, Source, Top};
use crate::{FileContents, Frame, WebmError};

/// Reads a file this crate wrote, finished or not: every frame of every whole cluster,
/// stopping at the first element that is torn, corrupt (CRC mismatch) or claims more
/// than [`crate::MAX_ELEMENT_BYTES`]. A torn header is [`WebmError::Invalid`].
pub fn read_file(path: &Path) -> Result<FileContents, WebmError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut src = Source::new(file, len);
    let layout = scan::scan_header(&mut src)?.map_err(WebmError::Invalid)?;
    let end = layout
        .segment_size
        .and_then(|s| layout.data_start.checked_add(s))
        .map_or(len, |e| e.min(len));

    // Timestamps are stored in TimestampScale units; the API speaks milliseconds.
    let scale = layout.timestamp_scale;
    let to_ms = |units: u64| -> u64 {
        u64::try_from(u128::from(units) * u128::from(scale) / 1_000_000).unwrap_or(u64::MAX)
    };

    let mut frames = Vec::new();
    let mut has_cues = false;
    let mut pos = layout.body_start;
    loop {
        match scan::next_top(&mut src, pos, end)? {
            Top::Cluster(cluster) => {
                for block in &cluster.blocks {
                    frames.push(Frame {
                        ts_ms: to_ms(cluster.block_ts(block)),
                        keyframe: block.keyframe,
                        data: cluster.body[block.start..block.end].to_vec(),
                    });
                }
                pos = cluster.end;
            }
            Top::Other { id, end } => {
                has_cues |= id == id::CUES;
                pos = end;
            }
            Top::Stop { .. } => break,
        }
    }

    let track = layout.track;
    Ok(FileContents {
        codec_id: track.codec_id,
        codec_private: track.codec_private,
        width: track.width,
        height: track.height,
        channels: track.channels,
        duration_ms: layout.duration.map(|d| d * scale as f64 / 1_000_000.0),
        frames,
        has_cues,
    })
}
