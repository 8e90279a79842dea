//! Hearth's persistence: sessions, invites, bans, presence and chat in one embedded SQLite file.
//!
//! A session's invite link must keep working after the server restarts, so everything a link
//! depends on (the session, its settings, the hashes of its secrets, minted invites, bans)
//! lives here rather than only in memory. Presence and chat are kept as an audit trail and as
//! the history a late joiner sees.
//!
//! The API is synchronous. Each call is one short statement or transaction against a local
//! file (tens of microseconds to a few milliseconds), which async callers can afford to make
//! directly; if a call ever grows heavy, the server wraps it in `spawn_blocking` without this
//! crate changing. Keeping tokio out also keeps this crate usable from tests and tools as is.
//!
//! Time is a parameter: every `*_ms` argument is milliseconds since the Unix epoch, supplied by
//! the caller, so tests control the clock and the store never reads it.
//!
//! The store keeps secrets only as hashes; [`secrets`] makes and checks them.

mod access;
mod activity;
mod error;
mod migrations;
mod recordings;
pub mod secrets;
mod sessions;
#[cfg(test)]
mod test_dir;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

pub use access::InviteRecord;
pub use activity::{ChatRecord, PresenceRecord};
pub use error::{Entity, StoreError};
pub use recordings::{NewRecording, RecordingEnd, RecordingRecord};
pub use sessions::{NewSession, SessionRecord, SessionSettings};

/// The database file's name inside the directory given to [`Store::open`].
pub const DB_FILE_NAME: &str = "hearth.db";

/// How long a statement waits for a lock held by another connection (another process, such as
/// a backup with the `sqlite3` tool) before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle to the database. Cheap to share: put it in an `Arc` and call it from any thread.
///
/// Inside is a single connection behind a `std::sync::Mutex`, not a pool:
/// - a `rusqlite::Connection` is `Send` but not `Sync`, so shared use needs a lock anyway;
/// - SQLite admits one writer at a time regardless of the number of connections, and nearly
///   every call here writes or is a point lookup, so a pool would add a dependency and little
///   concurrency;
/// - every method holds the lock for exactly one call and the API has no `async`, so the lock
///   can never be held across an `.await`.
///
/// WAL mode still matters with one connection: other processes (a backup, an operator's
/// `sqlite3` shell) can read while the server writes.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `<dir>/hearth.db`, creating `dir` and any missing parents,
    /// and brings the schema up to date.
    ///
    /// The connection uses WAL journaling with `synchronous = NORMAL`: a crash of the process
    /// loses nothing that was committed, and a power cut can lose at most the last few commits
    /// but never corrupts the file. Foreign keys are enforced, and a busy database is waited on
    /// for a few seconds before an error.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(dir.join(DB_FILE_NAME))?;
        // journal_mode answers with the mode it actually set; a file system without shared
        // memory support stays in rollback mode, which is slower but just as correct.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Store::init(conn)
    }

    /// A private database that vanishes when the `Store` is dropped, for tests and for running
    /// without a data directory.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    /// Settings every connection needs, then the migrations.
    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Off by default in SQLite, per connection; without it the REFERENCES clauses are
        // decoration and an invite could point at a session that does not exist.
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for the duration of one method call.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic happened while it was held. The database cannot be
        // half-written by that: every multi-statement write runs in a transaction, which rolls
        // back when dropped during unwinding. So the connection is safe to keep using, and one
        // panicking request must not make every later one fail.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Ok` if an `UPDATE` or `DELETE` touched a row, `NotFound(entity)` otherwise.
fn found(changed: usize, entity: Entity) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound(entity))
    } else {
        Ok(())
    }
}

/// Converts a count for a `LIMIT` clause. Anything past `i64::MAX` means "no limit" anyway.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;
    use hearth_proto::{ParticipantId, SessionId};

    #[test]
    fn store_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }

    #[test]
    fn open_creates_missing_directories_and_uses_wal() {
        let dir = TestDir::new("open-creates");
        let nested = dir.path().join("a").join("b");
        let store = Store::open(&nested).expect("open");
        assert!(nested.join(DB_FILE_NAME).is_file());
        let conn = store.lock();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("foreign_keys");
        assert!(fk);
    }

    #[test]
    fn everything_survives_a_restart() {
        let dir = TestDir::new("restart");
        let sid = SessionId::from_string("s-restart");
        let pid = ParticipantId::from_string("p-restart");
        {
            let store = Store::open(dir.path()).expect("first open");
            store
                .create_session(&sessions::tests::new_session(&sid, 1_000))
                .expect("create");
            store
                .create_invite(&access::tests::invite("tok", &sid, Some(9_000)))
                .expect("invite");
            store.ban(&sid, "banned-cred", 1_500).expect("ban");
            store
                .record_join(&sid, &pid, "Ada", "host", 1_100)
                .expect("join");
            store
                .add_chat(&activity::tests::chat("m1", &sid, &pid, "hello", 1_200))
                .expect("chat");
        }
        // A second open of the same file: migration 1 is plain CREATE TABLE, so re-running it
        // would fail here.
        let store = Store::open(dir.path()).expect("reopen");
        let live = store.live_sessions().expect("live");
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, sid);
        assert!(store.invite_by_hash("tok").expect("invite").is_some());
        assert!(store.is_banned(&sid, "banned-cred").expect("ban"));
        assert_eq!(store.participants(&sid).expect("presence")[0].name, "Ada");
        assert_eq!(store.chat_history(&sid, 10).expect("chat")[0].text, "hello");
        assert_eq!(
            migrations::user_version(&store.lock()).expect("version"),
            migrations::MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_corrupt() {
        let dir = TestDir::new("not-a-db");
        std::fs::write(dir.path().join(DB_FILE_NAME), vec![b'x'; 4096]).expect("write junk");
        match Store::open(dir.path()) {
            Err(StoreError::Corrupt(_)) => {}
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_panic_while_locked_does_not_break_the_store() {
        let store = Store::open_in_memory().expect("open");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = store.lock();
            panic!("simulated bug while holding the lock");
        }));
        assert!(result.is_err());
        assert!(store.live_sessions().expect("still usable").is_empty());
    }
}
