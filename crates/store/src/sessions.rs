//! Sessions: what a host creates, what its invite link names, and what start-up reloads.

use hearth_proto::SessionId;
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{Entity, Store, StoreError, found};

/// How a session behaves. Stored as JSON text in one column, so a new setting needs no
/// migration: `#[serde(default)]` fills settings missing from old rows, and settings unknown
/// to this build (written by a newer one) are ignored on read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub struct SessionSettings {
    /// `"room"` (everyone may publish) or `"stage"` (only hosts and speakers publish).
    /// A string rather than an enum so an unknown shape from a newer build still loads.
    pub shape: String,
    /// Nobody new may join, not even with a valid invite.
    pub locked: bool,
    /// Joiners wait until a host admits them.
    pub waiting_room: bool,
    /// Cap on simultaneous participants; `None` means the server's own limit.
    pub max_participants: Option<u32>,
    /// How many times the invite link was rotated. The invite key is derived from the host
    /// key and this counter, so only hashes need to be stored.
    pub invite_generation: u32,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            shape: "room".to_owned(),
            locked: false,
            waiting_room: false,
            max_participants: None,
            invite_generation: 0,
        }
    }
}

/// A session as the host creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// The session's id, chosen by the caller (it appears in links).
    pub id: SessionId,
    /// Shown to participants.
    pub title: String,
    /// Initial settings.
    pub settings: SessionSettings,
    /// Hash of the host secret ([`crate::secrets::hash_secret`]).
    pub host_hash: String,
    /// Hash of the secret in the shareable invite link.
    pub invite_hash: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: i64,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's id.
    pub id: SessionId,
    /// Shown to participants.
    pub title: String,
    /// Current settings.
    pub settings: SessionSettings,
    /// Hash of the host secret.
    pub host_hash: String,
    /// Hash of the current invite-link secret (changes when the link is rotated).
    pub invite_hash: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: i64,
    /// When the host ended it; `None` while it is live.
    pub ended_ms: Option<i64>,
}

const COLUMNS: &str = "id, title, settings, host_hash, invite_hash, created_ms, ended_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    let settings: String = row.get(2)?;
    let settings = serde_json::from_str(&settings)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e)))?;
    Ok(SessionRecord {
        id: SessionId::from_string(row.get::<_, String>(0)?),
        title: row.get(1)?,
        settings,
        host_hash: row.get(3)?,
        invite_hash: row.get(4)?,
        created_ms: row.get(5)?,
        ended_ms: row.get(6)?,
    })
}

fn settings_json(settings: &SessionSettings) -> String {
    serde_json::to_string(settings).expect("settings are strings, bools and integers only")
}

impl Store {
    /// Stores a new session. Fails with `AlreadyExists(Session)` if the id is taken.
    pub fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO sessions (id, title, settings, host_hash, invite_hash, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.id.as_str(),
                s.title,
                settings_json(&s.settings),
                s.host_hash,
                s.invite_hash,
                s.created_ms
            ])
            .map_err(|e| StoreError::on_insert(e, Entity::Session))?;
        Ok(())
    }

    /// The session with this id, ended or not.
    pub fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"))?
            .query_row([id.as_str()], from_row)
            .optional()?)
    }

    /// Sessions not ended, oldest first. The server loads these at start-up so that links
    /// handed out before a restart keep working after it.
    pub fn live_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE ended_ms IS NULL ORDER BY created_ms, rowid"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the settings as a whole (the caller read-modify-writes under its own room
    /// lock, so there is no partial update to race with).
    pub fn update_settings(
        &self,
        id: &SessionId,
        settings: &SessionSettings,
    ) -> Result<(), StoreError> {
        let changed = self
            .lock()
            .prepare_cached("UPDATE sessions SET settings = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), settings_json(settings)])?;
        found(changed, Entity::Session)
    }

    /// Replaces the invite secret's hash, which rotates the invite link: the old link stops
    /// working at once. Minted invites ([`Store::create_invite`]) are not affected.
    pub fn set_invite_hash(&self, id: &SessionId, invite_hash: &str) -> Result<(), StoreError> {
        let changed = self
            .lock()
            .prepare_cached("UPDATE sessions SET invite_hash = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), invite_hash])?;
        found(changed, Entity::Session)
    }

    /// Marks the session ended at `at_ms` and closes the presence of everyone still in it,
    /// in one transaction. Ending an ended session keeps the first end time: retries and
    /// double clicks are harmless.
    pub fn end_session(&self, id: &SessionId, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let exists = tx
            .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?
            .query_row([id.as_str()], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(Entity::Session));
        }
        tx.prepare_cached("UPDATE sessions SET ended_ms = ?2 WHERE id = ?1 AND ended_ms IS NULL")?
            .execute(params![id.as_str(), at_ms])?;
        tx.prepare_cached(
            "UPDATE participants SET left_ms = ?2 WHERE session_id = ?1 AND left_ms IS NULL",
        )?
        .execute(params![id.as_str(), at_ms])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_dir::FileStore;
    use hearth_proto::ParticipantId;

    pub(crate) fn new_session(id: &SessionId, created_ms: i64) -> NewSession {
        NewSession {
            id: id.clone(),
            title: format!("Session {id}"),
            settings: SessionSettings::default(),
            host_hash: format!("host-hash-{id}"),
            invite_hash: format!("invite-hash-{id}"),
            created_ms,
        }
    }

    fn sid(s: &str) -> SessionId {
        SessionId::from_string(s)
    }

    #[test]
    fn created_session_reads_back_unchanged() {
        let store = FileStore::new("session-roundtrip");
        let mut new = new_session(&sid("s1"), 1_000);
        new.settings = SessionSettings {
            shape: "stage".into(),
            locked: true,
            waiting_room: true,
            max_participants: Some(12),
            invite_generation: 0,
        };
        store.create_session(&new).expect("create");
        let got = store.session(&sid("s1")).expect("read").expect("exists");
        assert_eq!(
            got,
            SessionRecord {
                id: new.id,
                title: new.title,
                settings: new.settings,
                host_hash: new.host_hash,
                invite_hash: new.invite_hash,
                created_ms: 1_000,
                ended_ms: None,
            }
        );
    }

    #[test]
    fn unknown_session_is_none() {
        let store = FileStore::new("session-unknown");
        assert_eq!(store.session(&sid("nope")).expect("read"), None);
    }

    #[test]
    fn creating_a_session_twice_is_already_exists() {
        let store = FileStore::new("session-dup");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        let err = store
            .create_session(&new_session(&sid("s1"), 2))
            .expect_err("duplicate");
        assert!(
            matches!(err, StoreError::AlreadyExists(Entity::Session)),
            "{err:?}"
        );
    }

    #[test]
    fn live_sessions_are_oldest_first_and_exclude_ended() {
        let store = FileStore::new("session-live");
        store
            .create_session(&new_session(&sid("late"), 3_000))
            .expect("create");
        store
            .create_session(&new_session(&sid("early"), 1_000))
            .expect("create");
        store
            .create_session(&new_session(&sid("ended"), 2_000))
            .expect("create");
        store.end_session(&sid("ended"), 2_500).expect("end");
        let ids: Vec<_> = store
            .live_sessions()
            .expect("live")
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, vec![sid("early"), sid("late")]);
        let ended = store
            .session(&sid("ended"))
            .expect("read")
            .expect("still stored");
        assert_eq!(ended.ended_ms, Some(2_500));
    }

    #[test]
    fn ending_twice_keeps_the_first_end_time() {
        let store = FileStore::new("session-end-twice");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        store.end_session(&sid("s1"), 10).expect("end");
        store.end_session(&sid("s1"), 20).expect("end again");
        let s = store.session(&sid("s1")).expect("read").expect("exists");
        assert_eq!(s.ended_ms, Some(10));
    }

    #[test]
    fn ending_a_session_closes_open_presence() {
        let store = FileStore::new("session-end-presence");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        let (a, b) = (
            ParticipantId::from_string("a"),
            ParticipantId::from_string("b"),
        );
        store
            .record_join(&sid("s1"), &a, "A", "host", 2)
            .expect("join a");
        store
            .record_join(&sid("s1"), &b, "B", "attendee", 3)
            .expect("join b");
        store.record_leave(&b, 5).expect("b leaves");
        store.end_session(&sid("s1"), 9).expect("end");
        let left: Vec<_> = store
            .participants(&sid("s1"))
            .expect("presence")
            .into_iter()
            .map(|p| p.left_ms)
            .collect();
        assert_eq!(left, vec![Some(9), Some(5)]);
    }

    #[test]
    fn updates_to_a_missing_session_are_not_found() {
        let store = FileStore::new("session-missing");
        let missing = sid("missing");
        let settings = SessionSettings::default();
        for err in [
            store
                .update_settings(&missing, &settings)
                .expect_err("settings"),
            store
                .set_invite_hash(&missing, "h")
                .expect_err("invite hash"),
            store.end_session(&missing, 1).expect_err("end"),
        ] {
            assert!(
                matches!(err, StoreError::NotFound(Entity::Session)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn settings_update_is_persisted() {
        let store = FileStore::new("session-settings");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        let settings = SessionSettings {
            locked: true,
            max_participants: Some(3),
            invite_generation: 2,
            ..SessionSettings::default()
        };
        store
            .update_settings(&sid("s1"), &settings)
            .expect("update");
        let s = store.session(&sid("s1")).expect("read").expect("exists");
        assert_eq!(s.settings, settings);
    }

    #[test]
    fn rotating_the_invite_replaces_its_hash() {
        let store = FileStore::new("session-rotate");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        store
            .set_invite_hash(&sid("s1"), "new-hash")
            .expect("rotate");
        let s = store.session(&sid("s1")).expect("read").expect("exists");
        assert_eq!(s.invite_hash, "new-hash");
        assert_eq!(s.host_hash, "host-hash-s1", "the host secret is untouched");
    }

    #[test]
    fn old_and_future_settings_json_still_load() {
        let store = FileStore::new("session-settings-compat");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        // A row written before `waiting_room` existed, by a build that also knew a setting
        // this one does not.
        store
            .lock()
            .execute(
                "UPDATE sessions SET settings = ?1",
                [r#"{"shape":"stage","locked":true,"from_the_future":42}"#],
            )
            .expect("raw update");
        let s = store.session(&sid("s1")).expect("read").expect("exists");
        assert_eq!(
            s.settings,
            SessionSettings {
                shape: "stage".into(),
                locked: true,
                ..SessionSettings::default()
            }
        );
    }

    #[test]
    fn unreadable_settings_are_corrupt_not_a_panic() {
        let store = FileStore::new("session-settings-corrupt");
        store
            .create_session(&new_session(&sid("s1"), 1))
            .expect("create");
        store
            .lock()
            .execute("UPDATE sessions SET settings = 'not json'", [])
            .expect("raw update");
        let err = store.session(&sid("s1")).expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(
            !err.to_string().contains("not json"),
            "stored values stay out of messages"
        );
    }

    #[test]
    fn default_settings_are_an_open_room() {
        let s: SessionSettings = serde_json::from_str("{}").expect("parse");
        assert_eq!(s, SessionSettings::default());
        assert_eq!(s.shape, "room");
        assert!(!s.locked && !s.waiting_room);
        assert_eq!(s.max_participants, None);
    }
}
