//! A session's recording: its streams, who was there, what was said, and the manifest that
//! ties them together. Synchronous and clock-free (time comes in as `now`); the worker thread
//! in `worker.rs` drives it.

use crate::clock::{Placement, place};
use crate::manifest::{
    Event, EventKind, MANIFEST_VERSION, MAX_EVENTS, Manifest, ParticipantSpan, RecordingState,
    StreamEntry,
};
use crate::stream::StreamRecorder;
use hearth_proto::TrackInfo;
use hearth_webm::WebmError;
use rtc::rtp;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the manifest is rewritten while something changed: often enough that a crash
/// loses about a second of chat and presence, rarely enough to cost nothing.
pub const MANIFEST_INTERVAL: Duration = Duration::from_secs(1);

/// What a recording is of.
#[derive(Debug, Clone)]
pub struct RecordingSetup {
    /// The recording's id (also its directory's name).
    pub id: String,
    /// The session recorded.
    pub session_id: String,
    /// The session's title.
    pub title: String,
    /// The directory for its files; created if missing.
    pub dir: PathBuf,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: i64,
}

/// Someone in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Participant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role name.
    pub role: String,
}

/// A recording in progress.
#[derive(Debug)]
pub struct Recording {
    dir: PathBuf,
    manifest: Manifest,
    origin: Instant,
    /// Every stream ever added, by the key its packets are tagged with; ended ones stay, with
    /// their files finished.
    streams: BTreeMap<u64, StreamRecorder>,
    ended: std::collections::BTreeSet<u64>,
    next_stream: u32,
    dirty: bool,
    last_save: Instant,
}

impl Recording {
    /// Starts recording: creates the directory and writes the first manifest, listing `present`
    /// as there from the start.
    pub fn start(
        setup: RecordingSetup,
        present: Vec<Presence>,
        now: Instant,
    ) -> Result<Self, WebmError> {
        std::fs::create_dir_all(&setup.dir)?;
        let participants = present
            .iter()
            .map(|p| ParticipantSpan {
                id: p.id.clone(),
                name: p.name.clone(),
                role: p.role.clone(),
                joined_ms: 0,
                left_ms: None,
            })
            .collect();
        let events = present
            .into_iter()
            .map(|p| Event {
                at_ms: 0,
                what: EventKind::Join {
                    participant_id: p.id,
                    name: p.name,
                },
            })
            .collect();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            id: setup.id,
            session_id: setup.session_id,
            title: setup.title,
            started_at_ms: setup.started_at_ms,
            duration_ms: 0,
            state: RecordingState::Recording,
            error: None,
            participants,
            streams: Vec::new(),
            events,
        };
        manifest.save(&setup.dir)?;
        Ok(Self {
            dir: setup.dir,
            manifest,
            origin: now,
            streams: BTreeMap::new(),
            ended: Default::default(),
            next_stream: 1,
            dirty: false,
            last_save: now,
        })
    }

    fn at_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Starts recording a track; its packets come tagged with `key`. Returns false for a codec
    /// that cannot be recorded (or a key already used).
    pub fn add_stream(&mut self, key: u64, info: TrackInfo) -> bool {
        if self.streams.contains_key(&key) {
            return false;
        }
        let id = format!("s{}", self.next_stream);
        let Some(stream) = StreamRecorder::new(
            id,
            &self.dir,
            info,
            self.origin,
            self.manifest.started_at_ms,
        ) else {
            return false;
        };
        self.next_stream += 1;
        self.streams.insert(key, stream);
        true
    }

    /// A packet of stream `key`. Returns whether its publisher should be asked for a keyframe.
    pub fn packet(
        &mut self,
        key: u64,
        packet: rtp::Packet,
        now: Instant,
    ) -> Result<bool, WebmError> {
        if self.ended.contains(&key) {
            return Ok(false);
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return Ok(false);
        };
        let had_file = stream.entry(0).is_some();
        let wants = stream.push(packet, now)?;
        if !had_file && stream.entry(0).is_some() {
            // A new file: put it in the manifest at once, so a crash leaves it findable.
            self.save(now)?;
        }
        Ok(wants)
    }

    /// The publisher's sender report for stream `key`.
    pub fn sender_report(&mut self, key: u64, ntp_time: u64, rtp_time: u32) {
        if let Some(stream) = self.streams.get_mut(&key) {
            stream.sender_report(ntp_time, rtp_time);
            self.dirty = true;
        }
    }

    /// Stream `key` ended: its file is finished.
    pub fn end_stream(&mut self, key: u64, now: Instant) -> Result<(), WebmError> {
        let Some(stream) = self.streams.get_mut(&key) else {
            return Ok(());
        };
        if self.ended.insert(key) {
            stream.finish()?;
            self.save(now)?;
        }
        Ok(())
    }

    /// Someone entered the session.
    pub fn joined(&mut self, who: Presence, now: Instant) {
        let at_ms = self.at_ms(now);
        self.push_event(
            at_ms,
            EventKind::Join {
                participant_id: who.id.clone(),
                name: who.name.clone(),
            },
        );
        self.manifest.participants.push(ParticipantSpan {
            id: who.id,
            name: who.name,
            role: who.role,
            joined_ms: at_ms,
            left_ms: None,
        });
    }

    /// Someone left the session.
    pub fn left(&mut self, participant_id: &str, now: Instant) {
        let at_ms = self.at_ms(now);
        let Some(span) = self
            .manifest
            .participants
            .iter_mut()
            .rev()
            .find(|p| p.id == participant_id && p.left_ms.is_none())
        else {
            return;
        };
        span.left_ms = Some(at_ms);
        let name = span.name.clone();
        self.push_event(
            at_ms,
            EventKind::Leave {
                participant_id: participant_id.to_owned(),
                name,
            },
        );
    }

    /// A chat message.
    pub fn chat(&mut self, participant_id: &str, name: &str, text: &str, now: Instant) {
        if self.manifest.events.len() >= MAX_EVENTS {
            return;
        }
        let at_ms = self.at_ms(now);
        self.push_event(
            at_ms,
            EventKind::Chat {
                participant_id: participant_id.to_owned(),
                name: name.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    fn push_event(&mut self, at_ms: u64, what: EventKind) {
        // Joins and leaves are kept past the cap (they are few); only chat is cut.
        let is_chat = matches!(what, EventKind::Chat { .. });
        if !is_chat || self.manifest.events.len() < MAX_EVENTS {
            self.manifest.events.push(Event { at_ms, what });
        }
        self.dirty = true;
    }

    /// Lets time pass. Returns the keys of streams whose publisher should be asked for a
    /// keyframe.
    pub fn tick(&mut self, now: Instant) -> Result<Vec<u64>, WebmError> {
        let mut wants = Vec::new();
        for (key, stream) in &mut self.streams {
            if self.ended.contains(key) {
                continue;
            }
            if stream.tick(now)? {
                wants.push(*key);
            }
        }
        if self.dirty && now.saturating_duration_since(self.last_save) >= MANIFEST_INTERVAL {
            self.save(now)?;
        }
        Ok(wants)
    }

    /// Stops cleanly: every file finished, the manifest final.
    pub fn stop(mut self, now: Instant) -> Result<Manifest, WebmError> {
        for stream in self.streams.values_mut() {
            stream.finish()?;
        }
        self.manifest.state = RecordingState::Complete;
        self.save(now)?;
        Ok(self.manifest)
    }

    /// Stops after `error`: finishes what it can and records why it stopped. Never fails; the
    /// manifest returned is the best that could be saved.
    pub fn fail(mut self, error: String, now: Instant) -> Manifest {
        for stream in self.streams.values_mut() {
            if let Err(e) = stream.finish() {
                tracing::warn!(recording_id = %self.manifest.id, error = %e, "finishing a stream of a failed recording");
            }
        }
        self.manifest.state = RecordingState::Failed;
        self.manifest.error = Some(error);
        if let Err(e) = self.save(now) {
            tracing::warn!(recording_id = %self.manifest.id, error = %e, "saving the manifest of a failed recording");
        }
        self.manifest
    }

    /// The manifest as it stands (streams placed, duration so far).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn save(&mut self, now: Instant) -> Result<(), WebmError> {
        self.manifest.duration_ms = self.at_ms(now);
        self.manifest.streams = self.placed_streams();
        // Offsets are final only when every stream got its sender report; saving again later
        // costs little.
        self.manifest.save(&self.dir)?;
        self.dirty = false;
        self.last_save = now;
        Ok(())
    }

    /// Every stream with a file, placed on the timeline by its publisher's clock.
    fn placed_streams(&self) -> Vec<StreamEntry> {
        let mut by_publisher: BTreeMap<String, Vec<&StreamRecorder>> = BTreeMap::new();
        for stream in self.streams.values() {
            by_publisher
                .entry(stream.info().participant_id.to_string())
                .or_default()
                .push(stream);
        }
        let mut entries = Vec::new();
        for streams in by_publisher.values() {
            let with_files: Vec<(&StreamRecorder, Placement)> = streams
                .iter()
                .filter_map(|s| Some((*s, s.placement()?)))
                .collect();
            let starts = place(&with_files.iter().map(|(_, p)| *p).collect::<Vec<_>>());
            for ((stream, _), start) in with_files.iter().zip(starts) {
                if let Some(entry) = stream.entry(start.round() as u64) {
                    entries.push(entry);
                }
            }
        }
        // In the order the streams were created, for a stable manifest.
        entries.sort_by_key(|e| e.id.trim_start_matches('s').parse::<u32>().unwrap_or(0));
        entries
    }
}
