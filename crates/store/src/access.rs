//! Who may enter a session besides the holders of its main invite link: minted invites
//! (extra links with their own role and expiry) and bans (credentials that may not re-join).

use hearth_proto::SessionId;
use rusqlite::{OptionalExtension, Row, params};

use crate::{Entity, Store, StoreError, found};

/// An extra invite link minted by a host. Only the token's hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    /// SHA-256 hex of the token in the link ([`crate::secrets::hash_secret`]); the key.
    pub token_hash: String,
    /// The session the link opens.
    pub session: SessionId,
    /// The role a visitor with this link joins as (e.g. `"attendee"`, `"speaker"`).
    pub role: String,
    /// After this instant (ms since the Unix epoch) the link no longer admits anyone.
    pub expires_ms: Option<i64>,
    /// When it was minted.
    pub created_ms: i64,
    /// Revoked by a host; kept rather than deleted so a visitor can be told why.
    pub revoked: bool,
}

impl InviteRecord {
    /// Whether the link admits someone at `now_ms`: not revoked and not yet expired.
    /// The store returns revoked and expired invites too, so the caller can tell "revoked"
    /// from "unknown"; this is the one place that decides usability.
    #[must_use]
    pub fn is_usable(&self, now_ms: i64) -> bool {
        !self.revoked && self.expires_ms.is_none_or(|expires| now_ms < expires)
    }
}

fn invite_from_row(row: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    Ok(InviteRecord {
        token_hash: row.get(0)?,
        session: SessionId::from_string(row.get::<_, String>(1)?),
        role: row.get(2)?,
        expires_ms: row.get(3)?,
        created_ms: row.get(4)?,
        revoked: row.get(5)?,
    })
}

impl Store {
    /// Stores a minted invite. `NotFound(Session)` if its session does not exist,
    /// `AlreadyExists(Invite)` if the token hash is taken.
    pub fn create_invite(&self, i: &InviteRecord) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO invites (token_hash, session_id, role, expires_ms, created_ms, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                i.token_hash,
                i.session.as_str(),
                i.role,
                i.expires_ms,
                i.created_ms,
                i.revoked
            ])
            .map_err(|e| StoreError::on_insert(e, Entity::Invite))?;
        Ok(())
    }

    /// The invite whose token hashes to `token_hash`, including revoked and expired ones
    /// (check [`InviteRecord::is_usable`]).
    pub fn invite_by_hash(&self, token_hash: &str) -> Result<Option<InviteRecord>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "SELECT token_hash, session_id, role, expires_ms, created_ms, revoked
                 FROM invites WHERE token_hash = ?1",
            )?
            .query_row([token_hash], invite_from_row)
            .optional()?)
    }

    /// Revokes an invite; revoking twice is fine. `NotFound(Invite)` if there is none.
    pub fn revoke_invite(&self, token_hash: &str) -> Result<(), StoreError> {
        let changed = self
            .lock()
            .prepare_cached("UPDATE invites SET revoked = 1 WHERE token_hash = ?1")?
            .execute([token_hash])?;
        found(changed, Entity::Invite)
    }

    /// Bars a credential (the hash of the secret a removed participant joined with) from
    /// re-joining this session. Banning again keeps the first time. `NotFound(Session)` if the
    /// session does not exist.
    pub fn ban(
        &self,
        session: &SessionId,
        credential_hash: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "INSERT INTO bans (session_id, credential_hash, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![session.as_str(), credential_hash, at_ms])
            .map_err(|e| StoreError::on_insert(e, Entity::Session))?;
        Ok(())
    }

    /// Whether this credential was banned from this session (bans never cross sessions).
    pub fn is_banned(
        &self,
        session: &SessionId,
        credential_hash: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM bans WHERE session_id = ?1 AND credential_hash = ?2)",
            )?
            .query_row([session.as_str(), credential_hash], |row| row.get(0))?)
    }

    /// Lifts every ban in the session: what a host does when it rotates or clears the invite
    /// link and means to let everyone back in. Fine on a session with no bans.
    pub fn unban_all(&self, session: &SessionId) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached("DELETE FROM bans WHERE session_id = ?1")?
            .execute([session.as_str()])?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sessions::tests::new_session;
    use crate::test_dir::FileStore;

    pub(crate) fn invite(
        token_hash: &str,
        session: &SessionId,
        expires_ms: Option<i64>,
    ) -> InviteRecord {
        InviteRecord {
            token_hash: token_hash.to_owned(),
            session: session.clone(),
            role: "speaker".to_owned(),
            expires_ms,
            created_ms: 100,
            revoked: false,
        }
    }

    fn with_sessions(label: &str, ids: &[&str]) -> FileStore {
        let store = FileStore::new(label);
        for id in ids {
            store
                .create_session(&new_session(&SessionId::from_string(*id), 1))
                .expect("create session");
        }
        store
    }

    #[test]
    fn minted_invite_reads_back_by_hash() {
        let s1 = SessionId::from_string("s1");
        let store = with_sessions("invite-roundtrip", &["s1"]);
        let inv = invite("h1", &s1, Some(5_000));
        store.create_invite(&inv).expect("create");
        assert_eq!(store.invite_by_hash("h1").expect("read"), Some(inv));
        let no_expiry = invite("h2", &s1, None);
        store.create_invite(&no_expiry).expect("create");
        assert_eq!(store.invite_by_hash("h2").expect("read"), Some(no_expiry));
        assert_eq!(store.invite_by_hash("unknown").expect("read"), None);
    }

    #[test]
    fn revoked_invite_is_kept_but_unusable() {
        let s1 = SessionId::from_string("s1");
        let store = with_sessions("invite-revoke", &["s1"]);
        store
            .create_invite(&invite("h1", &s1, None))
            .expect("create");
        store.revoke_invite("h1").expect("revoke");
        store.revoke_invite("h1").expect("revoking twice is fine");
        let got = store
            .invite_by_hash("h1")
            .expect("read")
            .expect("still stored");
        assert!(got.revoked);
        assert!(!got.is_usable(0));
        let err = store
            .revoke_invite("unknown")
            .expect_err("nothing to revoke");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Invite)),
            "{err:?}"
        );
    }

    #[test]
    fn invite_for_a_missing_session_is_refused() {
        let store = with_sessions("invite-orphan", &[]);
        let err = store
            .create_invite(&invite("h1", &SessionId::from_string("ghost"), None))
            .expect_err("no such session");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Session)),
            "{err:?}"
        );
    }

    #[test]
    fn reusing_a_token_hash_is_already_exists() {
        let s1 = SessionId::from_string("s1");
        let store = with_sessions("invite-dup", &["s1"]);
        store
            .create_invite(&invite("h1", &s1, None))
            .expect("create");
        let err = store
            .create_invite(&invite("h1", &s1, None))
            .expect_err("dup");
        assert!(
            matches!(err, StoreError::AlreadyExists(Entity::Invite)),
            "{err:?}"
        );
    }

    #[test]
    fn invite_expires_at_its_deadline() {
        let inv = invite("h", &SessionId::from_string("s"), Some(1_000));
        assert!(inv.is_usable(999));
        assert!(!inv.is_usable(1_000));
        assert!(invite("h", &SessionId::from_string("s"), None).is_usable(i64::MAX));
    }

    #[test]
    fn bans_apply_only_to_their_session() {
        let (s1, s2) = (SessionId::from_string("s1"), SessionId::from_string("s2"));
        let store = with_sessions("bans-scope", &["s1", "s2"]);
        assert!(!store.is_banned(&s1, "cred").expect("check"));
        store.ban(&s1, "cred", 10).expect("ban");
        store.ban(&s1, "cred", 20).expect("banning twice is fine");
        assert!(store.is_banned(&s1, "cred").expect("check"));
        assert!(!store.is_banned(&s2, "cred").expect("other session"));
        assert!(
            !store
                .is_banned(&s1, "other-cred")
                .expect("other credential")
        );
    }

    #[test]
    fn unban_all_lets_everyone_back_into_that_session_only() {
        let (s1, s2) = (SessionId::from_string("s1"), SessionId::from_string("s2"));
        let store = with_sessions("bans-clear", &["s1", "s2"]);
        store.ban(&s1, "a", 1).expect("ban");
        store.ban(&s1, "b", 1).expect("ban");
        store.ban(&s2, "a", 1).expect("ban");
        store.unban_all(&s1).expect("unban");
        assert!(!store.is_banned(&s1, "a").expect("check"));
        assert!(!store.is_banned(&s1, "b").expect("check"));
        assert!(
            store
                .is_banned(&s2, "a")
                .expect("other session keeps its bans")
        );
        store
            .unban_all(&s1)
            .expect("unbanning an empty list is fine");
    }

    #[test]
    fn ban_in_a_missing_session_is_not_found() {
        let store = with_sessions("bans-orphan", &[]);
        let err = store
            .ban(&SessionId::from_string("ghost"), "c", 1)
            .expect_err("no session");
        assert!(
            matches!(err, StoreError::NotFound(Entity::Session)),
            "{err:?}"
        );
    }
}
