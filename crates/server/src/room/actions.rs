//! Host actions: each checks the permission (`hearth_core::permissions`), changes the room, and
//! tells the people concerned.

use super::{Refusal, RoomEvent, RoomTask, refusal};
use crate::sessions::{derive_invite_key, now_ms};
use hearth_core::{Action, allowed, allowed_on};
use hearth_proto::{
    ErrorCode, MediaKind, ParticipantId, Role, ServerMessage, SettingsChange, Shape,
};
use hearth_store::{InviteRecord, secrets};

/// What hosts (and co-hosts) can do to a session or to someone in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// Turn someone's device off.
    Mute {
        target: ParticipantId,
        kind: MediaKind,
    },
    /// Remove someone.
    Remove { target: ParticipantId },
    /// Change someone's role.
    SetRole { target: ParticipantId, role: Role },
    /// Change settings.
    UpdateSettings(SettingsChange),
    /// New invite link.
    RotateInvite,
    /// Let someone in from the waiting room.
    Admit { target: ParticipantId },
    /// Turn someone away from the waiting room.
    Decline { target: ParticipantId },
    /// End the session.
    End,
    /// Start recording.
    StartRecording,
    /// Stop recording.
    StopRecording,
}

impl HostAction {
    /// The permission this action needs.
    fn action(&self) -> Action {
        match self {
            Self::Mute { .. } => Action::Mute,
            Self::Remove { .. } => Action::Remove,
            Self::SetRole { role, .. } => Action::SetRole(*role),
            Self::UpdateSettings(_) => Action::UpdateSettings,
            Self::RotateInvite => Action::RotateInvite,
            Self::Admit { .. } | Self::Decline { .. } => Action::Admit,
            Self::End => Action::End,
            Self::StartRecording | Self::StopRecording => Action::Record,
        }
    }

    /// The participant acted on, for actions that have one in the room.
    fn target(&self) -> Option<&ParticipantId> {
        match self {
            Self::Mute { target, .. } | Self::Remove { target } | Self::SetRole { target, .. } => {
                Some(target)
            }
            _ => None,
        }
    }
}

impl RoomTask {
    /// Checks and performs a host action by `actor`.
    pub(super) fn act(&mut self, actor: &ParticipantId, action: HostAction) -> Result<(), Refusal> {
        let actor_role = self
            .room
            .participant(actor)
            .map(|p| p.role)
            .ok_or_else(|| refusal(ErrorCode::NotJoined, "not in the room"))?;
        let shape = self.room.settings().shape;
        let permitted = match action.target() {
            Some(target) => {
                let target_role =
                    self.room
                        .participant(target)
                        .map(|p| p.role)
                        .ok_or_else(|| {
                            refusal(
                                ErrorCode::UnknownParticipant,
                                "no such participant in this session",
                            )
                        })?;
                allowed_on(actor_role, target_role, shape, action.action())
            }
            None => allowed(actor_role, shape, action.action()),
        };
        if !permitted {
            return Err(refusal(
                ErrorCode::Forbidden,
                format!(
                    "a {} cannot do that",
                    crate::sessions::role_name(actor_role)
                ),
            ));
        }
        tracing::info!(session_id = %self.session_id(), participant_id = %actor, ?action, "host action");
        match action {
            HostAction::Mute { target, kind } => self.remote_mute(&target, kind),
            HostAction::Remove { target } => self.remove(&target),
            HostAction::SetRole { target, role } => self.set_role(&target, role),
            HostAction::UpdateSettings(change) => self.update_settings(change),
            HostAction::RotateInvite => self.rotate_invite(),
            HostAction::Admit { target } => self.admit(&target),
            HostAction::Decline { target } => self.decline(&target),
            HostAction::End => self.end(),
            HostAction::StartRecording => self.start_recording().map(|_| ()),
            HostAction::StopRecording => {
                self.stop_recording_in_background();
                Ok(())
            }
        }
    }

    fn remote_mute(&mut self, target: &ParticipantId, kind: MediaKind) -> Result<(), Refusal> {
        // Enforced at the SFU whether or not the client obeys; only the person can unmute.
        self.pause(target, kind, true);
        self.send(
            target,
            RoomEvent::Message(ServerMessage::MutedByHost { kind }),
        );
        if let Some(info) = self.room.set_muted(target, kind, true) {
            self.tell_about(target, &[info.role], || ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            });
        }
        Ok(())
    }

    fn remove(&mut self, target: &ParticipantId) -> Result<(), Refusal> {
        if let Some(member) = self.members.get(target) {
            let session = self.session_id().clone();
            if let Err(e) = self.store.ban(&session, &member.credential_hash, now_ms()) {
                tracing::error!(session_id = %session, error = %e, "cannot record removal");
                return Err(refusal(ErrorCode::Internal, "internal error"));
            }
            if let Some(invite) = member.invite_hash.clone()
                && let Err(e) = self.store.revoke_invite(&invite)
            {
                tracing::error!(session_id = %session, error = %e, "cannot revoke invite");
            }
        }
        self.send(
            target,
            RoomEvent::Close(refusal(
                ErrorCode::Removed,
                "a host removed you from this session",
            )),
        );
        self.leave(target);
        Ok(())
    }

    fn set_role(&mut self, target: &ParticipantId, role: Role) -> Result<(), Refusal> {
        let Some(before) = self.room.participant(target).map(|p| p.role) else {
            return Ok(()); // gone meanwhile
        };
        let Some((info, gone)) = self.room.set_role(target, role) else {
            return Ok(()); // already had it
        };
        self.unpublish(&gone);
        // Both old and new role: an attendee brought on stage appears to the audience, and a
        // speaker sent back to it is seen going (the client then forgets them).
        self.tell_about(target, &[before, role], || {
            ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            }
        });
        self.introduce_hidden(target, before);
        // A new co-host learns what co-hosts see.
        if role == Role::Cohost {
            if let Some(url) = self.invite_url() {
                self.send(
                    target,
                    RoomEvent::Message(ServerMessage::InviteRotated { invite_url: url }),
                );
            }
            let waiting = self.room.waiting().to_vec();
            self.send(
                target,
                RoomEvent::Message(ServerMessage::WaitingUpdated { waiting }),
            );
        }
        Ok(())
    }

    fn update_settings(&mut self, change: SettingsChange) -> Result<(), Refusal> {
        let (settings, gone) = self.room.update_settings(change);
        self.save_settings()?;
        self.unpublish(&gone);
        // The settings first: a client that learns the session is a room now expects to hear
        // about everyone, and the updates that follow bring it the audience it did not know.
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::SettingsUpdated { settings })
        });
        if settings.shape == Shape::Room {
            // Hands were lowered by the switch; show it.
            let everyone = self
                .room
                .participants_except(&ParticipantId::from_string(""));
            for info in everyone {
                self.broadcast(None, || {
                    RoomEvent::Message(ServerMessage::ParticipantUpdated {
                        participant: info.clone(),
                    })
                });
            }
        }
        // Turning the waiting room off lets everyone waiting in.
        if !settings.waiting_room {
            let waiting: Vec<ParticipantId> =
                self.room.waiting().iter().map(|w| w.id.clone()).collect();
            for id in waiting {
                let _ = self.admit(&id);
            }
        }
        Ok(())
    }

    fn save_settings(&self) -> Result<(), Refusal> {
        let s = self.room.settings();
        let stored = hearth_store::SessionSettings {
            shape: if s.shape == Shape::Stage {
                "stage".into()
            } else {
                "room".into()
            },
            locked: s.locked,
            waiting_room: s.waiting_room,
            max_participants: Some(s.max_participants),
            invite_generation: self.invite_generation,
        };
        self.store.update_settings(self.session_id(), &stored).map_err(|e| {
            tracing::error!(session_id = %self.session_id(), error = %e, "cannot save settings");
            refusal(ErrorCode::Internal, "internal error")
        })
    }

    fn rotate_invite(&mut self) -> Result<(), Refusal> {
        let Some(host_key) = self.host_key.clone() else {
            return Err(refusal(
                ErrorCode::Forbidden,
                "the host must be connected to rotate the invite link",
            ));
        };
        let old = derive_invite_key(&host_key, self.invite_generation);
        let new = derive_invite_key(&host_key, self.invite_generation + 1);
        let session = self.session_id().clone();
        let now = now_ms();
        // The old key is kept as a revoked invite, so its link answers "no longer valid" (410)
        // rather than "unknown" (404).
        let stored = self
            .store
            .create_invite(&InviteRecord {
                token_hash: secrets::hash_secret(&old),
                session: session.clone(),
                role: "attendee".into(),
                expires_ms: None,
                created_ms: now,
                revoked: true,
            })
            .and_then(|()| {
                self.store
                    .set_invite_hash(&session, &secrets::hash_secret(&new))
            });
        if let Err(e) = stored {
            tracing::error!(session_id = %session, error = %e, "cannot rotate invite");
            return Err(refusal(ErrorCode::Internal, "internal error"));
        }
        self.invite_generation += 1;
        self.save_settings()?;
        if let Some(url) = self.invite_url() {
            self.broadcast_to_runners(|| ServerMessage::InviteRotated {
                invite_url: url.clone(),
            });
        }
        Ok(())
    }

    /// Lets someone in from the waiting room.
    pub(super) fn admit(&mut self, target: &ParticipantId) -> Result<(), Refusal> {
        if self.room.take_waiting(target).is_none() {
            return Err(refusal(
                ErrorCode::UnknownParticipant,
                "nobody with that id is waiting",
            ));
        }
        let Some(request) = self.pending.remove(target) else {
            return Err(refusal(
                ErrorCode::UnknownParticipant,
                "nobody with that id is waiting",
            ));
        };
        let events = request.events.clone();
        match self.enter(request) {
            Ok((joined, events)) => {
                if events.try_send(RoomEvent::Admitted(joined)).is_err() {
                    self.leave(target);
                } else {
                    self.subscribe_existing(target);
                }
            }
            Err(r) => {
                let _ = events.try_send(RoomEvent::Close(r));
            }
        }
        self.waiting_changed();
        Ok(())
    }

    fn decline(&mut self, target: &ParticipantId) -> Result<(), Refusal> {
        if self.room.take_waiting(target).is_none() {
            return Err(refusal(
                ErrorCode::UnknownParticipant,
                "nobody with that id is waiting",
            ));
        }
        if let Some(request) = self.pending.remove(target) {
            let _ = request.events.try_send(RoomEvent::Close(refusal(
                ErrorCode::Declined,
                "the host did not let you in",
            )));
        }
        self.waiting_changed();
        Ok(())
    }

    fn end(&mut self) -> Result<(), Refusal> {
        let session = self.session_id().clone();
        if let Err(e) = self.store.end_session(&session, now_ms()) {
            tracing::error!(session_id = %session, error = %e, "cannot end session");
            return Err(refusal(ErrorCode::Internal, "internal error"));
        }
        self.ended = true;
        tracing::info!(session_id = %session, "session ended");
        self.stop_recording_in_background();
        for (_, request) in self.pending.drain() {
            let _ = request.events.try_send(RoomEvent::Close(refusal(
                ErrorCode::SessionEnded,
                "the host ended this session",
            )));
        }
        let ids: Vec<ParticipantId> = self.members.keys().cloned().collect();
        for id in ids {
            self.send(
                &id,
                RoomEvent::Close(refusal(
                    ErrorCode::SessionEnded,
                    "the host ended this session",
                )),
            );
            self.leave(&id);
        }
        Ok(())
    }
}
