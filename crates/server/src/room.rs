//! One task per session owns its [`Room`] and the channels to everyone in it. Connections send
//! it [`RoomCommand`]s; it answers with [`RoomEvent`]s. The room never waits on a participant:
//! a participant whose queue is full is dropped as too slow, so one stuck browser cannot stall
//! a session.

use hearth_core::Room;
use hearth_media::PublishedTrack;
use hearth_proto::{
    MediaKind, ParticipantId, ParticipantInfo, Role, ServerMessage, SessionInfo, TrackId, TrackInfo,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Events queued for one participant before they count as too slow.
pub const PARTICIPANT_QUEUE: usize = 256;

/// What a connection can ask of its room.
#[derive(Debug)]
pub enum RoomCommand {
    /// Enter the room.
    Join {
        id: ParticipantId,
        name: String,
        role: Role,
        events: mpsc::Sender<RoomEvent>,
        reply: oneshot::Sender<Result<Joined, hearth_core::JoinError>>,
    },
    /// Leave (idempotent).
    Leave { id: ParticipantId },
    /// Mute state changed.
    Mute {
        id: ParticipantId,
        kind: MediaKind,
        muted: bool,
    },
    /// A participant's publish connection produced a track.
    TrackPublished { track: Arc<PublishedTrack> },
    /// A published track ended.
    TrackEnded { id: TrackId },
    /// How many people and tracks (for the HTTP API and tests).
    Occupancy { reply: oneshot::Sender<Occupancy> },
}

/// What the room tells a connection.
#[derive(Debug)]
pub enum RoomEvent {
    /// Send this message to the client.
    Message(ServerMessage),
    /// Start forwarding this track to the client.
    Subscribe(Arc<PublishedTrack>),
    /// Stop forwarding this track.
    Unsubscribe(TrackId),
}

/// The answer to a successful join.
#[derive(Debug)]
pub struct Joined {
    /// Session id and title.
    pub session: SessionInfo,
    /// Everyone else already there.
    pub participants: Vec<ParticipantInfo>,
    /// Tracks already published (they follow as `Subscribe` events).
    pub tracks: Vec<TrackInfo>,
}

/// People and tracks in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    /// Participants.
    pub participants: usize,
    /// Published tracks.
    pub tracks: usize,
}

struct RoomTask {
    room: Room,
    members: HashMap<ParticipantId, mpsc::Sender<RoomEvent>>,
    published: HashMap<TrackId, Arc<PublishedTrack>>,
}

/// Runs the room until every sender of commands is gone.
pub async fn run(info: SessionInfo, mut commands: mpsc::Receiver<RoomCommand>) {
    let session_id = info.id.clone();
    let mut task = RoomTask {
        room: Room::new(info),
        members: HashMap::new(),
        published: HashMap::new(),
    };
    while let Some(command) = commands.recv().await {
        task.handle(command);
    }
    tracing::debug!(%session_id, "room task ended");
}

/// Asks a room task for its occupancy.
pub async fn occupancy(room: &mpsc::Sender<RoomCommand>) -> Option<Occupancy> {
    let (reply, rx) = oneshot::channel();
    room.send(RoomCommand::Occupancy { reply }).await.ok()?;
    rx.await.ok()
}

impl RoomTask {
    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                id,
                name,
                role,
                events,
                reply,
            } => self.join(id, &name, role, events, reply),
            RoomCommand::Leave { id } => self.leave(&id),
            RoomCommand::Mute { id, kind, muted } => {
                if let Some(info) = self.room.set_muted(&id, kind, muted) {
                    self.broadcast(Some(&id), || {
                        RoomEvent::Message(ServerMessage::ParticipantUpdated {
                            participant: info.clone(),
                        })
                    });
                }
            }
            RoomCommand::TrackPublished { track } => self.track_published(track),
            RoomCommand::TrackEnded { id } => self.track_ended(&id),
            RoomCommand::Occupancy { reply } => {
                let _ = reply.send(Occupancy {
                    participants: self.room.len(),
                    tracks: self.room.track_count(),
                });
            }
        }
    }

    fn join(
        &mut self,
        id: ParticipantId,
        name: &str,
        role: Role,
        events: mpsc::Sender<RoomEvent>,
        reply: oneshot::Sender<Result<Joined, hearth_core::JoinError>>,
    ) {
        let info = match self.room.join(id.clone(), name, role) {
            Ok(info) => info,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let joined = Joined {
            session: self.room.info().clone(),
            participants: self.room.participants_except(&id),
            tracks: self.room.tracks_except(&id),
        };
        let existing: Vec<Arc<PublishedTrack>> = joined
            .tracks
            .iter()
            .filter_map(|t| self.published.get(&t.id).cloned())
            .collect();
        if reply.send(Ok(joined)).is_err() {
            // The connection gave up while we were deciding.
            self.room.leave(&id);
            return;
        }
        tracing::info!(session_id = %self.room.info().id, participant_id = %id, ?role, "joined");
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::ParticipantJoined {
                participant: info.clone(),
            })
        });
        self.members.insert(id.clone(), events);
        for track in existing {
            self.send(&id, RoomEvent::Subscribe(track));
        }
    }

    fn leave(&mut self, id: &ParticipantId) {
        self.members.remove(id);
        let Some(tracks) = self.room.leave(id) else {
            return;
        };
        tracing::info!(session_id = %self.room.info().id, participant_id = %id, "left");
        for track in &tracks {
            self.published.remove(&track.id);
            self.broadcast(None, || {
                RoomEvent::Message(ServerMessage::TrackUnpublished {
                    track_id: track.id.clone(),
                    participant_id: track.participant_id.clone(),
                })
            });
            self.broadcast(None, || RoomEvent::Unsubscribe(track.id.clone()));
        }
        let left = id.clone();
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::ParticipantLeft {
                participant_id: left.clone(),
            })
        });
    }

    fn track_published(&mut self, track: Arc<PublishedTrack>) {
        let info = track.info().clone();
        if !self.room.add_track(info.clone()) {
            return;
        }
        self.published.insert(info.id.clone(), Arc::clone(&track));
        let owner = info.participant_id.clone();
        self.broadcast(Some(&owner), || {
            RoomEvent::Message(ServerMessage::TrackPublished {
                track: info.clone(),
            })
        });
        self.broadcast(Some(&owner), || RoomEvent::Subscribe(Arc::clone(&track)));
    }

    fn track_ended(&mut self, id: &TrackId) {
        let Some(info) = self.room.remove_track(id) else {
            return;
        };
        self.published.remove(id);
        let owner = info.participant_id.clone();
        self.broadcast(Some(&owner), || {
            RoomEvent::Message(ServerMessage::TrackUnpublished {
                track_id: info.id.clone(),
                participant_id: info.participant_id.clone(),
            })
        });
        self.broadcast(Some(&owner), || RoomEvent::Unsubscribe(info.id.clone()));
    }

    /// Sends to everyone except `except`, dropping anyone too slow to take it.
    fn broadcast(&mut self, except: Option<&ParticipantId>, event: impl Fn() -> RoomEvent) {
        let ids: Vec<ParticipantId> = self
            .members
            .keys()
            .filter(|id| Some(*id) != except)
            .cloned()
            .collect();
        for id in ids {
            self.send(&id, event());
        }
    }

    fn send(&mut self, id: &ParticipantId, event: RoomEvent) {
        let Some(tx) = self.members.get(id) else {
            return;
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Dropping the sender tells the connection (its receiver closes); it reports
                // `too_slow` to the client and leaves.
                tracing::info!(session_id = %self.room.info().id, participant_id = %id, "participant too slow; removing");
                self.leave(id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.leave(id),
        }
    }
}
