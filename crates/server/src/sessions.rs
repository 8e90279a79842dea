//! The registry of sessions: live ones have a room task; all are in the store. Links are
//! checked here, the one place a secret is compared.
//!
//! Secrets: the host key is 128 random bits. The invite key is derived from the host key and a
//! rotation counter (a one-way hash), so the server stores only hashes yet can hand a host the
//! current invite link whenever the host is connected, even after a restart. Knowing an invite
//! key reveals nothing about the host key.

use crate::metrics::RoomTotals;
use crate::room::{self, RoomCommand};
use hearth_proto::{ErrorCode, Role, SessionId, SessionInfo, SessionSettings, Shape};
use hearth_store::{InviteRecord, NewSession, SessionRecord, Store, secrets};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Commands queued for one room before senders wait. Commands are small and the room task does
/// no network I/O, so this only fills if the room task is stuck.
const ROOM_QUEUE: usize = 1024;

/// The current time in milliseconds since the Unix epoch, for records.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The invite key for `host_key` at rotation `generation`.
pub fn derive_invite_key(host_key: &str, generation: u32) -> String {
    let digest = secrets::hash_secret(&format!("hearth-invite:{generation}:{host_key}"));
    digest[..32].to_owned()
}

/// A live session as seen from outside its room task.
#[derive(Debug)]
pub struct SessionHandle {
    /// Id and title.
    pub info: SessionInfo,
    /// The room task's inbox.
    pub(crate) room: mpsc::Sender<RoomCommand>,
}

/// What a link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role it joins with.
    pub role: Role,
    /// For a minted invite: its hash, so removing its holder can revoke it.
    pub invite_hash: Option<String>,
    /// For the host link: the plaintext host key, so the room can derive the invite link.
    pub host_key: Option<String>,
}

/// Why a link does not open a session. Maps to 404 or 410 over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// No such session (404).
    UnknownSession,
    /// No key, or a key that was never valid (404).
    UnknownKey,
    /// A key that was valid once: rotated, revoked or expired (410).
    DeadKey,
    /// The session has ended (410).
    Ended,
}

impl LinkError {
    /// The stable code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::UnknownSession => ErrorCode::UnknownSession,
            Self::UnknownKey | Self::DeadKey => ErrorCode::InvalidLink,
            Self::Ended => ErrorCode::SessionEnded,
        }
    }

    /// Whether the link once worked (HTTP 410 rather than 404).
    pub fn is_gone(self) -> bool {
        matches!(self, Self::DeadKey | Self::Ended)
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownSession => "this session does not exist",
            Self::UnknownKey => "this link is not valid for this session",
            Self::DeadKey => "this link is no longer valid; ask the host for a new one",
            Self::Ended => "this session has ended",
        }
    }
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSessionRequest {
    /// Title (already cleaned).
    pub title: String,
    /// Room or stage.
    pub shape: Shape,
    /// Waiting room on?
    pub waiting_room: bool,
    /// Participant limit.
    pub max_participants: u32,
}

/// A created session's secrets, returned once.
#[derive(Debug, Clone)]
pub struct CreatedKeys {
    /// The session.
    pub id: SessionId,
    /// Host key (in the host link).
    pub host_key: String,
    /// Invite key (in the invite link).
    pub invite_key: String,
}

/// All sessions of this server.
#[derive(Debug)]
pub struct Sessions {
    store: Arc<Store>,
    recordings: Arc<crate::recordings::Recordings>,
    /// Live sessions. A std mutex: lookups and inserts only, never held across an await.
    live: Mutex<HashMap<SessionId, Arc<SessionHandle>>>,
    /// People and tracks over every room, kept up by the room tasks for `/metrics`.
    totals: Arc<RoomTotals>,
}

impl Sessions {
    /// The registry over `store`, with every session that had not ended brought back to life
    /// (its links work again; media re-joins).
    pub fn load(
        store: Arc<Store>,
        recordings: Arc<crate::recordings::Recordings>,
    ) -> Result<Self, hearth_store::StoreError> {
        let sessions = Self {
            store,
            recordings,
            live: Mutex::new(HashMap::new()),
            totals: Arc::default(),
        };
        for record in sessions.store.live_sessions()? {
            tracing::info!(session_id = %record.id, "session restored");
            sessions.start(&record);
        }
        Ok(sessions)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// People and tracks over every room.
    pub(crate) fn totals(&self) -> &RoomTotals {
        &self.totals
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<SessionHandle>>> {
        // Only inserts, removals and lookups happen under this lock; a poisoned map is still
        // consistent.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, record: &SessionRecord) -> Arc<SessionHandle> {
        let info = SessionInfo {
            id: record.id.clone(),
            title: record.title.clone(),
        };
        let settings = settings_from_store(&record.settings);
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        tokio::spawn(room::run(
            room::RoomSetup {
                info: info.clone(),
                settings,
                invite_generation: record.settings.invite_generation,
                store: Arc::clone(&self.store),
                totals: Arc::clone(&self.totals),
                recordings: Arc::clone(&self.recordings),
                commands: tx.downgrade(),
            },
            rx,
        ));
        let handle = Arc::new(SessionHandle {
            info: info.clone(),
            room: tx,
        });
        self.lock().insert(info.id, Arc::clone(&handle));
        handle
    }

    /// Creates a session and starts its room task.
    pub fn create(
        &self,
        request: NewSessionRequest,
    ) -> Result<CreatedKeys, hearth_store::StoreError> {
        let id = SessionId::random();
        let host_key = secrets::new_secret();
        let invite_key = derive_invite_key(&host_key, 0);
        let settings = hearth_store::SessionSettings {
            shape: match request.shape {
                Shape::Room => "room".into(),
                Shape::Stage => "stage".into(),
            },
            locked: false,
            waiting_room: request.waiting_room,
            max_participants: Some(request.max_participants),
            invite_generation: 0,
        };
        let record = NewSession {
            id: id.clone(),
            title: request.title,
            settings,
            host_hash: secrets::hash_secret(&host_key),
            invite_hash: secrets::hash_secret(&invite_key),
            created_ms: now_ms(),
        };
        self.store.create_session(&record)?;
        let stored = self.store.session(&id)?.ok_or_else(|| {
            hearth_store::StoreError::Sqlite("session vanished after insert".into())
        })?;
        self.start(&stored);
        tracing::info!(session_id = %id, "session created");
        Ok(CreatedKeys {
            id,
            host_key,
            invite_key,
        })
    }

    /// The live session with `id`, if any.
    pub fn get(&self, id: &SessionId) -> Option<Arc<SessionHandle>> {
        self.lock().get(id).cloned()
    }

    /// Forgets a live session (it ended); its record stays, marked ended.
    pub(crate) fn remove(&self, id: &SessionId) {
        self.lock().remove(id);
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Checks a link: the session must be live and one key must open it.
    pub fn authorize(
        &self,
        id: &SessionId,
        host_key: Option<&str>,
        invite_key: Option<&str>,
    ) -> Result<(Arc<SessionHandle>, Grant), LinkError> {
        let record = match self.store.session(id) {
            Ok(Some(record)) => record,
            Ok(None) => return Err(LinkError::UnknownSession),
            Err(e) => {
                tracing::error!(session_id = %id, error = %e, "store read failed");
                return Err(LinkError::UnknownSession);
            }
        };
        if record.ended_ms.is_some() {
            return Err(LinkError::Ended);
        }
        let handle = self.get(id).ok_or(LinkError::UnknownSession)?;
        if let Some(key) = host_key {
            if secrets::verify_secret(&record.host_hash, key) {
                return Ok((
                    handle,
                    Grant {
                        role: Role::Host,
                        invite_hash: None,
                        host_key: Some(key.to_owned()),
                    },
                ));
            }
            return Err(LinkError::UnknownKey);
        }
        let Some(key) = invite_key else {
            return Err(LinkError::UnknownKey);
        };
        if secrets::verify_secret(&record.invite_hash, key) {
            return Ok((
                handle,
                Grant {
                    role: Role::Attendee,
                    invite_hash: None,
                    host_key: None,
                },
            ));
        }
        // A minted invite, or an old (rotated) invite key.
        let hash = secrets::hash_secret(key);
        match self.store.invite_by_hash(&hash) {
            Ok(Some(invite)) if invite.session == *id => {
                let expired = invite.expires_ms.is_some_and(|at| at <= now_ms());
                if invite.revoked || expired {
                    return Err(LinkError::DeadKey);
                }
                let role = match invite.role.as_str() {
                    "cohost" => Role::Cohost,
                    "speaker" => Role::Speaker,
                    _ => Role::Attendee,
                };
                Ok((
                    handle,
                    Grant {
                        role,
                        invite_hash: Some(hash),
                        host_key: None,
                    },
                ))
            }
            Ok(_) => Err(LinkError::UnknownKey),
            Err(e) => {
                tracing::error!(session_id = %id, error = %e, "store read failed");
                Err(LinkError::UnknownKey)
            }
        }
    }

    /// Mints an extra invite link key with `role` valid until `expires_ms`.
    pub fn mint_invite(
        &self,
        id: &SessionId,
        role: Role,
        expires_ms: Option<i64>,
    ) -> Result<String, hearth_store::StoreError> {
        let key = secrets::new_secret();
        self.store.create_invite(&InviteRecord {
            token_hash: secrets::hash_secret(&key),
            session: id.clone(),
            role: role_name(role).into(),
            expires_ms,
            created_ms: now_ms(),
            revoked: false,
        })?;
        Ok(key)
    }

    /// Whether `key` is the host key of session `id` (for the HTTP API).
    pub fn is_host_key(&self, id: &SessionId, key: &str) -> bool {
        matches!(self.store.session(id), Ok(Some(r)) if r.ended_ms.is_none() && secrets::verify_secret(&r.host_hash, key))
    }

    /// Recording, server-wide.
    pub fn recordings(&self) -> &Arc<crate::recordings::Recordings> {
        &self.recordings
    }

    /// Stops every recording in progress and waits until their files are finished: the last
    /// step of a graceful shutdown, so a restart finds them complete rather than to repair.
    pub async fn finish_recordings(&self) {
        let rooms: Vec<mpsc::Sender<RoomCommand>> =
            self.lock().values().map(|h| h.room.clone()).collect();
        for room in rooms {
            let (reply, answer) = tokio::sync::oneshot::channel();
            if room
                .send(RoomCommand::FinishRecording { reply })
                .await
                .is_err()
            {
                continue;
            }
            if let Ok(Some(thread)) = answer.await {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }

    /// Counts of participants and published tracks in one session (asks its room task).
    pub async fn occupancy(&self, id: &SessionId) -> Option<room::Occupancy> {
        let handle = self.get(id)?;
        room::occupancy(&handle.room).await
    }
}

/// The wire name of a role, as stored.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Cohost => "cohost",
        Role::Speaker => "speaker",
        Role::Attendee => "attendee",
    }
}

/// Settings as the protocol has them, from their stored form.
pub fn settings_from_store(s: &hearth_store::SessionSettings) -> SessionSettings {
    SessionSettings {
        shape: if s.shape == "stage" {
            Shape::Stage
        } else {
            Shape::Room
        },
        locked: s.locked,
        waiting_room: s.waiting_room,
        max_participants: s
            .max_participants
            .unwrap_or(crate::DEFAULT_MAX_PARTICIPANTS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_keys_follow_the_host_key_and_the_rotation() {
        let a = derive_invite_key("host-key-a", 0);
        assert_eq!(a.len(), 32);
        assert_eq!(a, derive_invite_key("host-key-a", 0));
        assert_ne!(a, derive_invite_key("host-key-a", 1));
        assert_ne!(a, derive_invite_key("host-key-b", 0));
    }
}
