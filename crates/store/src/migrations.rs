//! The schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` (an integer in the database header) counts the migrations applied.
//! Each migration runs in its own transaction together with the bump of that counter, so a
//! crash mid-migration leaves the previous version intact and the next start-up retries it.
//! Migrations are append-only: once released, a migration's SQL never changes, because
//! databases in the field have already run it.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Version 1: the initial schema.
///
/// Times are milliseconds since the Unix epoch, supplied by the caller. Every table that
/// belongs to a session references it with `ON DELETE CASCADE`, so a future "purge old
/// sessions" is a single `DELETE`.
const V1_INITIAL: &str = "
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    -- JSON of SessionSettings: new settings need no migration.
    settings    TEXT NOT NULL,
    host_hash   TEXT NOT NULL,
    invite_hash TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    ended_ms    INTEGER
);
-- Start-up loads the live sessions; the partial index keeps that cheap as ended ones pile up.
CREATE INDEX sessions_live ON sessions (created_ms) WHERE ended_ms IS NULL;

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    expires_ms INTEGER,
    created_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);
CREATE INDEX invites_by_session ON invites (session_id);

CREATE TABLE bans (
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    credential_hash TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    PRIMARY KEY (session_id, credential_hash)
) WITHOUT ROWID;

CREATE TABLE participants (
    id         TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    joined_ms  INTEGER NOT NULL,
    left_ms    INTEGER
);
CREATE INDEX participants_by_session ON participants (session_id, joined_ms);

CREATE TABLE chat_messages (
    -- Insertion order: breaks ties between messages with the same timestamp.
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    from_participant TEXT NOT NULL,
    name             TEXT NOT NULL,
    text             TEXT NOT NULL,
    at_ms            INTEGER NOT NULL
);
-- History reads the newest N of one session; the implicit trailing rowid (seq) makes the
-- index cover the tie-break order too.
CREATE INDEX chat_by_session_time ON chat_messages (session_id, at_ms);
";

/// Version 2: recordings. The media files and the timeline live in each recording's directory;
/// this is the index a host's recordings page lists and that authorizes replay links.
const V2_RECORDINGS: &str = "
CREATE TABLE recordings (
    id                TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    state             TEXT NOT NULL,
    error             TEXT,
    started_ms        INTEGER NOT NULL,
    ended_ms          INTEGER,
    duration_ms       INTEGER NOT NULL DEFAULT 0,
    bytes             INTEGER NOT NULL DEFAULT 0,
    -- JSON array of names: shown in the listing, never queried.
    participants      TEXT NOT NULL DEFAULT '[]',
    replay_hash       TEXT,
    replay_generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_by_session ON recordings (session_id, started_ms);
";

/// Every migration, oldest first. Append only.
pub(crate) const MIGRATIONS: &[&str] = &[V1_INITIAL, V2_RECORDINGS];

/// Brings the database up to the newest schema this build knows.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    apply(conn, MIGRATIONS)
}

/// Applies the migrations the database has not seen yet, one transaction each.
fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let supported = i64::try_from(migrations.len()).expect("a few migrations fit in i64");
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes
        // opening the same file cannot both apply the same migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        if current == supported {
            return Ok(());
        }
        if current > supported {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported,
            });
        }
        let index = usize::try_from(current)
            .map_err(|_| StoreError::Corrupt(format!("negative schema version {current}")))?;
        tx.execute_batch(migrations[index])?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
    }
}

/// The number of migrations applied to this database.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;
    use crate::{Store, StoreError};

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    #[test]
    fn fresh_database_is_at_the_newest_version() {
        let store = Store::open_in_memory().expect("open");
        let conn = store.lock();
        assert_eq!(
            user_version(&conn).expect("version"),
            MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn each_migration_runs_once_across_opens() {
        let dir = TestDir::new("migrate-once");
        let path = dir.path().join("m.db");
        // The second migration is not idempotent: running it twice would add a second row.
        let migrations = [
            "CREATE TABLE runs (n INTEGER)",
            "INSERT INTO runs VALUES (1)",
        ];
        for _ in 0..3 {
            let mut conn = Connection::open(&path).expect("open");
            apply(&mut conn, &migrations).expect("migrate");
            assert_eq!(count(&conn, "runs"), 1);
            assert_eq!(user_version(&conn).expect("version"), 2);
        }
    }

    #[test]
    fn a_new_migration_applies_on_top_of_an_old_database() {
        let dir = TestDir::new("migrate-upgrade");
        let path = dir.path().join("m.db");
        let v1 = ["CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (7)"];
        apply(&mut Connection::open(&path).expect("open"), &v1).expect("v1");
        let v2 = [
            v1[0],
            "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 0",
        ];
        let mut conn = Connection::open(&path).expect("reopen");
        apply(&mut conn, &v2).expect("v2");
        let (a, b): (i64, i64) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("row survives");
        assert_eq!((a, b), (7, 0));
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        let migrations = [
            "CREATE TABLE ok (a INTEGER)",
            "CREATE TABLE half (a); SYNTAX ERROR",
        ];
        assert!(apply(&mut conn, &migrations).is_err());
        assert_eq!(user_version(&conn).expect("version"), 1);
        // The statement before the error was rolled back with it.
        let half: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'half'",
                [],
                |r| r.get(0),
            )
            .expect("schema query");
        assert_eq!(half, 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = TestDir::new("migrate-too-new");
        drop(Store::open(dir.path()).expect("create"));
        let conn = Connection::open(dir.path().join(crate::DB_FILE_NAME)).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        match Store::open(dir.path()) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
        }
    }
}
