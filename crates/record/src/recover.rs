//! Start-up repair of recordings that were still being written when the server stopped without
//! finishing them (a crash, `kill -9`, a power cut).

use crate::manifest::{Manifest, RecordingState, is_safe_file_name};
use std::path::Path;

/// What recovery did to one recording.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The manifest as rewritten: state `recovered`, streams cut to what their files hold.
    pub manifest: Manifest,
    /// Bytes cut off torn file tails, over all streams.
    pub truncated_bytes: u64,
    /// Streams whose file could not be repaired (dropped from the manifest).
    pub lost_streams: usize,
}

/// Repairs the recording in `dir` if it was left `recording`: every stream's file gets its torn
/// tail cut and its index written, the manifest learns the real durations, and the recording
/// becomes `recovered`. A recording in any other state is returned as it is.
pub fn recover(dir: &Path) -> std::io::Result<Recovered> {
    let mut manifest = Manifest::load(dir)?;
    if manifest.state != RecordingState::Recording {
        return Ok(Recovered {
            manifest,
            truncated_bytes: 0,
            lost_streams: 0,
        });
    }
    let mut truncated_bytes = 0;
    let before = manifest.streams.len();
    manifest.streams.retain_mut(|stream| {
        if !is_safe_file_name(&stream.file) {
            return false;
        }
        match hearth_webm::repair(&dir.join(&stream.file)) {
            Ok(report) => {
                truncated_bytes += report.truncated_bytes;
                stream.duration_ms = report.summary.duration_ms;
                stream.frames = report.summary.frames;
                stream.bytes = report.summary.bytes;
                stream.finished = true;
                report.summary.frames > 0
            }
            Err(e) => {
                tracing::warn!(recording_id = %manifest.id, file = %stream.file, error = %e, "cannot repair a recorded stream");
                false
            }
        }
    });
    let lost_streams = before - manifest.streams.len();
    // The manifest was saved when something changed, so its duration may be older than the
    // media: the recording lasted at least as long as its longest stream and its last event.
    let media_end = manifest
        .streams
        .iter()
        .map(|s| s.start_ms + s.duration_ms)
        .max()
        .unwrap_or(0);
    let last_event = manifest.events.iter().map(|e| e.at_ms).max().unwrap_or(0);
    manifest.duration_ms = manifest.duration_ms.max(media_end).max(last_event);
    for span in &mut manifest.participants {
        if span.left_ms.is_none() {
            span.left_ms = Some(manifest.duration_ms);
        }
    }
    manifest.state = RecordingState::Recovered;
    manifest.save(dir)?;
    Ok(Recovered {
        manifest,
        truncated_bytes,
        lost_streams,
    })
}
