//! A temporary directory for tests that need real database files, removed on drop.
//! Hand-rolled so that tests need no extra dependency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Store;

/// A fresh directory under the system temp dir, unique per process, test and call.
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    pub(crate) fn new(label: &str) -> TestDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "hearth-store-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp must not fail a passing test.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store on a real file, with the directory that holds it. Fields drop in order, so the
/// connection closes before the directory is removed.
pub(crate) struct FileStore {
    pub(crate) store: Store,
    _dir: TestDir,
}

impl FileStore {
    pub(crate) fn new(label: &str) -> FileStore {
        let dir = TestDir::new(label);
        let store = Store::open(dir.path()).expect("open store");
        FileStore { store, _dir: dir }
    }
}

impl std::ops::Deref for FileStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}
