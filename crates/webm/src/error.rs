//! The crate's one error type.

use std::fmt;
use std::io;

/// Why writing, reading or repairing a file failed.
#[derive(Debug)]
pub enum WebmError {
    /// The file system refused (including a full disk: see [`WebmError::is_disk_full`]).
    Io(io::Error),
    /// `repair()` cannot make this file whole: its header is torn or it was not written
    /// by this crate. The string says what was wrong.
    NotRepairable(String),
    /// Bad input: an invalid track spec or frame, or a file that does not parse.
    Invalid(String),
}

impl WebmError {
    /// True when the disk (or quota) is full, so a recorder can stop cleanly and say why
    /// instead of retrying. Checks the raw errno too, because older toolchains and some
    /// file systems report ENOSPC without mapping it to `StorageFull`.
    pub fn is_disk_full(&self) -> bool {
        match self {
            WebmError::Io(e) => {
                e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
            }
            _ => false,
        }
    }
}

impl fmt::Display for WebmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebmError::Io(e) => write!(f, "webm i/o error: {e}"),
            WebmError::NotRepairable(why) => write!(f, "webm file cannot be repaired: {why}"),
            WebmError::Invalid(why) => write!(f, "invalid webm input: {why}"),
        }
    }
}

impl std::error::Error for WebmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebmError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WebmError {
    fn from(e: io::Error) -> Self {
        WebmError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_by_kind_or_errno() {
        assert!(WebmError::from(io::Error::from(io::ErrorKind::StorageFull)).is_disk_full());
        assert!(WebmError::from(io::Error::from_raw_os_error(28)).is_disk_full());
        assert!(!WebmError::from(io::Error::from(io::ErrorKind::NotFound)).is_disk_full());
        assert!(!WebmError::Invalid("x".into()).is_disk_full());
    }
}
