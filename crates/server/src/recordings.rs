//! The server's side of recording: where recordings live, starting one for a room, indexing it
//! in the store when it ends, repairing what a crash left at start-up, and the checks that let
//! only hosts and holders of a replay link near the files.
//!
//! A recording's files are found through its id only: ids from requests must have the shape of
//! a recording id (32 hex digits) and be in the store before a path is built from them, and a
//! stream's file name comes from the recorder's own manifest, checked again before use.

use crate::room::RoomCommand;
use crate::sessions::now_ms;
use hearth_proto::{RecordingId, RecordingStatus, SessionInfo};
use hearth_record::{Manifest, Outcome, Presence, Recorder, RecordingSetup, RecordingState};
use hearth_store::{NewRecording, RecordingEnd, RecordingRecord, Store, secrets};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Recording, server-wide.
#[derive(Debug)]
pub struct Recordings {
    /// Where each recording gets a directory named by its id; `None`: recording is off.
    dir: Option<PathBuf>,
    store: Arc<Store>,
    /// Recordings in progress (`/metrics`).
    active: Arc<AtomicU64>,
    /// Packets recorders could not take in time (`/metrics`).
    dropped: Arc<AtomicU64>,
    /// How long a room may stay empty before its recording stops.
    empty_grace: Duration,
}

/// Why a recording could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// No recording directory is configured.
    Disabled,
    /// The directory or the store refused (full disk, permissions): the message says which.
    Failed(String),
}

impl Recordings {
    /// Recording into `dir` (or not at all), indexed in `store`; a recording whose room stays
    /// empty for `empty_grace` stops.
    pub fn new(dir: Option<PathBuf>, store: Arc<Store>, empty_grace: Duration) -> Self {
        Self {
            dir,
            store,
            active: Arc::default(),
            dropped: Arc::default(),
            empty_grace,
        }
    }

    /// How long a room may stay empty before its recording stops.
    pub fn empty_grace(&self) -> Duration {
        self.empty_grace
    }

    /// Whether recording is possible on this server.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// Recordings in progress.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Packets recorders could not take in time.
    pub fn dropped_packets(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The directory of recording `id`.
    pub fn dir_of(&self, id: &RecordingId) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(id.as_str()))
    }

    /// The indexed recording with id `id` (already checked to be a recording id's shape).
    pub fn record(&self, id: &RecordingId) -> Option<RecordingRecord> {
        match self.store.recording(id.as_str()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(recording_id = %id, error = %e, "cannot read a recording");
                None
            }
        }
    }

    /// The manifest of recording `id`, read from its directory.
    pub fn manifest(&self, id: &RecordingId) -> Option<Manifest> {
        let dir = self.dir_of(id)?;
        match Manifest::load(&dir) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(recording_id = %id, error = %e, "cannot read a manifest");
                None
            }
        }
    }

    /// Starts recording `session` with `present` there. `room` hears when the recording ends.
    pub(crate) fn start(
        &self,
        session: &SessionInfo,
        present: Vec<Presence>,
        room: mpsc::WeakSender<RoomCommand>,
    ) -> Result<(RecordingStatus, Recorder), StartError> {
        let Some(root) = &self.dir else {
            return Err(StartError::Disabled);
        };
        let id = RecordingId::random();
        let started_at_ms = now_ms();
        self.store
            .create_recording(&NewRecording {
                id: id.to_string(),
                session: session.id.clone(),
                title: session.title.clone(),
                started_ms: started_at_ms,
            })
            .map_err(|e| StartError::Failed(format!("cannot index the recording: {e}")))?;
        let setup = RecordingSetup {
            id: id.to_string(),
            session_id: session.id.to_string(),
            title: session.title.clone(),
            dir: root.join(id.as_str()),
            started_at_ms,
        };
        let finish = Finisher {
            id: id.clone(),
            store: Arc::clone(&self.store),
            active: Arc::clone(&self.active),
            room,
        };
        self.active.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::clone(&self.dropped);
        match Recorder::start(
            setup,
            present,
            dropped,
            Box::new(move |outcome| finish.run(outcome)),
        ) {
            Ok(recorder) => Ok((RecordingStatus { id, started_at_ms }, recorder)),
            Err(e) => {
                self.active.fetch_sub(1, Ordering::Relaxed);
                let message = hearth_record::describe(&e);
                tracing::warn!(recording_id = %id, error = %e, "cannot start recording");
                let _ = self.store.delete_recording(id.as_str());
                Err(StartError::Failed(message))
            }
        }
    }

    /// At start-up: repairs every recording the last run left unfinished, and indexes it as
    /// `recovered`. Returns how many were repaired.
    pub fn recover_all(&self) -> usize {
        let unfinished = match self.store.unfinished_recordings() {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot list unfinished recordings");
                return 0;
            }
        };
        let mut repaired = 0;
        for record in unfinished {
            let Some(id) = RecordingId::parse(&record.id) else {
                continue;
            };
            let end = match self.dir_of(&id).map(|dir| hearth_record::recover(&dir)) {
                Some(Ok(recovered)) => {
                    tracing::info!(
                        recording_id = %id,
                        streams = recovered.manifest.streams.len(),
                        truncated_bytes = recovered.truncated_bytes,
                        "recording recovered after an unclean stop"
                    );
                    repaired += 1;
                    end_of(&recovered.manifest, None)
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("could not be recovered: {e}"),
                        _ => "recording is not configured on this server".into(),
                    };
                    tracing::warn!(recording_id = %id, reason = %why, "recording lost");
                    RecordingEnd {
                        state: RecordingState::Failed.as_str().into(),
                        error: Some(why),
                        ended_ms: now_ms(),
                        duration_ms: 0,
                        bytes: 0,
                        participants: Vec::new(),
                    }
                }
            };
            if let Err(e) = self.store.finish_recording(&record.id, &end) {
                tracing::error!(recording_id = %id, error = %e, "cannot index a recovered recording");
            }
        }
        repaired
    }

    /// Deletes recording `id`: its index entry, then its files.
    pub fn delete(&self, id: &RecordingId) -> std::io::Result<()> {
        self.store
            .delete_recording(id.as_str())
            .map_err(std::io::Error::other)?;
        if let Some(dir) = self.dir_of(id) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The replay key of recording `id` for the host holding `host_key`, at sharing generation
/// `generation`. Derived, like invite keys, so the host can be shown the link again at any time
/// while the server stores only its hash; a new generation (after revoking) gives a new key.
pub fn derive_replay_key(host_key: &str, id: &RecordingId, generation: u32) -> String {
    let digest = secrets::hash_secret(&format!("hearth-replay:{generation}:{id}:{host_key}"));
    digest[..32].to_owned()
}

/// What the store should say about a recording whose final manifest is `manifest`.
fn end_of(manifest: &Manifest, error: Option<String>) -> RecordingEnd {
    let mut names: Vec<String> = Vec::new();
    for p in &manifest.participants {
        if !names.contains(&p.name) {
            names.push(p.name.clone());
        }
    }
    RecordingEnd {
        state: manifest.state.as_str().into(),
        error: error.or_else(|| manifest.error.clone()),
        ended_ms: manifest.started_at_ms + manifest.duration_ms as i64,
        duration_ms: manifest.duration_ms as i64,
        bytes: manifest.bytes() as i64,
        participants: names,
    }
}

/// Runs on the recorder's thread when a recording ends, however it ended.
struct Finisher {
    id: RecordingId,
    store: Arc<Store>,
    active: Arc<AtomicU64>,
    room: mpsc::WeakSender<RoomCommand>,
}

impl Finisher {
    fn run(self, outcome: &Outcome) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        let error = match outcome {
            Outcome::Complete(_) => None,
            Outcome::Failed(_, message) => Some(message.clone()),
        };
        let end = end_of(outcome.manifest(), error.clone());
        if let Err(e) = self.store.finish_recording(self.id.as_str(), &end) {
            tracing::error!(recording_id = %self.id, error = %e, "cannot index a finished recording");
        }
        tracing::info!(recording_id = %self.id, state = %end.state, duration_ms = end.duration_ms, bytes = end.bytes, "recording ended");
        // The room learns of a failure (it tells the hosts); a stop it asked for needs no reply.
        if let Some(room) = self.room.upgrade() {
            let _ = room.try_send(RoomCommand::RecordingEnded { id: self.id, error });
        }
    }
}
