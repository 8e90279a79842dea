//! Recordings: what a host's recordings page lists and what authorizes replay. The media and
//! the detailed timeline live in the recording's directory (its manifest); this table is the
//! index over them, so listing never reads the file system.

use hearth_proto::SessionId;
use rusqlite::{OptionalExtension, Row, params};

use crate::{Entity, Store, StoreError};

/// A recording just started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecording {
    /// Its id (32 hex digits; also its directory's name).
    pub id: String,
    /// The session recorded.
    pub session: SessionId,
    /// The session's title when recording started.
    pub title: String,
    /// When it started, ms since the Unix epoch.
    pub started_ms: i64,
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingEnd {
    /// `complete`, `recovered` or `failed`.
    pub state: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When it ended, ms since the Unix epoch.
    pub ended_ms: i64,
    /// Its length.
    pub duration_ms: i64,
    /// Bytes of its media files.
    pub bytes: i64,
    /// Names of everyone who was there.
    pub participants: Vec<String>,
}

/// One recording, as the index knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingRecord {
    /// Its id.
    pub id: String,
    /// The session recorded.
    pub session: SessionId,
    /// The session's title when recording started.
    pub title: String,
    /// `recording`, `complete`, `recovered` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub started_ms: i64,
    /// When it ended; `None` while recording.
    pub ended_ms: Option<i64>,
    /// Its length (0 while recording).
    pub duration_ms: i64,
    /// Bytes of its media files.
    pub bytes: i64,
    /// Names of everyone who was there.
    pub participants: Vec<String>,
    /// Hash of the replay link's key, while the recording is shared.
    pub replay_hash: Option<String>,
    /// Bumped each time sharing is revoked, so a new replay link differs from every old one.
    pub replay_generation: u32,
}

const COLUMNS: &str = "id, session_id, title, state, error, started_ms, ended_ms, duration_ms, \
                       bytes, participants, replay_hash, replay_generation";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RecordingRecord> {
    let participants: String = row.get(9)?;
    Ok(RecordingRecord {
        id: row.get(0)?,
        session: SessionId::from_string(row.get::<_, String>(1)?),
        title: row.get(2)?,
        state: row.get(3)?,
        error: row.get(4)?,
        started_ms: row.get(5)?,
        ended_ms: row.get(6)?,
        duration_ms: row.get(7)?,
        bytes: row.get(8)?,
        // Written by this crate only; an unreadable list shows as empty rather than failing
        // the whole listing.
        participants: serde_json::from_str(&participants).unwrap_or_default(),
        replay_hash: row.get(10)?,
        replay_generation: row.get(11)?,
    })
}

impl Store {
    /// Indexes a recording that just started (state `recording`).
    pub fn create_recording(&self, r: &NewRecording) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO recordings (id, session_id, title, state, started_ms)
                 VALUES (?1, ?2, ?3, 'recording', ?4)",
            )?
            .execute(params![r.id, r.session.as_str(), r.title, r.started_ms])
            .map_err(|e| StoreError::on_insert(e, Entity::Recording))?;
        Ok(())
    }

    /// Records how a recording ended.
    pub fn finish_recording(&self, id: &str, end: &RecordingEnd) -> Result<(), StoreError> {
        let participants =
            serde_json::to_string(&end.participants).expect("a list of strings serializes");
        let changed = self
            .lock()
            .prepare_cached(
                "UPDATE recordings SET state = ?2, error = ?3, ended_ms = ?4, duration_ms = ?5,
                 bytes = ?6, participants = ?7 WHERE id = ?1",
            )?
            .execute(params![
                id,
                end.state,
                end.error,
                end.ended_ms,
                end.duration_ms,
                end.bytes,
                participants
            ])?;
        if changed == 0 {
            return Err(StoreError::NotFound(Entity::Recording));
        }
        Ok(())
    }

    /// The recording with this id.
    pub fn recording(&self, id: &str) -> Result<Option<RecordingRecord>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM recordings WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?)
    }

    /// A session's recordings, newest first.
    pub fn recordings_of(&self, session: &SessionId) -> Result<Vec<RecordingRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE session_id = ?1 ORDER BY started_ms DESC, rowid DESC"
        ))?;
        let rows = stmt.query_map([session.as_str()], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recordings still marked `recording`: at start-up, the ones a crash interrupted.
    pub fn unfinished_recordings(&self) -> Result<Vec<RecordingRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE state = 'recording' ORDER BY started_ms"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Shares (`Some(hash)`) or stops sharing (`None`, which also bumps the generation) a
    /// recording's replay link.
    pub fn set_replay(&self, id: &str, replay_hash: Option<&str>) -> Result<(), StoreError> {
        let sql = if replay_hash.is_some() {
            "UPDATE recordings SET replay_hash = ?2 WHERE id = ?1"
        } else {
            "UPDATE recordings SET replay_hash = ?2, replay_generation = replay_generation + 1
             WHERE id = ?1"
        };
        let changed = self
            .lock()
            .prepare_cached(sql)?
            .execute(params![id, replay_hash])?;
        if changed == 0 {
            return Err(StoreError::NotFound(Entity::Recording));
        }
        Ok(())
    }

    /// Removes a recording from the index. Returns whether it was there.
    pub fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .lock()
            .prepare_cached("DELETE FROM recordings WHERE id = ?1")?
            .execute([id])?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{NewSession, SessionSettings};

    fn store_with_session() -> (Store, SessionId) {
        let store = Store::open_in_memory().unwrap();
        let id = SessionId::from_string("s1");
        store
            .create_session(&NewSession {
                id: id.clone(),
                title: "t".into(),
                settings: SessionSettings::default(),
                host_hash: "h".into(),
                invite_hash: "i".into(),
                created_ms: 1,
            })
            .unwrap();
        (store, id)
    }

    #[test]
    fn a_recording_is_listed_finished_shared_and_deleted() {
        let (store, session) = store_with_session();
        for (id, at) in [("a", 10), ("b", 20)] {
            store
                .create_recording(&NewRecording {
                    id: id.into(),
                    session: session.clone(),
                    title: "Book club".into(),
                    started_ms: at,
                })
                .unwrap();
        }
        let listed: Vec<String> = store
            .recordings_of(&session)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, ["b", "a"], "newest first");
        assert_eq!(store.unfinished_recordings().unwrap().len(), 2);

        store
            .finish_recording(
                "a",
                &RecordingEnd {
                    state: "complete".into(),
                    error: None,
                    ended_ms: 70,
                    duration_ms: 60,
                    bytes: 1234,
                    participants: vec!["Ada".into(), "Bo".into()],
                },
            )
            .unwrap();
        let a = store.recording("a").unwrap().unwrap();
        assert_eq!(a.state, "complete");
        assert_eq!(a.participants, ["Ada", "Bo"]);
        assert_eq!(store.unfinished_recordings().unwrap().len(), 1);

        store.set_replay("a", Some("hash")).unwrap();
        assert_eq!(
            store
                .recording("a")
                .unwrap()
                .unwrap()
                .replay_hash
                .as_deref(),
            Some("hash")
        );
        store.set_replay("a", None).unwrap();
        let a = store.recording("a").unwrap().unwrap();
        assert_eq!((a.replay_hash, a.replay_generation), (None, 1));

        assert!(store.delete_recording("a").unwrap());
        assert!(!store.delete_recording("a").unwrap());
        assert!(store.recording("a").unwrap().is_none());
        assert!(matches!(
            store.set_replay("a", None),
            Err(StoreError::NotFound(Entity::Recording))
        ));
    }

    #[test]
    fn a_recording_needs_its_session() {
        let store = Store::open_in_memory().unwrap();
        let err = store
            .create_recording(&NewRecording {
                id: "x".into(),
                session: SessionId::from_string("nope"),
                title: "t".into(),
                started_ms: 1,
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(Entity::Session)));
    }
}
