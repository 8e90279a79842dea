//! Making a file left by a crash whole again.

use std::fs::OpenOptions;
use std::path::Path;

use crate::finish::{self, ClusterIndex, RecentTimestamps};
use crate::scan::{self, Source, Top};
use crate::{FileSummary, RepairReport, WebmError};

/// What walking the clusters found.
#[derive(Debug, Default)]
struct Walk {
    index: Vec<ClusterIndex>,
    frames: u64,
    keyframes: u64,
    recent: RecentTimestamps,
    /// End of the last whole cluster: where a torn file gets cut.
    clusters_end: u64,
    /// Every element after the clusters parsed, up to exactly the end of the segment.
    clean_to_end: bool,
}

/// Makes a file left by a crash whole: keeps every complete cluster, cuts the torn tail
/// (an incomplete or corrupt cluster, a partial ending, or garbage), then writes Cues,
/// Duration, SeekHead and the Segment size exactly as [`crate::WebmWriter::finish`] does.
///
/// A cleanly finished file is left byte for byte unchanged (`was_complete`). A file
/// whose header is torn, or that this crate did not write, is
/// [`WebmError::NotRepairable`]; a whole header with no clusters is a valid empty file.
pub fn repair(path: &Path) -> Result<RepairReport, WebmError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut src = Source::new(&mut file, len);
    let layout = scan::scan_header(&mut src)?.map_err(WebmError::NotRepairable)?;
    let anchors = layout.anchors().map_err(WebmError::NotRepairable)?;
    let is_video = layout.is_video();

    let declared_end = layout
        .segment_size
        .and_then(|s| layout.data_start.checked_add(s));
    let walk = walk(
        &mut src,
        layout.body_start,
        declared_end.map_or(len, |e| e.min(len)),
    )?;

    if declared_end == Some(len) && walk.clean_to_end {
        let duration_ms = match layout.duration {
            Some(d) => d.round() as u64,
            None => walk.recent.duration_ms(is_video).unwrap_or(0),
        };
        return Ok(RepairReport {
            summary: summary(&walk, duration_ms, len),
            truncated_bytes: 0,
            was_complete: true,
        });
    }

    // Not finished (or damaged after finishing): walk again over everything that is
    // there, ignoring a declared size that may be stale.
    let walk = if declared_end.is_some_and(|e| e < len) {
        self::walk(&mut src, layout.body_start, len)?
    } else {
        walk
    };
    let cut = walk.clusters_end;
    file.set_len(cut)?;
    let duration_ms = walk.recent.duration_ms(is_video);
    let bytes = finish::finish_file(&mut file, &anchors, cut, &walk.index, is_video, duration_ms)?;
    Ok(RepairReport {
        summary: summary(&walk, duration_ms.unwrap_or(0), bytes),
        truncated_bytes: len - cut,
        was_complete: false,
    })
}

fn summary(walk: &Walk, duration_ms: u64, bytes: u64) -> FileSummary {
    FileSummary {
        duration_ms,
        frames: walk.frames,
        keyframes: walk.keyframes,
        bytes,
    }
}

/// Walks whole clusters from `start`; the first other element ends the cluster run
/// (a partial or old ending that will be rewritten), and the rest is only checked for
/// being well-formed up to `end`.
fn walk<R: std::io::Read + std::io::Seek>(
    src: &mut Source<R>,
    start: u64,
    end: u64,
) -> Result<Walk, WebmError> {
    let mut walk = Walk {
        clusters_end: start,
        ..Walk::default()
    };
    let mut pos = start;
    let mut in_clusters = true;
    loop {
        match scan::next_top(src, pos, end)? {
            Top::Cluster(cluster) if in_clusters => {
                walk.index.push(ClusterIndex {
                    pos: cluster.pos,
                    ts_ms: cluster.ts,
                    starts_with_keyframe: cluster.blocks.first().is_some_and(|b| b.keyframe),
                });
                for block in &cluster.blocks {
                    walk.frames += 1;
                    walk.keyframes += u64::from(block.keyframe);
                    walk.recent.push(cluster.block_ts(block));
                }
                pos = cluster.end;
                walk.clusters_end = pos;
            }
            Top::Cluster(cluster) => pos = cluster.end,
            Top::Other { end, .. } => {
                in_clusters = false;
                pos = end;
            }
            Top::Stop { clean } => {
                walk.clean_to_end = clean;
                return Ok(walk);
            }
        }
    }
}
