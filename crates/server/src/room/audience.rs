//! Who hears about whom. In a room everyone hears about everyone. On a stage the audience is
//! listed only to hosts and co-hosts (`hearth_core::permissions::hears_about`); the rest see
//! the stage and a count of the audience, sent at most once a second. Without this a live
//! session's signaling grows with the square of its audience: 500 viewers arriving cost
//! 125 000 `participant_joined` messages, and 500 leaving at once overflowed the remaining
//! viewers' queues, which dropped them as too slow.

use super::{RoomEvent, RoomTask};
use hearth_core::hears_about;
use hearth_proto::{ParticipantId, Role, ServerMessage, Shape};
use std::time::Duration;

/// How often the audience count may go out. A crowd arriving at hundreds a second then costs
/// each participant one small message a second, and the count on screen lags by at most this.
pub(super) const AUDIENCE_TICK: Duration = Duration::from_secs(1);

impl RoomTask {
    /// Sends a message about `subject` to every member who hears about someone with one of
    /// `roles` (the subject's role, or both its old and new one when it changes), and to the
    /// subject itself. A member too slow to take it is dropped, as by `broadcast`.
    pub(super) fn tell_about(
        &mut self,
        subject: &ParticipantId,
        roles: &[Role],
        message: impl Fn() -> ServerMessage,
    ) {
        let shape = self.room.settings().shape;
        let ids: Vec<ParticipantId> = self
            .members
            .keys()
            .filter(|id| {
                *id == subject
                    || self.room.participant(id).is_some_and(|viewer| {
                        roles
                            .iter()
                            .any(|&role| hears_about(viewer.role, role, shape))
                    })
            })
            .cloned()
            .collect();
        for id in ids {
            self.send(&id, RoomEvent::Message(message()));
        }
    }

    /// Someone whose role was `before` now hears about people they did not (an attendee made
    /// co-host): tell them of each, as arrivals. Losing sight is the client's to handle: it
    /// forgets the attendees it no longer hears about (docs/protocol.md).
    pub(super) fn introduce_hidden(&mut self, id: &ParticipantId, before: Role) {
        let shape = self.room.settings().shape;
        let Some(now) = self.room.participant(id).map(|p| p.role) else {
            return;
        };
        let unseen: Vec<_> = self
            .room
            .participants_except(id)
            .into_iter()
            .filter(|p| hears_about(now, p.role, shape) && !hears_about(before, p.role, shape))
            .collect();
        for participant in unseen {
            self.send(
                id,
                RoomEvent::Message(ServerMessage::ParticipantJoined { participant }),
            );
        }
    }

    /// The count every participant of a stage session sees, sent when it changed since the
    /// last tick.
    pub(super) fn announce_audience(&mut self) {
        if self.room.settings().shape != Shape::Stage {
            // Forgotten, so a switch to a stage sends the count at the next tick.
            self.audience_told = None;
            return;
        }
        let count = self.audience_count();
        if self.audience_told == Some(count) {
            return;
        }
        self.audience_told = Some(count);
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::Audience { count })
        });
    }

    /// Attendees in the session now.
    pub(super) fn audience_count(&self) -> u32 {
        u32::try_from(self.room.audience_len()).unwrap_or(u32::MAX)
    }
}
