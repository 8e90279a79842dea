//! Room membership: who is in a session and what they publish. The room task in the server owns
//! one [`Room`] and turns its results into messages; the rules live here.

use hearth_proto::{
    MAX_NAME_CHARS, MediaKind, ParticipantId, ParticipantInfo, Role, SessionInfo, TrackId,
    TrackInfo,
};
use std::collections::BTreeMap;

/// Why a join is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The display name is empty (after trimming) or longer than [`MAX_NAME_CHARS`].
    InvalidName,
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
    pub fn new(info: SessionInfo) -> Self {
        Self {
            info,
            participants: BTreeMap::new(),
            order: Vec::new(),
            tracks: BTreeMap::new(),
        }
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
    /// track arrived after they left) or the track is already known.
    pub fn add_track(&mut self, track: TrackInfo) -> bool {
        if !self.participants.contains_key(&track.participant_id)
            || self.tracks.contains_key(&track.id)
        {
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

    fn room() -> Room {
        Room::new(SessionInfo {
            id: SessionId::from_string("s"),
            title: "t".into(),
        })
    }

    fn track(id: &str, owner: &ParticipantId, kind: MediaKind) -> TrackInfo {
        TrackInfo {
            id: TrackId::from_string(id),
            participant_id: owner.clone(),
            kind,
            codec: "video/VP8".into(),
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
