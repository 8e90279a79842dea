//! What happened in a session: who was present when (an audit trail for the host) and the
//! chat (the history a late joiner or a reconnecting participant is shown).

use hearth_proto::{ParticipantId, SessionId};
use rusqlite::{OptionalExtension, Row, params};

use crate::{Entity, Store, StoreError, sql_limit};

/// One participant's presence: a join and, once they are gone, a leave. A re-join is a new
/// participant id and so a new record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceRecord {
    /// The participant.
    pub participant: ParticipantId,
    /// Display name at join time.
    pub name: String,
    /// Role at join time (e.g. `"host"`, `"attendee"`).
    pub role: String,
    /// When they joined, ms since the Unix epoch.
    pub joined_ms: i64,
    /// When they left; `None` while present.
    pub left_ms: Option<i64>,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRecord {
    /// Unique message id, chosen by the caller (so a retried write cannot duplicate it).
    pub id: String,
    /// The session it was sent in.
    pub session: SessionId,
    /// The sender.
    pub from: ParticipantId,
    /// The sender's display name when sent, so history reads right after they leave.
    pub name: String,
    /// The message text.
    pub text: String,
    /// When the server received it, ms since the Unix epoch.
    pub at_ms: i64,
}

fn presence_from_row(row: &Row<'_>) -> rusqlite::Result<PresenceRecord> {
    Ok(PresenceRecord {
        participant: ParticipantId::from_string(row.get::<_, String>(0)?),
        name: row.get(1)?,
        role: row.get(2)?,
        joined_ms: row.get(3)?,
        left_ms: row.get(4)?,
    })
}

fn chat_from_row(row: &Row<'_>) -> rusqlite::Result<ChatRecord> {
    Ok(ChatRecord {
        id: row.get(0)?,
        session: SessionId::from_string(row.get::<_, String>(1)?),
        from: ParticipantId::from_string(row.get::<_, String>(2)?),
        name: row.get(3)?,
        text: row.get(4)?,
        at_ms: row.get(5)?,
    })
}

impl Store {
    /// Records that `participant` joined `session`. `NotFound(Session)` if the session does
    /// not exist; `AlreadyExists(Participant)` if the id was used before.
    pub fn record_join(
        &self,
        session: &SessionId,
        participant: &ParticipantId,
        name: &str,
        role: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO participants (id, session_id, name, role, joined_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                participant.as_str(),
                session.as_str(),
                name,
                role,
                at_ms
            ])
            .map_err(|e| StoreError::on_insert(e, Entity::Participant))?;
        Ok(())
    }

    /// Records that `participant` left. A second leave keeps the first time (a socket close
    /// racing an explicit leave is normal). `NotFound(Participant)` if they never joined.
    pub fn record_leave(&self, participant: &ParticipantId, at_ms: i64) -> Result<(), StoreError> {
        let conn = self.lock();
        let changed = conn
            .prepare_cached(
                "UPDATE participants SET left_ms = ?2 WHERE id = ?1 AND left_ms IS NULL",
            )?
            .execute(params![participant.as_str(), at_ms])?;
        if changed > 0 {
            return Ok(());
        }
        let known = conn
            .prepare_cached("SELECT 1 FROM participants WHERE id = ?1")?
            .query_row([participant.as_str()], |_| Ok(()))
            .optional()?
            .is_some();
        if known {
            Ok(())
        } else {
            Err(StoreError::NotFound(Entity::Participant))
        }
    }

    /// Closes every presence still open, as of `at_ms`, and returns how many there were.
    ///
    /// Call once at start-up, before accepting connections: nobody can be connected to a
    /// process that just started, so open records are left over from a crash or a kill and
    /// would otherwise show people as present forever.
    pub fn close_stale_presence(&self, at_ms: i64) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("UPDATE participants SET left_ms = ?1 WHERE left_ms IS NULL")?
            .execute([at_ms])?)
    }

    /// Everyone who was ever in the session, in order of joining.
    pub fn participants(&self, session: &SessionId) -> Result<Vec<PresenceRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, role, joined_ms, left_ms FROM participants
             WHERE session_id = ?1 ORDER BY joined_ms, rowid",
        )?;
        let rows = stmt.query_map([session.as_str()], presence_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a chat message. `NotFound(Session)` if the session does not exist;
    /// `AlreadyExists(ChatMessage)` if the id was used before.
    pub fn add_chat(&self, m: &ChatRecord) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO chat_messages (id, session_id, from_participant, name, text, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                m.id,
                m.session.as_str(),
                m.from.as_str(),
                m.name,
                m.text,
                m.at_ms
            ])
            .map_err(|e| StoreError::on_insert(e, Entity::ChatMessage))?;
        Ok(())
    }

    /// The last `limit` messages of a session, oldest first (the order a chat pane shows
    /// them). Messages with equal timestamps keep the order they were stored in.
    pub fn chat_history(
        &self,
        session: &SessionId,
        limit: usize,
    ) -> Result<Vec<ChatRecord>, StoreError> {
        let conn = self.lock();
        // The inner query walks the (session_id, at_ms) index backwards and stops after
        // `limit` rows; only those few are re-sorted for the caller.
        let mut stmt = conn.prepare_cached(
            "SELECT id, session_id, from_participant, name, text, at_ms FROM (
                 SELECT seq, id, session_id, from_participant, name, text, at_ms
                 FROM chat_messages WHERE session_id = ?1
                 ORDER BY at_ms DESC, seq DESC LIMIT ?2
             ) ORDER BY at_ms, seq",
        )?;
        let rows = stmt.query_map(params![session.as_str(), sql_limit(limit)], chat_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sessions::tests::new_session;
    use crate::test_dir::FileStore;

    pub(crate) fn chat(
        id: &str,
        session: &SessionId,
        from: &ParticipantId,
        text: &str,
        at_ms: i64,
    ) -> ChatRecord {
        ChatRecord {
            id: id.to_owned(),
            session: session.clone(),
            from: from.clone(),
            name: "Ada".to_owned(),
            text: text.to_owned(),
            at_ms,
        }
    }

    fn with_session(label: &str) -> (FileStore, SessionId) {
        let store = FileStore::new(label);
        let sid = SessionId::from_string("s1");
        store
            .create_session(&new_session(&sid, 1))
            .expect("create session");
        (store, sid)
    }

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::from_string(s)
    }

    #[test]
    fn join_and_leave_are_recorded_in_join_order() {
        let (store, sid) = with_session("presence-roundtrip");
        store
            .record_join(&sid, &pid("b"), "Bo", "attendee", 20)
            .expect("join b");
        store
            .record_join(&sid, &pid("a"), "Ada", "host", 10)
            .expect("join a");
        store.record_leave(&pid("b"), 30).expect("leave b");
        assert_eq!(
            store.participants(&sid).expect("presence"),
            vec![
                PresenceRecord {
                    participant: pid("a"),
                    name: "Ada".into(),
                    role: "host".into(),
                    joined_ms: 10,
                    left_ms: None,
                },
                PresenceRecord {
                    participant: pid("b"),
                    name: "Bo".into(),
                    role: "attendee".into(),
                    joined_ms: 20,
                    left_ms: Some(30),
                },
            ]
        );
    }

    #[test]
    fn a_second_leave_keeps_the_first_time() {
        let (store, sid) = with_session("presence-leave-twice");
        store
            .record_join(&sid, &pid("a"), "Ada", "host", 10)
            .expect("join");
        store.record_leave(&pid("a"), 20).expect("leave");
        store.record_leave(&pid("a"), 25).expect("leave again");
        assert_eq!(
            store.participants(&sid).expect("presence")[0].left_ms,
            Some(20)
        );
    }

    #[test]
    fn presence_errors_name_what_is_missing() {
        let (store, sid) = with_session("presence-errors");
        let err = store
            .record_leave(&pid("stranger"), 1)
            .expect_err("never joined");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Participant)),
            "{err:?}"
        );
        let err = store
            .record_join(&SessionId::from_string("ghost"), &pid("a"), "A", "host", 1)
            .expect_err("no session");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Session)),
            "{err:?}"
        );
        store
            .record_join(&sid, &pid("a"), "A", "host", 1)
            .expect("join");
        let err = store
            .record_join(&sid, &pid("a"), "A", "host", 2)
            .expect_err("same id");
        assert!(
            matches!(err, StoreError::AlreadyExists(Entity::Participant)),
            "{err:?}"
        );
    }

    #[test]
    fn start_up_closes_presence_left_open_by_a_crash() {
        let (store, sid) = with_session("presence-stale");
        store
            .record_join(&sid, &pid("a"), "Ada", "host", 10)
            .expect("join");
        store
            .record_join(&sid, &pid("b"), "Bo", "attendee", 11)
            .expect("join");
        store.record_leave(&pid("b"), 12).expect("leave");
        assert_eq!(store.close_stale_presence(99).expect("close"), 1);
        let left: Vec<_> = store
            .participants(&sid)
            .expect("presence")
            .into_iter()
            .map(|p| p.left_ms)
            .collect();
        assert_eq!(left, vec![Some(99), Some(12)]);
    }

    #[test]
    fn chat_round_trips() {
        let (store, sid) = with_session("chat-roundtrip");
        let m = chat(
            "m1",
            &sid,
            &pid("a"),
            "hello, 'world'; DROP TABLE chat_messages",
            5,
        );
        store.add_chat(&m).expect("add");
        assert_eq!(store.chat_history(&sid, 10).expect("history"), vec![m]);
    }

    #[test]
    fn chat_history_is_the_latest_n_oldest_first() {
        let (store, sid) = with_session("chat-order");
        // Stored out of time order, with a tie at t=30.
        for (id, at) in [("m3", 30), ("m1", 10), ("m4", 30), ("m2", 20), ("m5", 50)] {
            store
                .add_chat(&chat(id, &sid, &pid("a"), id, at))
                .expect("add");
        }
        let ids = |limit| -> Vec<String> {
            store
                .chat_history(&sid, limit)
                .expect("history")
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(ids(3), ["m3", "m4", "m5"], "ties keep insertion order");
        assert_eq!(ids(100), ["m1", "m2", "m3", "m4", "m5"]);
        assert!(ids(0).is_empty());
        assert_eq!(ids(usize::MAX).len(), 5);
    }

    #[test]
    fn chat_history_is_per_session() {
        let (store, s1) = with_session("chat-per-session");
        let s2 = SessionId::from_string("s2");
        store
            .create_session(&new_session(&s2, 1))
            .expect("create s2");
        store
            .add_chat(&chat("x", &s1, &pid("a"), "in s1", 1))
            .expect("add");
        store
            .add_chat(&chat("y", &s2, &pid("a"), "in s2", 2))
            .expect("add");
        let texts: Vec<_> = store
            .chat_history(&s1, 10)
            .expect("history")
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["in s1"]);
    }

    #[test]
    fn chat_errors_name_what_is_wrong() {
        let (store, sid) = with_session("chat-errors");
        store
            .add_chat(&chat("m1", &sid, &pid("a"), "hi", 1))
            .expect("add");
        let err = store
            .add_chat(&chat("m1", &sid, &pid("a"), "hi", 1))
            .expect_err("same id");
        assert!(
            matches!(err, StoreError::AlreadyExists(Entity::ChatMessage)),
            "{err:?}"
        );
        let ghost = SessionId::from_string("ghost");
        let err = store
            .add_chat(&chat("m2", &ghost, &pid("a"), "hi", 1))
            .expect_err("no session");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Session)),
            "{err:?}"
        );
    }
}
