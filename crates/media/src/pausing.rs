//! Which simulcast layers a publisher should keep sending: those some subscriber (or the
//! recorder) receives. A layer nobody has wanted for a while is paused at the publisher over
//! signaling (`simulcast_layers`; webrtc-rs has no RTCP message for it), which saves the
//! publisher's uplink and encoder; it is resumed as soon as someone wants it again. The
//! smallest layer always stays on, so that a newcomer has a picture at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a layer must go unwanted before it is paused: long enough that a viewer
/// resizing a window or a subscriber's estimate wobbling does not flap it.
pub const PAUSE_AFTER: Duration = Duration::from_secs(3);

/// One published track's layer state.
#[derive(Debug, Clone, Default)]
struct State {
    /// The layers told active (one bit each); `None` before anything was told.
    told: Option<u32>,
    /// Since when each layer has not been wanted.
    unwanted_since: [Option<Instant>; 3],
}

/// Pausing decisions for one publisher's tracks, keyed by the client's track id.
#[derive(Debug, Default)]
pub struct LayerPauser {
    tracks: HashMap<String, State>,
}

/// One track's current facts: its client id, how many layers it has, and which are wanted.
#[derive(Debug, Clone, Copy)]
pub struct TrackLayers<'a> {
    /// The client's MediaStreamTrack id.
    pub client_id: &'a str,
    /// Layers seen (1 without simulcast).
    pub count: usize,
    /// Wanted layers, one bit each.
    pub wanted: u32,
}

impl LayerPauser {
    /// Given every track's facts at `now`, the tracks whose set of active layers changed,
    /// with the new set (one bit per layer). Tracks not listed are forgotten.
    pub fn update(&mut self, now: Instant, tracks: &[TrackLayers<'_>]) -> Vec<(String, u32)> {
        self.tracks
            .retain(|id, _| tracks.iter().any(|t| t.client_id == id));
        let mut changes = Vec::new();
        for track in tracks.iter().filter(|t| t.count > 1) {
            let count = track.count.min(3);
            let state = self.tracks.entry(track.client_id.to_owned()).or_default();
            let mut active = 1; // the smallest layer always
            for layer in 1..count {
                let bit = 1 << layer;
                if track.wanted & bit != 0 {
                    state.unwanted_since[layer] = None;
                    active |= bit;
                    continue;
                }
                let since = *state.unwanted_since[layer].get_or_insert(now);
                if now.saturating_duration_since(since) < PAUSE_AFTER {
                    // Not for long enough: keep what the publisher was told (active at first).
                    active |= state.told.map_or(bit, |told| told & bit);
                }
            }
            let all = (1u32 << count) - 1;
            // Nothing is told until something is to be paused: publishers start with all on.
            let before = state.told.unwrap_or(all);
            if active != before {
                state.told = Some(active);
                changes.push((track.client_id.to_owned(), active));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(wanted: u32) -> [TrackLayers<'static>; 1] {
        [TrackLayers {
            client_id: "cam",
            count: 3,
            wanted,
        }]
    }

    #[test]
    fn a_layer_nobody_wants_is_paused_after_a_while_and_resumed_at_once() {
        let mut p = LayerPauser::default();
        let t0 = Instant::now();
        // Everyone watches thumbnails: only the smallest layer is wanted.
        assert!(p.update(t0, &camera(0b001)).is_empty(), "not yet");
        assert!(p.update(t0 + PAUSE_AFTER / 2, &camera(0b001)).is_empty());
        assert_eq!(
            p.update(t0 + PAUSE_AFTER, &camera(0b001)),
            vec![("cam".to_owned(), 0b001)]
        );
        assert!(
            p.update(t0 + PAUSE_AFTER * 2, &camera(0b001)).is_empty(),
            "told once"
        );
        // Someone enlarges a tile: the top layer comes back at once.
        let later = t0 + PAUSE_AFTER * 3;
        assert_eq!(
            p.update(later, &camera(0b100)),
            vec![("cam".to_owned(), 0b101)]
        );
    }

    #[test]
    fn the_smallest_layer_stays_on_even_when_nobody_watches() {
        let mut p = LayerPauser::default();
        let t0 = Instant::now();
        p.update(t0, &camera(0));
        assert_eq!(
            p.update(t0 + PAUSE_AFTER, &camera(0)),
            vec![("cam".to_owned(), 0b001)]
        );
    }

    #[test]
    fn a_layer_wanted_again_before_the_delay_is_never_paused() {
        let mut p = LayerPauser::default();
        let t0 = Instant::now();
        p.update(t0, &camera(0b001));
        assert!(p.update(t0 + PAUSE_AFTER / 2, &camera(0b100)).is_empty());
        // The clock starts over for the middle layer only.
        assert_eq!(
            p.update(t0 + PAUSE_AFTER, &camera(0b100)),
            vec![("cam".to_owned(), 0b101)]
        );
    }

    #[test]
    fn tracks_without_simulcast_are_left_alone_and_ended_ones_forgotten() {
        let mut p = LayerPauser::default();
        let t0 = Instant::now();
        let single = [TrackLayers {
            client_id: "mic",
            count: 1,
            wanted: 0,
        }];
        assert!(p.update(t0 + PAUSE_AFTER * 9, &single).is_empty());
        p.update(t0, &camera(0b001));
        p.update(t0 + PAUSE_AFTER, &camera(0b001));
        p.update(t0 + PAUSE_AFTER, &[]);
        assert!(p.tracks.is_empty());
    }
}
