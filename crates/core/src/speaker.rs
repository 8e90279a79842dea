//! Who is speaking, from the audio levels publishers put in their packets (RFC 6464: each audio
//! packet says how loud it is, in -dBov, 0 loudest and 127 silence), so the SFU never decodes
//! audio to know.
//!
//! A [`SpeakerDetector`] is fed, every tick, what each participant's microphone sent since the
//! last one ([`LevelSample`]). It smooths that over about a second and answers two questions:
//! who is speaking now (to highlight their tiles), and who holds the floor (the *active speaker*,
//! whose tile comes first). The floor changes hands only to someone clearly louder, or when its
//! holder falls silent, and never more often than [`MIN_HOLD`]: a cough does not reorder a room.

use hearth_proto::ParticipantId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A packet at least this loud (in -dBov; smaller is louder) counts as voice. Quiet speech
/// into a laptop microphone sits around -40 dBov; a room's background noise well below -50.
pub const VOICE_LEVEL: u8 = 50;

/// The share of a tick's packets that must be voice for the tick to count as speech. Speech has
/// gaps between words, so less than all of them.
const VOICE_SHARE: f32 = 0.4;

/// Smoothing of the per-tick score: the weight of the newest tick. At 4 ticks a second this
/// forgets a silence or a sound in about a second.
const SMOOTHING: f32 = 0.4;

/// Someone is speaking while their smoothed score is at least this (out of 127).
const SPEAKING_SCORE: f32 = 20.0;

/// A challenger takes the floor from someone still speaking only when louder by this much (in
/// dB, on the smoothed score).
const MARGIN: f32 = 6.0;

/// The floor stays with its holder at least this long.
pub const MIN_HOLD: Duration = Duration::from_millis(1500);

/// How far above silence a packet at `level` (-dBov) is, if it is loud enough to be voice.
pub fn voiced_loudness(level: u8) -> Option<u8> {
    let level = level.min(127);
    (level <= VOICE_LEVEL).then(|| 127 - level)
}

/// What one microphone sent during one tick, summed where the packets pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelSample {
    /// Audio packets that carried a level.
    pub packets: u32,
    /// Of those, packets at least as loud as [`VOICE_LEVEL`].
    pub voiced: u32,
    /// The sum of `127 - level` over the voiced packets: how far above silence they were.
    pub voiced_loudness: u32,
}

impl LevelSample {
    /// Adds one packet's level (0..=127, -dBov; larger values are clamped to silence).
    pub fn add(&mut self, level: u8) {
        self.packets = self.packets.saturating_add(1);
        if let Some(loudness) = voiced_loudness(level) {
            self.voiced = self.voiced.saturating_add(1);
            self.voiced_loudness = self.voiced_loudness.saturating_add(u32::from(loudness));
        }
    }

    /// This tick's score, 0 (silent) to 127: how loud the voice was, or 0 when too little of
    /// the tick was voice to be speech.
    fn score(&self) -> f32 {
        if self.packets == 0 || self.voiced == 0 {
            return 0.0;
        }
        let share = self.voiced as f32 / self.packets as f32;
        if share < VOICE_SHARE {
            return 0.0;
        }
        self.voiced_loudness as f32 / self.voiced as f32
    }
}

/// What changed after a tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Speakers {
    /// Who holds the floor: the current speaker, or the last one while nobody speaks.
    pub active: Option<ParticipantId>,
    /// Everyone speaking now, loudest first.
    pub speaking: Vec<ParticipantId>,
}

/// Decides who speaks, tick by tick. Time comes in as an argument.
#[derive(Debug, Default)]
pub struct SpeakerDetector {
    scores: HashMap<ParticipantId, f32>,
    active: Option<ParticipantId>,
    since: Option<Instant>,
    last: Speakers,
}

impl SpeakerDetector {
    /// A detector that has heard nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one tick: what each microphone sent since the last tick. A participant missing
    /// from `samples` sent nothing (muted, or no microphone) and fades out. Returns the new
    /// state if it differs from what the last call returned.
    pub fn tick(
        &mut self,
        now: Instant,
        samples: impl IntoIterator<Item = (ParticipantId, LevelSample)>,
    ) -> Option<Speakers> {
        let mut heard: HashMap<ParticipantId, f32> =
            samples.into_iter().map(|(p, s)| (p, s.score())).collect();
        for (id, score) in self.scores.iter_mut() {
            let latest = heard.remove(id).unwrap_or(0.0);
            *score = *score * (1.0 - SMOOTHING) + latest * SMOOTHING;
        }
        for (id, latest) in heard {
            self.scores.insert(id, latest * SMOOTHING);
        }
        // Forget whoever has faded to nothing (left, or silent for long); the floor holder is
        // kept, being shown as the last speaker.
        let active = self.active.clone();
        self.scores
            .retain(|id, score| *score > 0.5 || Some(id) == active.as_ref());

        let mut speaking: Vec<(&ParticipantId, f32)> = self
            .scores
            .iter()
            .filter(|(_, s)| **s >= SPEAKING_SCORE)
            .map(|(id, s)| (id, *s))
            .collect();
        // Loudest first; ties in a stable order so an unchanged room reports no change.
        speaking.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));

        if let Some(&(loudest, loudest_score)) = speaking.first() {
            let holder_score = self
                .active
                .as_ref()
                .and_then(|id| self.scores.get(id))
                .copied()
                .unwrap_or(0.0);
            let held_long_enough = self
                .since
                .is_none_or(|since| now.saturating_duration_since(since) >= MIN_HOLD);
            let holder_silent = holder_score < SPEAKING_SCORE;
            let clearly_louder = loudest_score >= holder_score + MARGIN;
            if self.active.as_ref() != Some(loudest)
                && held_long_enough
                && (holder_silent || clearly_louder)
            {
                self.active = Some(loudest.clone());
                self.since = Some(now);
            }
        }
        let next = Speakers {
            active: self.active.clone(),
            speaking: speaking.into_iter().map(|(id, _)| id.clone()).collect(),
        };
        if next == self.last {
            return None;
        }
        self.last = next.clone();
        Some(next)
    }

    /// Forgets a participant who left. Returns the new state if that changed it.
    pub fn remove(&mut self, id: &ParticipantId) -> Option<Speakers> {
        self.scores.remove(id);
        if self.active.as_ref() == Some(id) {
            self.active = None;
            self.since = None;
        }
        let mut next = self.last.clone();
        next.active.clone_from(&self.active);
        next.speaking.retain(|p| p != id);
        if next == self.last {
            return None;
        }
        self.last = next.clone();
        Some(next)
    }

    /// The state the last change reported (for someone who just joined).
    pub fn current(&self) -> &Speakers {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(250);

    fn id(s: &str) -> ParticipantId {
        ParticipantId::from_string(s)
    }

    /// A tick of 12 packets (250 ms of 20 ms audio) at `level`.
    fn at(level: u8) -> LevelSample {
        let mut s = LevelSample::default();
        for _ in 0..12 {
            s.add(level);
        }
        s
    }

    /// Runs `ticks` ticks of the given levels, returning the last state and the time after.
    fn run(d: &mut SpeakerDetector, start: Instant, ticks: u32, levels: &[(&str, u8)]) -> Instant {
        let mut now = start;
        for _ in 0..ticks {
            now += TICK;
            d.tick(now, levels.iter().map(|(p, l)| (id(p), at(*l))));
        }
        now
    }

    #[test]
    fn silence_is_nobody_speaking() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        run(&mut d, t, 8, &[("a", 127), ("b", 90)]);
        assert_eq!(d.current(), &Speakers::default());
    }

    #[test]
    fn the_louder_of_two_speakers_takes_the_floor() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        run(&mut d, t, 8, &[("quiet", 45), ("loud", 20)]);
        assert_eq!(d.current().active, Some(id("loud")));
        assert_eq!(d.current().speaking, vec![id("loud"), id("quiet")]);
    }

    #[test]
    fn the_floor_passes_when_the_holder_stops_and_someone_else_speaks() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        let t = run(&mut d, t, 8, &[("a", 30), ("b", 127)]);
        assert_eq!(d.current().active, Some(id("a")));
        run(&mut d, t, 12, &[("a", 127), ("b", 30)]);
        assert_eq!(d.current().active, Some(id("b")));
        assert_eq!(d.current().speaking, vec![id("b")]);
    }

    #[test]
    fn the_last_speaker_keeps_the_floor_through_silence() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        let t = run(&mut d, t, 8, &[("a", 30)]);
        run(&mut d, t, 40, &[("a", 127)]);
        assert_eq!(d.current().active, Some(id("a")));
        assert!(d.current().speaking.is_empty());
    }

    #[test]
    fn a_short_sound_does_not_take_the_floor_from_a_speaker() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        let t = run(&mut d, t, 12, &[("a", 30), ("b", 127)]);
        // b coughs for one tick, louder than a.
        let t = run(&mut d, t, 1, &[("a", 30), ("b", 5)]);
        run(&mut d, t, 4, &[("a", 30), ("b", 127)]);
        assert_eq!(d.current().active, Some(id("a")));
    }

    #[test]
    fn the_floor_changes_at_most_once_per_hold_time() {
        let mut d = SpeakerDetector::new();
        let mut now = Instant::now();
        let mut changes = Vec::new();
        // a and b alternate every tick, each far louder in their turn.
        for i in 0..40 {
            now += TICK;
            let (a, b) = if i % 2 == 0 { (5, 127) } else { (127, 5) };
            let before = d.current().active.clone();
            d.tick(now, [(id("a"), at(a)), (id("b"), at(b))]);
            if d.current().active != before {
                changes.push(now);
            }
        }
        for pair in changes.windows(2) {
            assert!(pair[1] - pair[0] >= MIN_HOLD, "{changes:?}");
        }
    }

    #[test]
    fn sparse_sounds_are_not_speech() {
        // One voiced packet in twelve: a beep, a keyboard.
        let mut d = SpeakerDetector::new();
        let mut now = Instant::now();
        for _ in 0..20 {
            now += TICK;
            let mut s = LevelSample::default();
            s.add(10);
            for _ in 0..11 {
                s.add(127);
            }
            d.tick(now, [(id("typist"), s)]);
        }
        assert_eq!(d.current(), &Speakers::default());
    }

    #[test]
    fn a_speaker_who_leaves_is_forgotten() {
        let mut d = SpeakerDetector::new();
        let t = Instant::now();
        run(&mut d, t, 8, &[("a", 30)]);
        let change = d.remove(&id("a")).expect("a change");
        assert_eq!(change, Speakers::default());
        assert_eq!(d.remove(&id("a")), None, "nothing more to report");
    }

    #[test]
    fn an_unchanged_room_reports_nothing() {
        let mut d = SpeakerDetector::new();
        let mut t = Instant::now();
        let mut changed = 0;
        for _ in 0..20 {
            t += TICK;
            if d.tick(t, [(id("a"), at(30))]).is_some() {
                changed += 1;
            }
        }
        assert_eq!(
            changed, 1,
            "one change when a starts speaking, then silence on the wire"
        );
    }
}
