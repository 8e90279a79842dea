//! One task per session owns its [`Room`] and the channels to everyone in it. Connections send
//! it [`RoomCommand`]s; it answers with [`RoomEvent`]s. The room never waits on a participant:
//! one whose queue is full is dropped as too slow, so one stuck browser cannot stall a session.
//! Every permission is decided here, through `hearth_core::permissions`.

mod actions;
mod audience;
mod commands;
mod recording;
mod speakers;

pub use actions::HostAction;
pub use commands::{
    JoinOutcome, JoinRequest, Joined, Occupancy, PARTICIPANT_QUEUE, Refusal, RoomCommand,
    RoomEvent, RoomSetup,
};

use crate::metrics::{RoomShare, RoomTotals};
use crate::recordings::Recordings;
use crate::sessions::{derive_invite_key, now_ms, role_name};
use hearth_core::{Action, JoinError, Room, SpeakerDetector, allowed, hears_about};
use hearth_media::PublishedTrack;
use hearth_proto::{
    CHAT_HISTORY, ChatMessage, ErrorCode, MAX_CHAT_CHARS, MediaKind, ParticipantId, Role,
    ServerMessage, TrackId, TrackInfo, TrackSource,
};
use hearth_store::Store;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

struct Member {
    events: mpsc::Sender<RoomEvent>,
    credential_hash: String,
    invite_hash: Option<String>,
}

struct RoomTask {
    room: Room,
    store: Arc<Store>,
    members: HashMap<ParticipantId, Member>,
    /// People in the waiting room, with what is needed to let them in later.
    pending: HashMap<ParticipantId, JoinRequest>,
    published: HashMap<TrackId, Arc<PublishedTrack>>,
    chat: VecDeque<ChatMessage>,
    /// Learned from the last host to join; lets the room show hosts the invite link. Memory only.
    host_key: Option<String>,
    invite_generation: u32,
    /// Base URL for links, from the last host or co-host to join.
    base_url: Option<String>,
    ended: bool,
    recordings: Arc<Recordings>,
    /// This room's own inbox, weakly: a recorder finishing on its thread reports here.
    commands: mpsc::WeakSender<RoomCommand>,
    recording: Option<recording::ActiveRecording>,
    /// When the last person left, while nobody has come back.
    empty_since: Option<std::time::Instant>,
    /// Who speaks, from the levels of the microphones forwarded here.
    speakers: SpeakerDetector,
    /// The audience count last sent (stage sessions), so an unchanged count is not sent again.
    audience_told: Option<u32>,
    /// The server's totals, for the count of participants removed as too slow.
    totals: Arc<RoomTotals>,
}

/// Runs the room until every sender of commands is gone.
pub async fn run(setup: RoomSetup, mut commands: mpsc::Receiver<RoomCommand>) {
    let session_id = setup.info.id.clone();
    let chat = match setup.store.chat_history(&session_id, CHAT_HISTORY) {
        Ok(history) => history
            .into_iter()
            .map(|m| ChatMessage {
                id: m.id,
                from: m.from,
                name: m.name,
                text: m.text,
                at_ms: m.at_ms,
            })
            .collect(),
        Err(e) => {
            tracing::error!(%session_id, error = %e, "cannot load chat history");
            VecDeque::new()
        }
    };
    let mut task = RoomTask {
        room: Room::new(setup.info, setup.settings),
        store: setup.store,
        members: HashMap::new(),
        pending: HashMap::new(),
        published: HashMap::new(),
        chat,
        host_key: None,
        invite_generation: setup.invite_generation,
        base_url: None,
        ended: false,
        recordings: setup.recordings,
        commands: setup.commands,
        recording: None,
        empty_since: None,
        speakers: SpeakerDetector::new(),
        audience_told: None,
        totals: Arc::clone(&setup.totals),
    };
    // Measured after every command rather than at each join, leave and track change: those
    // happen in many places (removals, role changes, settings), and two lengths are cheap.
    let mut share = RoomShare::new(setup.totals);
    let mut speaker_tick = tokio::time::interval(speakers::SPEAKER_TICK);
    speaker_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut audience_tick = tokio::time::interval(audience::AUDIENCE_TICK);
    audience_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                task.handle(command);
                share.set(task.room.len(), task.room.track_count());
            }
            _ = speaker_tick.tick() => task.detect_speakers(std::time::Instant::now()),
            _ = audience_tick.tick() => task.announce_audience(),
        }
    }
    // The server is going away: a recording still running is finished before the task ends.
    if let Some(thread) = task.stop_recording() {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    tracing::debug!(%session_id, "room task ended");
}

/// Asks a room task for its occupancy.
pub async fn occupancy(room: &mpsc::Sender<RoomCommand>) -> Option<Occupancy> {
    let (reply, rx) = oneshot::channel();
    room.send(RoomCommand::Occupancy { reply }).await.ok()?;
    rx.await.ok()
}

fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

impl RoomTask {
    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join { request, reply } => {
                let id = request.id.clone();
                let outcome = self.join(request);
                let entered = matches!(outcome, Some(JoinOutcome::Joined(_)));
                if let Some(outcome) = outcome
                    && reply.send(outcome).is_err()
                {
                    // The connection gave up while the room was deciding.
                    self.leave(&id);
                    return;
                }
                if entered {
                    self.subscribe_existing(&id);
                }
            }
            RoomCommand::Leave { id } => self.leave(&id),
            RoomCommand::Resync { id, reply } => {
                let role = self.room.participant(&id).map(|p| p.role);
                let joined = role
                    .filter(|_| self.members.contains_key(&id))
                    .map(|role| self.describe_to(&id, role));
                let _ = reply.send(joined);
            }
            RoomCommand::Mute { id, kind, muted } => self.self_mute(&id, kind, muted),
            RoomCommand::RaiseHand { id, raised, reply } => {
                let _ = reply.send(self.raise_hand(&id, raised));
            }
            RoomCommand::Chat { id, text, reply } => {
                let _ = reply.send(self.chat(&id, &text));
            }
            RoomCommand::MayPublish { id, reply } => {
                let _ = reply.send(self.room.may_publish(&id));
            }
            RoomCommand::Act {
                actor,
                action,
                reply,
            } => {
                let _ = reply.send(self.act(&actor, action));
            }
            RoomCommand::Record { start, reply } => {
                let result = if start {
                    self.start_recording().map(Some)
                } else {
                    self.stop_recording_in_background();
                    Ok(None)
                };
                let _ = reply.send(result);
            }
            RoomCommand::RecordingEnded { id, error } => self.recording_ended(&id, error),
            RoomCommand::StopRecordingIfEmpty { id } => self.stop_recording_if_empty(&id),
            RoomCommand::FinishRecording { reply } => {
                let _ = reply.send(self.stop_recording());
            }
            RoomCommand::TrackPublished { track } => self.track_published(track),
            RoomCommand::TrackEnded { id } => self.track_ended(&id),
            RoomCommand::Occupancy { reply } => {
                let _ = reply.send(Occupancy {
                    participants: self.room.len(),
                    tracks: self.room.track_count(),
                    waiting: self.room.waiting().len(),
                });
            }
        }
    }

    fn session_id(&self) -> &hearth_proto::SessionId {
        &self.room.info().id
    }

    fn invite_url(&self) -> Option<String> {
        let key = derive_invite_key(self.host_key.as_deref()?, self.invite_generation);
        let base = self.base_url.as_deref()?;
        Some(format!("{base}/s/{}?i={key}", self.session_id()))
    }

    /// Handles a join; `None` when the outcome was already delivered another way.
    fn join(&mut self, request: JoinRequest) -> Option<JoinOutcome> {
        if self.ended {
            return Some(JoinOutcome::Refused(refusal(
                ErrorCode::SessionEnded,
                "this session has ended",
            )));
        }
        // A personal invite minted by a host is a re-invitation: it lets a removed person back
        // in. The shared invite link does not.
        let reinvited = request.invite_hash.is_some();
        match self
            .store
            .is_banned(self.session_id(), &request.credential_hash)
        {
            Ok(false) => {}
            Ok(true) if reinvited => {}
            Ok(true) => {
                return Some(JoinOutcome::Refused(refusal(
                    ErrorCode::Removed,
                    "a host removed you from this session",
                )));
            }
            Err(e) => {
                tracing::error!(session_id = %self.session_id(), error = %e, "ban check failed");
                return Some(JoinOutcome::Refused(refusal(
                    ErrorCode::Internal,
                    "internal error",
                )));
            }
        }
        if let Err(e) = self.room.can_enter(request.role) {
            return Some(JoinOutcome::Refused(join_refusal(&e)));
        }
        if request.role == Role::Host {
            self.host_key.clone_from(&request.host_key);
        }
        if matches!(request.role, Role::Host | Role::Cohost) {
            self.base_url = Some(request.base_url.clone());
        }
        if self.room.needs_admission(request.role) {
            if let Err(e) = self.room.add_waiting(request.id.clone(), &request.name) {
                return Some(JoinOutcome::Refused(join_refusal(&e)));
            }
            tracing::info!(session_id = %self.session_id(), participant_id = %request.id, "waiting for admission");
            self.pending.insert(request.id.clone(), request);
            self.waiting_changed();
            return Some(JoinOutcome::Waiting(self.room.info().clone()));
        }
        Some(match self.enter(request) {
            Ok((joined, _)) => JoinOutcome::Joined(joined),
            Err(r) => JoinOutcome::Refused(r),
        })
    }

    /// Puts someone in the room proper. Returns what to tell them and their event queue.
    fn enter(
        &mut self,
        request: JoinRequest,
    ) -> Result<(Box<Joined>, mpsc::Sender<RoomEvent>), Refusal> {
        let JoinRequest {
            id,
            name,
            role,
            credential_hash,
            invite_hash,
            events,
            ..
        } = request;
        let info = self
            .room
            .join(id.clone(), &name, role)
            .map_err(|e| join_refusal(&e))?;
        if let Err(e) = self.store.record_join(
            self.session_id(),
            &id,
            &info.name,
            role_name(role),
            now_ms(),
        ) {
            tracing::warn!(session_id = %self.session_id(), error = %e, "cannot record join");
        }
        let joined = self.describe_to(&id, role);

        tracing::info!(session_id = %self.session_id(), participant_id = %id, ?role, "joined");
        // Before they are a member: the newcomer's own arrival is in `joined`.
        self.tell_about(&id, &[role], || ServerMessage::ParticipantJoined {
            participant: info.clone(),
        });
        self.members.insert(
            id.clone(),
            Member {
                events: events.clone(),
                credential_hash,
                invite_hash,
            },
        );
        self.record_join(&id);
        Ok((joined, events))
    }

    /// The room as `joined` tells it to participant `id`, who has `role`.
    fn describe_to(&self, id: &ParticipantId, role: Role) -> Box<Joined> {
        let runs = matches!(role, Role::Host | Role::Cohost);
        let shape = self.room.settings().shape;
        let mut participants = self.room.participants_except(id);
        participants.retain(|p| hears_about(role, p.role, shape));
        Box::new(Joined {
            role,
            session: self.room.info().clone(),
            participants,
            audience: self.audience_count(),
            tracks: self.room.tracks_except(id),
            settings: self.room.settings(),
            chat: self.chat.iter().cloned().collect(),
            invite_url: if runs { self.invite_url() } else { None },
            waiting: if runs {
                self.room.waiting().to_vec()
            } else {
                Vec::new()
            },
            recording: self.recording_status(),
        })
    }

    /// Starts forwarding everything already published to a participant who just entered. Sent
    /// after they were told they are in (`joined` or `Admitted`), so the connection sees the
    /// tracks after it has opened its media.
    fn subscribe_existing(&mut self, id: &ParticipantId) {
        let existing: Vec<Arc<PublishedTrack>> = self
            .published
            .values()
            .filter(|t| t.participant_id() != id)
            .cloned()
            .collect();
        for track in existing {
            self.send(id, RoomEvent::Subscribe(track));
        }
        self.greet_speakers(id);
    }

    fn leave(&mut self, id: &ParticipantId) {
        if self.pending.remove(id).is_some() {
            self.room.take_waiting(id);
            self.waiting_changed();
            return;
        }
        self.members.remove(id);
        let role = self.room.participant(id).map(|p| p.role);
        let (Some(role), Some(tracks)) = (role, self.room.leave(id)) else {
            return;
        };
        if let Err(e) = self.store.record_leave(id, now_ms()) {
            tracing::warn!(session_id = %self.session_id(), error = %e, "cannot record leave");
        }
        self.record_leave(id);
        self.forget_speaker(id);
        if self.members.is_empty() {
            self.schedule_empty_check();
        }
        tracing::info!(session_id = %self.session_id(), participant_id = %id, "left");
        self.unpublish(&tracks);
        let left = id.clone();
        self.tell_about(id, &[role], || ServerMessage::ParticipantLeft {
            participant_id: left.clone(),
        });
    }

    /// Tells everyone these tracks are gone and stops forwarding them.
    fn unpublish(&mut self, tracks: &[TrackInfo]) {
        for track in tracks {
            self.published.remove(&track.id);
            self.unrecord_track(&track.id);
            self.broadcast(Some(&track.participant_id), || {
                RoomEvent::Message(ServerMessage::TrackUnpublished {
                    track_id: track.id.clone(),
                    participant_id: track.participant_id.clone(),
                })
            });
            self.broadcast(Some(&track.participant_id), || {
                RoomEvent::Unsubscribe(track.id.clone())
            });
        }
    }

    /// Pauses or resumes forwarding of someone's microphone or camera.
    fn pause(&self, id: &ParticipantId, kind: MediaKind, paused: bool) {
        let source = match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        };
        for track in self.published.values() {
            if track.participant_id() == id && track.info().source == source {
                track.set_paused(paused);
            }
        }
    }

    fn self_mute(&mut self, id: &ParticipantId, kind: MediaKind, muted: bool) {
        if let Some(info) = self.room.set_muted(id, kind, muted) {
            self.pause(id, kind, muted);
            self.tell_about(id, &[info.role], || ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            });
        }
    }

    fn raise_hand(&mut self, id: &ParticipantId, raised: bool) -> Result<(), Refusal> {
        let role = self
            .room
            .participant(id)
            .map(|p| p.role)
            .ok_or_else(|| refusal(ErrorCode::NotJoined, "not in the room"))?;
        if raised && !allowed(role, self.room.settings().shape, Action::RaiseHand) {
            return Err(refusal(
                ErrorCode::Forbidden,
                "only attendees of a stage session raise a hand",
            ));
        }
        if let Some(info) = self.room.set_hand(id, raised) {
            self.tell_about(id, &[info.role], || ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            });
        }
        Ok(())
    }

    fn chat(&mut self, id: &ParticipantId, text: &str) -> Result<(), Refusal> {
        let name = self
            .room
            .participant(id)
            .map(|p| p.name.clone())
            .ok_or_else(|| refusal(ErrorCode::NotJoined, "not in the room"))?;
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_CHAT_CHARS {
            return Err(refusal(
                ErrorCode::BadMessage,
                format!("a chat message is 1 to {MAX_CHAT_CHARS} characters"),
            ));
        }
        let message = ChatMessage {
            id: uuid_like(),
            from: id.clone(),
            name,
            text: text.to_owned(),
            at_ms: now_ms(),
        };
        if let Err(e) = self.store.add_chat(&hearth_store::ChatRecord {
            id: message.id.clone(),
            session: self.session_id().clone(),
            from: message.from.clone(),
            name: message.name.clone(),
            text: message.text.clone(),
            at_ms: message.at_ms,
        }) {
            // Chat still reaches the people in the room; only history is affected.
            tracing::error!(session_id = %self.session_id(), error = %e, "cannot store chat message");
        }
        if self.chat.len() >= CHAT_HISTORY {
            self.chat.pop_front();
        }
        self.chat.push_back(message.clone());
        self.record_chat(&message);
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::Chat {
                message: message.clone(),
            })
        });
        Ok(())
    }

    fn track_published(&mut self, track: Arc<PublishedTrack>) {
        let info = track.info().clone();
        if !self.room.add_track(info.clone()) {
            tracing::info!(session_id = %self.session_id(), track_id = %info.id, "track not forwarded: its publisher may not publish");
            return;
        }
        // A muted microphone or camera stays silent when its track (re)appears.
        if let Some(p) = self.room.participant(&info.participant_id) {
            let muted = match info.source {
                TrackSource::Microphone => p.audio_muted,
                TrackSource::Camera => p.video_muted,
                TrackSource::Screen => false,
            };
            track.set_paused(muted);
        }
        self.published.insert(info.id.clone(), Arc::clone(&track));
        self.record_track(&track);
        let owner = info.participant_id.clone();
        self.broadcast(Some(&owner), || {
            RoomEvent::Message(ServerMessage::TrackPublished {
                track: info.clone(),
            })
        });
        self.broadcast(Some(&owner), || RoomEvent::Subscribe(Arc::clone(&track)));
    }

    fn track_ended(&mut self, id: &TrackId) {
        if let Some(info) = self.room.remove_track(id) {
            self.unpublish(&[info]);
        }
    }

    /// Tells hosts and co-hosts who is waiting.
    fn waiting_changed(&mut self) {
        let waiting = self.room.waiting().to_vec();
        self.broadcast_to_runners(|| ServerMessage::WaitingUpdated {
            waiting: waiting.clone(),
        });
    }

    /// Hosts and co-hosts present.
    fn runner_ids(&self) -> Vec<ParticipantId> {
        self.members
            .keys()
            .filter(|id| {
                self.room
                    .participant(id)
                    .is_some_and(|p| matches!(p.role, Role::Host | Role::Cohost))
            })
            .cloned()
            .collect()
    }

    fn broadcast_to_runners(&mut self, message: impl Fn() -> ServerMessage) {
        for id in self.runner_ids() {
            self.send(&id, RoomEvent::Message(message()));
        }
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
        let Some(member) = self.members.get(id) else {
            return;
        };
        match member.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Dropping the sender tells the connection (its receiver closes); it reports
                // `too_slow` to the client and leaves.
                tracing::info!(session_id = %self.session_id(), participant_id = %id, "participant too slow; removing");
                self.totals.removed_too_slow();
                self.leave(id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.leave(id),
        }
    }
}

fn join_refusal(e: &JoinError) -> Refusal {
    match e {
        JoinError::InvalidName => refusal(
            ErrorCode::BadMessage,
            format!(
                "name must be 1 to {} characters",
                hearth_proto::MAX_NAME_CHARS
            ),
        ),
        JoinError::Locked => refusal(ErrorCode::SessionLocked, "the host has locked this session"),
        JoinError::Full => refusal(ErrorCode::SessionFull, "this session is full"),
    }
}

/// A random id for chat messages.
fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
