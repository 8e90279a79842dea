//! The one error type of this crate.
//!
//! Messages are written for an operator's log, never for a participant: the server turns every
//! `StoreError` into its own generic "internal error" (or a specific code for [`StoreError::NotFound`]
//! and [`StoreError::AlreadyExists`]). Even so, no variant carries SQL text or stored values:
//! rusqlite's own `Display` can quote the failing statement, so it is never forwarded verbatim.

use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;
use rusqlite::ffi;

/// What a [`StoreError::NotFound`] or [`StoreError::AlreadyExists`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    /// A session (`sessions` table).
    Session,
    /// A minted invite, keyed by its token hash.
    Invite,
    /// One participant's presence record.
    Participant,
    /// One chat message.
    ChatMessage,
    /// A recording.
    Recording,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Session => "session",
            Entity::Invite => "invite",
            Entity::Participant => "participant",
            Entity::ChatMessage => "chat message",
            Entity::Recording => "recording",
        })
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        /// The directory that was asked for.
        path: PathBuf,
        /// Why the operating system refused.
        source: std::io::Error,
    },

    /// The row an update or a reference names does not exist (including an insert whose
    /// session does not exist: every foreign key in the schema points at `sessions`).
    #[error("{0} not found")]
    NotFound(Entity),

    /// An insert collided with an existing primary key (the caller reused an id or a token hash).
    #[error("{0} already exists")]
    AlreadyExists(Entity),

    /// The database was written by a newer Hearth whose schema this build does not know.
    /// Refusing is safer than guessing: an older binary could silently drop new columns' meaning.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` found on disk.
        found: i64,
        /// The number of migrations this build knows.
        supported: i64,
    },

    /// Stored data could not be read back: the file is not a database, SQLite reports
    /// corruption, or a column holds a value of the wrong type or unparsable JSON.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),

    /// Any other SQLite failure (disk full, I/O error, locked for longer than the busy timeout).
    /// The text is SQLite's description of the result code, without the statement.
    #[error("sqlite: {0}")]
    Sqlite(String),
}

impl StoreError {
    /// Maps an error from an `INSERT`: constraint violations become the errors a caller can act
    /// on; `entity` is what the insert creates.
    pub(crate) fn on_insert(e: rusqlite::Error, entity: Entity) -> StoreError {
        match constraint_kind(&e) {
            Some(Constraint::Key) => StoreError::AlreadyExists(entity),
            Some(Constraint::Foreign) => StoreError::NotFound(Entity::Session),
            None => e.into(),
        }
    }
}

enum Constraint {
    Key,
    Foreign,
}

fn constraint_kind(e: &rusqlite::Error) -> Option<Constraint> {
    match e {
        rusqlite::Error::SqliteFailure(err, _) => match err.extended_code {
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                Some(Constraint::Key)
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Constraint::Foreign),
            _ => None,
        },
        _ => None,
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match e {
            E::SqliteFailure(err, _) | E::SqlInputError { error: err, .. } => match err.code {
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    StoreError::Corrupt(describe(&err))
                }
                _ => StoreError::Sqlite(describe(&err)),
            },
            // A column held something its Rust type cannot represent. The column index is
            // enough to find it; the value itself stays out of logs.
            E::FromSqlConversionFailure(col, ty, _) => {
                StoreError::Corrupt(format!("column {col}: cannot convert {ty} value"))
            }
            E::IntegralValueOutOfRange(col, _) => {
                StoreError::Corrupt(format!("column {col}: integer out of range"))
            }
            E::InvalidColumnType(col, name, ty) => {
                StoreError::Corrupt(format!("column {col} ({name}): unexpected {ty}"))
            }
            E::Utf8Error(col, _) => StoreError::Corrupt(format!("column {col}: invalid UTF-8")),
            // The remaining variants are programming errors (wrong parameter count, bad column
            // index) whose messages hold no SQL.
            other => StoreError::Sqlite(other.to_string()),
        }
    }
}

/// SQLite's fixed description of a result code (e.g. "database is locked"), with the code.
fn describe(err: &ffi::Error) -> String {
    format!(
        "{} (code {})",
        ffi::code_to_str(err.extended_code),
        err.extended_code
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_text_never_reaches_the_message() {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory db");
        let e = conn
            .execute("SELECT secret_column FROM nowhere_table", [])
            .expect_err("table does not exist");
        let msg = StoreError::from(e).to_string();
        assert!(!msg.contains("nowhere_table"), "{msg}");
        assert!(!msg.contains("SELECT"), "{msg}");
    }
}
