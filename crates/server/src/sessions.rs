//! The registry of live sessions. Each session is a room task; this holds the handle to reach it.

use crate::room::{self, RoomCommand};
use hearth_proto::{SessionId, SessionInfo};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Commands queued for one room before senders wait. Commands are small and the room task does
/// no I/O, so this only fills if the room task is stuck.
const ROOM_QUEUE: usize = 1024;

/// A live session as seen from outside its room task.
#[derive(Debug)]
pub struct SessionHandle {
    /// Id and title.
    pub info: SessionInfo,
    /// The secret in the host link. Compared in constant time; never logged.
    host_key: String,
    /// The room task's inbox.
    pub(crate) room: mpsc::Sender<RoomCommand>,
}

impl SessionHandle {
    /// Whether `key` is this session's host key, compared in constant time so response timing
    /// reveals nothing about how much of a guess was right.
    pub fn is_host_key(&self, key: &str) -> bool {
        let (a, b) = (self.host_key.as_bytes(), key.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The host key, to build the host link once at creation.
    pub(crate) fn host_key(&self) -> &str {
        &self.host_key
    }
}

/// All sessions of this server.
#[derive(Debug, Default)]
pub struct Sessions {
    /// A std mutex: lookups and inserts only, never held across an await.
    by_id: Mutex<HashMap<SessionId, Arc<SessionHandle>>>,
}

fn random_key() -> String {
    // 128 random bits, hex-encoded.
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<SessionHandle>>> {
        // Only inserts and lookups happen under this lock; a poisoned map is still consistent.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session with `title` and starts its room task.
    pub fn create(&self, title: String) -> Arc<SessionHandle> {
        let info = SessionInfo {
            id: SessionId::random(),
            title,
        };
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        tokio::spawn(room::run(info.clone(), rx));
        let handle = Arc::new(SessionHandle {
            info: info.clone(),
            host_key: random_key(),
            room: tx,
        });
        self.lock().insert(info.id.clone(), Arc::clone(&handle));
        tracing::info!(session_id = %info.id, "session created");
        handle
    }

    /// The session with `id`, if it exists.
    pub fn get(&self, id: &SessionId) -> Option<Arc<SessionHandle>> {
        self.lock().get(id).cloned()
    }

    /// How many sessions exist.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Counts of participants and published tracks in one session (asks its room task).
    pub async fn occupancy(&self, id: &SessionId) -> Option<room::Occupancy> {
        let handle = self.get(id)?;
        room::occupancy(&handle.room).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn host_key_is_long_random_and_checked_exactly() {
        let sessions = Sessions::default();
        let a = sessions.create("a".into());
        let b = sessions.create("b".into());
        assert_eq!(a.host_key().len(), 32);
        assert_ne!(a.host_key(), b.host_key());
        assert!(a.is_host_key(&a.host_key().to_owned()));
        assert!(!a.is_host_key(b.host_key()));
        assert!(!a.is_host_key(""));
        assert!(!a.is_host_key(&a.host_key()[..31]));
    }
}
