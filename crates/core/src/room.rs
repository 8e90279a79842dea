//! Room membership: who is in a session and what they publish. The room task in the server owns
//! one [`Room`] and turns its results into messages; the rules live here.

use crate::permissions::{Action, allowed};
use hearth_proto::{
    MAX_NAME_CHARS, MediaKind, ParticipantId, ParticipantInfo, Role, SessionInfo, SessionSettings,
    SettingsChange, Shape, TrackId, TrackInfo, WaitingInfo,
};
use std::collections::BTreeMap;

/// Why a join is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The display name is empty (after trimming) or longer than [`MAX_NAME_CHARS`].
    InvalidName,
    /// The session is locked (hosts may still come in).
    Locked,
    /// The session is at its participant limit (hosts may still come in).
    Full,
}

/// One session's membership and published tracks.
#[derive(Debug, Clone)]
pub struct Room {
    info: SessionInfo,
    /// Ordered by id only for deterministic iteration; join order is kept in `order`.
    participants: BTreeMap<ParticipantId, ParticipantInfo>,
    /// Join order, so lists shown to people are stable.
    order: Vec<ParticipantId>,
    tracks: BTreeMap<TrackId, TrackInfo>,
    settings: SessionSettings,
    /// People waiting for admission, in arrival order.
    waiting: Vec<WaitingInfo>,
}

/// Trims a display name and checks its length; control characters are removed so a name cannot
/// break a layout or a log line.
pub fn clean_name(name: &str) -> Result<String, JoinError> {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let len = cleaned.chars().count();
    if len == 0 || len > MAX_NAME_CHARS {
        return Err(JoinError::InvalidName);
    }
    Ok(cleaned.to_owned())
}

impl Room {
    /// An empty room.
    pub fn new(info: SessionInfo, settings: SessionSettings) -> Self {
        Self {
            info,
            participants: BTreeMap::new(),
            order: Vec::new(),
            tracks: BTreeMap::new(),
            settings,
            waiting: Vec::new(),
        }
    }

    /// Current settings.
    pub fn settings(&self) -> SessionSettings {
        self.settings
    }

    /// Whether someone joining with `role` must wait for a host first.
    pub fn needs_admission(&self, role: Role) -> bool {
        self.settings.waiting_room && !matches!(role, Role::Host | Role::Cohost)
    }

    /// Checks whether someone with `role` could come in now (lock and capacity), without
    /// adding them. Hosts always can: the session is theirs.
    pub fn can_enter(&self, role: Role) -> Result<(), JoinError> {
        if role == Role::Host {
            return Ok(());
        }
        if self.settings.locked {
            return Err(JoinError::Locked);
        }
        let max = usize::try_from(self.settings.max_participants).unwrap_or(usize::MAX);
        if self.participants.len() >= max {
            return Err(JoinError::Full);
        }
        Ok(())
    }

    /// Puts someone in the waiting room.
    pub fn add_waiting(&mut self, id: ParticipantId, name: &str) -> Result<WaitingInfo, JoinError> {
        let info = WaitingInfo {
            id,
            name: clean_name(name)?,
        };
        self.waiting.push(info.clone());
        Ok(info)
    }

    /// Takes someone out of the waiting room (admitted, declined or gone).
    pub fn take_waiting(&mut self, id: &ParticipantId) -> Option<WaitingInfo> {
        let at = self.waiting.iter().position(|w| &w.id == id)?;
        Some(self.waiting.remove(at))
    }

    /// Everyone waiting, in arrival order.
    pub fn waiting(&self) -> &[WaitingInfo] {
        &self.waiting
    }

    /// One participant.
    pub fn participant(&self, id: &ParticipantId) -> Option<&ParticipantInfo> {
        self.participants.get(id)
    }

    /// Whether `id` may publish now.
    pub fn may_publish(&self, id: &ParticipantId) -> bool {
        self.participants
            .get(id)
            .is_some_and(|p| allowed(p.role, self.settings.shape, Action::Publish))
    }

    /// Tracks published by `id`.
    pub fn tracks_of(&self, id: &ParticipantId) -> Vec<TrackInfo> {
        self.tracks
            .values()
            .filter(|t| &t.participant_id == id)
            .cloned()
            .collect()
    }

    /// Removes the tracks of everyone who may no longer publish (after a role or shape change).
    fn unpublish_forbidden(&mut self) -> Vec<TrackInfo> {
        let shape = self.settings.shape;
        let forbidden: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| {
                self.participants
                    .get(&t.participant_id)
                    .is_none_or(|p| !allowed(p.role, shape, Action::Publish))
            })
            .map(|t| t.id.clone())
            .collect();
        forbidden
            .iter()
            .filter_map(|id| self.tracks.remove(id))
            .collect()
    }

    /// Gives `id` a new role. Returns the updated participant and any tracks they may no longer
    /// publish, or `None` if they are not here or already have that role. A speaker moved back
    /// to the audience is lowered-hand too.
    pub fn set_role(
        &mut self,
        id: &ParticipantId,
        role: Role,
    ) -> Option<(ParticipantInfo, Vec<TrackInfo>)> {
        let p = self.participants.get_mut(id)?;
        if p.role == role {
            return None;
        }
        p.role = role;
        if role != Role::Attendee {
            p.hand_raised = false;
        }
        let info = p.clone();
        Some((info, self.unpublish_forbidden()))
    }

    /// Raises or lowers a hand. Returns the updated participant if it changed.
    pub fn set_hand(&mut self, id: &ParticipantId, raised: bool) -> Option<ParticipantInfo> {
        let p = self.participants.get_mut(id)?;
        if p.hand_raised == raised {
            return None;
        }
        p.hand_raised = raised;
        Some(p.clone())
    }

    /// Applies a settings change. Returns the new settings and the tracks that stop being
    /// allowed (switching to `stage` takes attendees' cameras down).
    pub fn update_settings(&mut self, change: SettingsChange) -> (SessionSettings, Vec<TrackInfo>) {
        if let Some(shape) = change.shape {
            self.settings.shape = shape;
        }
        if let Some(locked) = change.locked {
            self.settings.locked = locked;
        }
        if let Some(waiting_room) = change.waiting_room {
            self.settings.waiting_room = waiting_room;
        }
        if self.settings.shape == Shape::Room {
            for p in self.participants.values_mut() {
                p.hand_raised = false;
            }
        }
        (self.settings, self.unpublish_forbidden())
    }

    /// The session this room is.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Adds a participant. Returns their info (as others will see it).
    pub fn join(
        &mut self,
        id: ParticipantId,
        name: &str,
        role: Role,
    ) -> Result<ParticipantInfo, JoinError> {
        let name = clean_name(name)?;
        let info = ParticipantInfo {
            id: id.clone(),
            name,
            role,
            audio_muted: false,
            video_muted: false,
            hand_raised: false,
        };
        self.participants.insert(id.clone(), info.clone());
        self.order.push(id);
        Ok(info)
    }

    /// Removes a participant and every track they published. Returns the removed tracks, or
    /// `None` if they were not here (a second leave is harmless).
    pub fn leave(&mut self, id: &ParticipantId) -> Option<Vec<TrackInfo>> {
        self.participants.remove(id)?;
        self.order.retain(|p| p != id);
        let gone: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| &t.participant_id == id)
            .map(|t| t.id.clone())
            .collect();
        Some(gone.iter().filter_map(|t| self.tracks.remove(t)).collect())
    }

    /// Records a mute change. Returns the updated info, or `None` if nothing changed (so no one is
    /// told about a non-event) or the participant is unknown.
    pub fn set_muted(
        &mut self,
        id: &ParticipantId,
        kind: MediaKind,
        muted: bool,
    ) -> Option<ParticipantInfo> {
        let p = self.participants.get_mut(id)?;
        let flag = match kind {
            MediaKind::Audio => &mut p.audio_muted,
            MediaKind::Video => &mut p.video_muted,
        };
        if *flag == muted {
            return None;
        }
        *flag = muted;
        Some(p.clone())
    }

    /// Records a published track. Returns `false` if the publisher is not in the room (their
    /// track arrived after they left), may not publish, or the track is already known.
    pub fn add_track(&mut self, track: TrackInfo) -> bool {
        if !self.may_publish(&track.participant_id) || self.tracks.contains_key(&track.id) {
            return false;
        }
        self.tracks.insert(track.id.clone(), track);
        true
    }

    /// Forgets a track. Returns it if it was known.
    pub fn remove_track(&mut self, id: &TrackId) -> Option<TrackInfo> {
        self.tracks.remove(id)
    }

    /// Everyone in join order, except `except`.
    pub fn participants_except(&self, except: &ParticipantId) -> Vec<ParticipantInfo> {
        self.order
            .iter()
            .filter(|id| *id != except)
            .filter_map(|id| self.participants.get(id).cloned())
            .collect()
    }

    /// Every track not published by `except`.
    pub fn tracks_except(&self, except: &ParticipantId) -> Vec<TrackInfo> {
        self.tracks
            .values()
            .filter(|t| &t.participant_id != except)
            .cloned()
            .collect()
    }

    /// Ids of everyone in the room, in join order.
    pub fn participant_ids(&self) -> impl Iterator<Item = &ParticipantId> {
        self.order.iter()
    }

    /// How many attendees are in the room (counted when asked: once a second at most).
    pub fn audience_len(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.role == Role::Attendee)
            .count()
    }

    /// How many people are in the room.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// How many tracks are published.
    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_proto::SessionId;

    fn settings() -> SessionSettings {
        SessionSettings {
            shape: Shape::Room,
            locked: false,
            waiting_room: false,
            max_participants: 10,
        }
    }

    fn room() -> Room {
        Room::new(
            SessionInfo {
                id: SessionId::from_string("s"),
                title: "t".into(),
            },
            settings(),
        )
    }

    fn track(id: &str, owner: &ParticipantId, kind: MediaKind) -> TrackInfo {
        TrackInfo {
            id: TrackId::from_string(id),
            participant_id: owner.clone(),
            kind,
            codec: "video/VP8".into(),
            source: hearth_proto::TrackSource::Camera,
        }
    }

    #[test]
    fn late_joiner_sees_everyone_else_and_their_tracks() {
        let mut r = room();
        let a = ParticipantId::from_string("a");
        let b = ParticipantId::from_string("b");
        r.join(a.clone(), "Ada", Role::Host).unwrap();
        assert!(r.add_track(track("ta", &a, MediaKind::Video)));
        let c = ParticipantId::from_string("c");
        r.join(b.clone(), "Bo", Role::Attendee).unwrap();
        r.join(c.clone(), "Cy", Role::Attendee).unwrap();
        let others: Vec<_> = r
            .participants_except(&c)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(others, ["Ada", "Bo"]);
        assert_eq!(r.tracks_except(&c).len(), 1);
        assert!(
            r.tracks_except(&a).is_empty(),
            "own tracks are not offered back"
        );
    }

    #[test]
    fn the_audience_counts_attendees_as_roles_change_and_people_leave() {
        let mut r = room();
        let ids: Vec<ParticipantId> = ["h", "a", "b", "c"]
            .iter()
            .map(|s| ParticipantId::from_string(*s))
            .collect();
        r.join(ids[0].clone(), "Host", Role::Host).unwrap();
        for id in &ids[1..] {
            r.join(id.clone(), "Guest", Role::Attendee).unwrap();
        }
        assert_eq!(r.audience_len(), 3);
        r.set_role(&ids[1], Role::Speaker).unwrap();
        assert_eq!(
            r.audience_len(),
            2,
            "a speaker is on stage, not in the audience"
        );
        r.leave(&ids[2]).unwrap();
        assert_eq!(r.audience_len(), 1);
        r.set_role(&ids[1], Role::Attendee).unwrap();
        assert_eq!(r.audience_len(), 2, "back in the audience");
    }

    #[test]
    fn leaving_removes_the_participant_and_their_tracks_once() {
        let mut r = room();
        let a = ParticipantId::from_string("a");
        r.join(a.clone(), "Ada", Role::Host).unwrap();
        r.add_track(track("t1", &a, MediaKind::Audio));
        r.add_track(track("t2", &a, MediaKind::Video));
        let gone = r.leave(&a).unwrap();
        assert_eq!(gone.len(), 2);
        assert!(r.is_empty());
        assert_eq!(r.track_count(), 0);
        assert_eq!(r.leave(&a), None);
    }

    #[test]
    fn repeated_join_and_leave_leaves_no_state() {
        let mut r = room();
        for i in 0..100 {
            let id = ParticipantId::from_string(format!("p{i}"));
            r.join(id.clone(), "x", Role::Attendee).unwrap();
            r.add_track(track(&format!("t{i}"), &id, MediaKind::Video));
            r.leave(&id).unwrap();
        }
        assert!(r.is_empty());
        assert_eq!(r.track_count(), 0);
        assert_eq!(r.participant_ids().count(), 0);
    }

    #[test]
    fn track_of_someone_who_left_is_refused() {
        let mut r = room();
        let ghost = ParticipantId::from_string("ghost");
        assert!(!r.add_track(track("t", &ghost, MediaKind::Video)));
    }

    #[test]
    fn mute_reports_only_changes() {
        let mut r = room();
        let a = ParticipantId::from_string("a");
        r.join(a.clone(), "Ada", Role::Host).unwrap();
        let updated = r.set_muted(&a, MediaKind::Audio, true).unwrap();
        assert!(updated.audio_muted && !updated.video_muted);
        assert_eq!(r.set_muted(&a, MediaKind::Audio, true), None);
        assert_eq!(
            r.set_muted(&ParticipantId::from_string("x"), MediaKind::Audio, true),
            None
        );
    }

    #[test]
    fn stage_takes_attendee_cameras_down_and_speakers_keep_theirs() {
        let mut r = room();
        let host = ParticipantId::from_string("h");
        let guest = ParticipantId::from_string("g");
        r.join(host.clone(), "Host", Role::Host).unwrap();
        r.join(guest.clone(), "Guest", Role::Attendee).unwrap();
        assert!(r.add_track(track("th", &host, MediaKind::Video)));
        assert!(r.add_track(track("tg", &guest, MediaKind::Video)));
        let (settings, gone) = r.update_settings(SettingsChange {
            shape: Some(Shape::Stage),
            ..SettingsChange::default()
        });
        assert_eq!(settings.shape, Shape::Stage);
        assert_eq!(
            gone.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["tg"]
        );
        assert!(
            !r.add_track(track("tg2", &guest, MediaKind::Video)),
            "attendees cannot publish on stage"
        );
        // Hand raised, brought on stage: may publish, hand lowered.
        assert!(r.set_hand(&guest, true).unwrap().hand_raised);
        let (info, gone) = r.set_role(&guest, Role::Speaker).unwrap();
        assert!(gone.is_empty() && !info.hand_raised);
        assert!(r.add_track(track("tg3", &guest, MediaKind::Video)));
        // Taken off stage: the track goes.
        let (_, gone) = r.set_role(&guest, Role::Attendee).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(r.tracks_of(&host).len(), 1);
    }

    #[test]
    fn lock_and_capacity_keep_people_out_but_not_the_host() {
        let mut r = room();
        r.update_settings(SettingsChange {
            locked: Some(true),
            ..SettingsChange::default()
        });
        assert_eq!(r.can_enter(Role::Attendee), Err(JoinError::Locked));
        assert_eq!(r.can_enter(Role::Host), Ok(()));
        r.update_settings(SettingsChange {
            locked: Some(false),
            ..SettingsChange::default()
        });
        for i in 0..10 {
            r.join(
                ParticipantId::from_string(format!("p{i}")),
                "x",
                Role::Attendee,
            )
            .unwrap();
        }
        assert_eq!(r.can_enter(Role::Attendee), Err(JoinError::Full));
        assert_eq!(r.can_enter(Role::Host), Ok(()));
    }

    #[test]
    fn waiting_room_holds_attendees_in_order() {
        let mut r = room();
        r.update_settings(SettingsChange {
            waiting_room: Some(true),
            ..SettingsChange::default()
        });
        assert!(r.needs_admission(Role::Attendee));
        assert!(!r.needs_admission(Role::Cohost));
        let a = ParticipantId::from_string("a");
        let b = ParticipantId::from_string("b");
        r.add_waiting(a.clone(), "A").unwrap();
        r.add_waiting(b.clone(), "B").unwrap();
        assert_eq!(r.take_waiting(&a).unwrap().name, "A");
        assert_eq!(r.waiting().len(), 1);
        assert!(r.take_waiting(&a).is_none());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Ada \n").unwrap(), "Ada");
        assert_eq!(clean_name("A\u{0}da").unwrap(), "Ada");
        assert_eq!(clean_name("   "), Err(JoinError::InvalidName));
        assert_eq!(
            clean_name(&"é".repeat(MAX_NAME_CHARS))
                .unwrap()
                .chars()
                .count(),
            MAX_NAME_CHARS
        );
        assert_eq!(
            clean_name(&"é".repeat(MAX_NAME_CHARS + 1)),
            Err(JoinError::InvalidName)
        );
    }
}
