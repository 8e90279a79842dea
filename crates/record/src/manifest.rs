//! The manifest of a recording: one JSON file beside its media files that says what the
//! recording holds and when (streams with their files and offsets, participants, chat, joins
//! and leaves). Replay reads it; it is rewritten atomically, so a crash leaves the old or the
//! new version, never half of one.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The manifest's file name inside a recording's directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// Most events kept in one manifest. Beyond it chat is no longer recorded (joins and leaves
/// still are, in `participants`), so a very long, busy session cannot grow the file that is
/// rewritten every second without bound.
pub const MAX_EVENTS: usize = 20_000;

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Being recorded now (or the server died while it was: see `recovered`).
    Recording,
    /// Stopped cleanly.
    Complete,
    /// The server stopped without finishing it; repaired at the next start-up.
    Recovered,
    /// Stopped by an error (such as a full disk); what was written before it is kept.
    Failed,
}

impl RecordingState {
    /// The name used in the manifest and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Complete => "complete",
            Self::Recovered => "recovered",
            Self::Failed => "failed",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recording" => Some(Self::Recording),
            "complete" => Some(Self::Complete),
            "recovered" => Some(Self::Recovered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A recording, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The recording's id.
    pub id: String,
    /// The session it recorded.
    pub session_id: String,
    /// The session's title when recording started.
    pub title: String,
    /// Wall-clock start, ms since the Unix epoch. Every `*_ms` offset below counts from here.
    pub started_at_ms: i64,
    /// Length of the recording.
    pub duration_ms: u64,
    /// Where it stands.
    pub state: RecordingState,
    /// What stopped it, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Everyone who was in the session while it was recorded.
    pub participants: Vec<ParticipantSpan>,
    /// One entry per recorded media file.
    pub streams: Vec<StreamEntry>,
    /// Chat, joins and leaves, in order.
    pub events: Vec<Event>,
}

/// One participant's presence during the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSpan {
    /// Their participant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role when they joined (`host`, `cohost`, `speaker`, `attendee`).
    pub role: String,
    /// When they were first present (0 for people already there when recording started).
    pub joined_ms: u64,
    /// When they left, if they did before the recording ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
}

/// One recorded media file: one published track, from its first recorded frame to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// Id within the recording (`s1`, `s2`, …): what download URLs name.
    pub id: String,
    /// Who published it.
    pub participant_id: String,
    /// `audio` or `video`.
    pub kind: String,
    /// `microphone`, `camera` or `screen`.
    pub source: String,
    /// MIME type of the codec, e.g. `video/VP8`.
    pub codec: String,
    /// File name inside the recording's directory, chosen by the recorder.
    pub file: String,
    /// MIME type of the file (`video/webm`, `audio/webm`, `video/x-matroska`).
    pub content_type: String,
    /// Where the file's time zero falls on the recording's timeline.
    pub start_ms: u64,
    /// Length of the file.
    pub duration_ms: u64,
    /// Frames in the file.
    pub frames: u64,
    /// Size of the file.
    pub bytes: u64,
    /// Picture size of video, from its first keyframe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Picture height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Times frames were lost (to the network or a slow disk) and the file skipped to the next
    /// keyframe.
    #[serde(default)]
    pub gaps: u64,
    /// Whether the file was finished (its index written); false while recording.
    #[serde(default)]
    pub finished: bool,
}

/// Something that happened during the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, on the recording's timeline.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub what: EventKind,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Someone entered (or was there when recording started).
    Join {
        /// Their id.
        participant_id: String,
        /// Their name.
        name: String,
    },
    /// Someone left.
    Leave {
        /// Their id.
        participant_id: String,
        /// Their name.
        name: String,
    },
    /// A chat message.
    Chat {
        /// Sender's id.
        participant_id: String,
        /// Sender's name.
        name: String,
        /// The text.
        text: String,
    },
}

impl Manifest {
    /// Reads `dir`'s manifest.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read(dir.join(MANIFEST_FILE))?;
        serde_json::from_slice(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Writes the manifest into `dir`: to a temporary file, flushed to disk, then renamed over
    /// the old one.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(".manifest.json.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_data()?;
        }
        std::fs::rename(&tmp, dir.join(MANIFEST_FILE))
    }

    /// The stream with id `id`.
    pub fn stream(&self, id: &str) -> Option<&StreamEntry> {
        self.streams.iter().find(|s| s.id == id)
    }

    /// Total bytes of the media files.
    pub fn bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

/// Whether `name` is a plain file name the recorder could have chosen: letters, digits, `-`,
/// `_` and `.`, not starting with a dot. Anything else (a path, `..`, an absolute name) never
/// reaches the file system, even from a tampered manifest.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            id: "r".into(),
            session_id: "s".into(),
            title: "Book club".into(),
            started_at_ms: 1_700_000_000_000,
            duration_ms: 5000,
            state: RecordingState::Recording,
            error: None,
            participants: vec![],
            streams: vec![],
            events: vec![Event {
                at_ms: 1200,
                what: EventKind::Chat {
                    participant_id: "p".into(),
                    name: "Ada".into(),
                    text: "hi".into(),
                },
            }],
        }
    }

    #[test]
    fn a_manifest_survives_a_save_and_load_and_events_are_flat_json() {
        let dir = std::env::temp_dir().join(format!("hearth-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = sample();
        m.save(&dir).unwrap();
        assert_eq!(Manifest::load(&dir).unwrap(), m);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(json["events"][0]["type"], "chat");
        assert_eq!(json["events"][0]["at_ms"], 1200);
        assert_eq!(json["state"], "recording");
        assert!(!dir.join(".manifest.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_plain_file_names_are_safe() {
        assert!(is_safe_file_name("s1-camera.webm"));
        for bad in [
            "",
            "../x",
            "/etc/passwd",
            "a/b",
            ".hidden",
            "..",
            "a\\b",
            "x\0",
        ] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
    }
}
