//! Active speaker detection for a room: a few times a second the room collects the audio levels
//! of every forwarded microphone, asks `hearth_core::SpeakerDetector` who speaks, and tells
//! everyone when that changed.

use super::{RoomEvent, RoomTask};
use hearth_core::{LevelSample, Speakers};
use hearth_proto::{MAX_SPEAKING, ParticipantId, ServerMessage, TrackSource};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the room collects levels. Four times a second follows speech closely enough for
/// a highlight, and a change costs one small message to everyone in the room.
pub(super) const SPEAKER_TICK: Duration = Duration::from_millis(250);

impl RoomTask {
    /// One detection tick.
    pub(super) fn detect_speakers(&mut self, now: Instant) {
        let mut samples: HashMap<ParticipantId, LevelSample> = HashMap::new();
        for track in self.published.values() {
            if track.info().source != TrackSource::Microphone {
                continue;
            }
            // Taken even while muted, so the sum restarts when the microphone comes back.
            let sample = track.take_audio_levels();
            if track.is_paused() || sample.packets == 0 {
                continue;
            }
            let sum = samples.entry(track.participant_id().clone()).or_default();
            sum.packets = sum.packets.saturating_add(sample.packets);
            sum.voiced = sum.voiced.saturating_add(sample.voiced);
            sum.voiced_loudness = sum.voiced_loudness.saturating_add(sample.voiced_loudness);
        }
        if samples.is_empty() && self.speakers.current() == &Speakers::default() {
            return; // Nobody has spoken: nothing to fade out.
        }
        if let Some(change) = self.speakers.tick(now, samples) {
            self.announce_speakers(&change);
        }
    }

    /// Forgets someone who left, telling everyone if they were speaking.
    pub(super) fn forget_speaker(&mut self, id: &ParticipantId) {
        if let Some(change) = self.speakers.remove(id) {
            self.announce_speakers(&change);
        }
    }

    /// Tells someone who just entered who is speaking, if anyone is.
    pub(super) fn greet_speakers(&mut self, id: &ParticipantId) {
        let current = self.speakers.current().clone();
        if current != Speakers::default() {
            self.send(id, RoomEvent::Message(speaker_message(&current)));
        }
    }

    fn announce_speakers(&mut self, change: &Speakers) {
        self.broadcast(None, || RoomEvent::Message(speaker_message(change)));
    }
}

fn speaker_message(speakers: &Speakers) -> ServerMessage {
    ServerMessage::ActiveSpeaker {
        participant_id: speakers.active.clone(),
        speaking: speakers
            .speaking
            .iter()
            .take(MAX_SPEAKING)
            .cloned()
            .collect(),
    }
}
