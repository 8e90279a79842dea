//! Which simulcast layer each of a subscriber's video tracks gets.
//!
//! Two inputs decide: how much the subscriber's link carries (its bandwidth estimate, less what
//! its audio takes: audio always goes first) and how large it shows each video (a thumbnail
//! needs no 720p layer; a tile scrolled away or a hidden tab needs no video at all).
//! [`allocate`] shares the budget out; [`Headroom`] keeps a link that just proved too small
//! from being tried again and again, which would trade a steady low picture for a cycle of
//! freezes.

use std::time::{Duration, Instant};

/// One layer of a published video track, as measured arriving at the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layer {
    /// Bits per second arriving now; 0: the publisher is not sending this layer.
    pub bitrate: u64,
    /// Frame width from the layer's latest keyframe; 0 until one was seen.
    pub width: u32,
    /// Frame height, likewise.
    pub height: u32,
}

/// One video track a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand<'a> {
    /// The track's layers, smallest first (one for a track without simulcast).
    pub layers: &'a [Layer],
    /// The size (width, height in device pixels) the subscriber renders it at: `None` unknown
    /// (no limit), a zero width or height: not shown at all.
    pub view: Option<(u32, u32)>,
}

/// The layer of each track in `tracks` (by index), `None` for tracks that get no video, given
/// `budget` bits per second for video. Tracks earlier in the list are upgraded first.
///
/// Every shown track gets at least its smallest arriving layer even when the budget is short
/// of it: a low picture is better than none, and the estimate is a guess. Then, round by round,
/// each track moves up one layer while the total fits, but never above the smallest layer that
/// covers the tile (a bigger one would be scaled down by the browser).
pub fn allocate(budget: u64, tracks: &[Demand<'_>]) -> Vec<Option<u8>> {
    let mut chosen: Vec<Option<usize>> = tracks.iter().map(lowest_wanted).collect();
    let mut spent: u64 = tracks
        .iter()
        .zip(&chosen)
        .filter_map(|(t, c)| c.map(|i| t.layers[i].bitrate))
        .sum();
    loop {
        let mut moved = false;
        for (track, choice) in tracks.iter().zip(chosen.iter_mut()) {
            let Some(current) = *choice else { continue };
            let Some(next) = next_up(track, current) else {
                continue;
            };
            let more = track.layers[next]
                .bitrate
                .saturating_sub(track.layers[current].bitrate);
            if spent + more <= budget {
                spent += more;
                *choice = Some(next);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    chosen
        .into_iter()
        .map(|c| c.map(|i| u8::try_from(i).unwrap_or(u8::MAX)))
        .collect()
}

/// What the given choice costs, in bits per second.
pub fn cost(tracks: &[Demand<'_>], chosen: &[Option<u8>]) -> u64 {
    tracks
        .iter()
        .zip(chosen)
        .filter_map(|(t, c)| c.and_then(|i| t.layers.get(usize::from(i))))
        .map(|l| l.bitrate)
        .sum()
}

/// The starting layer of a track: its smallest arriving one; layer 0 if nothing arrives yet
/// (a track just published: its first keyframe decides); none if it is not shown.
fn lowest_wanted(track: &Demand<'_>) -> Option<usize> {
    let hidden = track.view.is_some_and(|(w, h)| w == 0 || h == 0);
    if hidden || track.layers.is_empty() {
        return None;
    }
    Some(track.layers.iter().position(|l| l.bitrate > 0).unwrap_or(0))
}

/// The next arriving layer above `current`, if the tile is big enough to want it.
fn next_up(track: &Demand<'_>, current: usize) -> Option<usize> {
    if let Some((width, height)) = track.view {
        let layer = track.layers[current];
        // Unknown sizes (0) do not stop an upgrade: the layer order says bigger.
        if layer.width != 0 && layer.width >= width && layer.height >= height {
            return None;
        }
    }
    (current + 1..track.layers.len()).find(|&i| track.layers[i].bitrate > 0)
}

/// How long an allocation that proved too much for the link stays ruled out, at first.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest it stays ruled out after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// An upgrade that lasted this long without congestion counts as a success: the backoff
/// starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Turns a subscriber's bandwidth estimate into the budget to allocate with.
///
/// A loss-based estimate climbs again as soon as the lower layer flows without loss, whether
/// or not the link could carry more; followed blindly, the subscriber would switch up, lose
/// packets, freeze, switch down, every few seconds. So when the estimate falls below what the
/// current allocation costs (the link is congested at that rate), that rate is ruled out for a
/// while: 2 s the first time, doubling up to 8 s while upgrades keep failing, so a link that
/// recovers gets its quality back within seconds, and one that does not is probed rarely.
#[derive(Debug, Clone, Default)]
pub struct Headroom {
    /// A cost the link failed to carry, ruled out until `until`.
    ruled_out: Option<(u64, Instant)>,
    /// Upgrades in a row that the link could not carry.
    strikes: u32,
    /// When the allocation last went up.
    last_upgrade: Option<Instant>,
}

impl Headroom {
    /// The budget for video at `now`, given the `estimate` for video and what the allocation
    /// in force `costs`.
    pub fn budget(&mut self, now: Instant, estimate: u64, costs: u64) -> u64 {
        self.forget_old_strikes(now);
        // A tenth of slack: layer rates are measured, and wobble with keyframes.
        if costs > 0 && estimate < costs.saturating_mul(9) / 10 {
            let failed_upgrade = self
                .last_upgrade
                .is_some_and(|at| now.saturating_duration_since(at) < STABLE_AFTER);
            self.strikes = if failed_upgrade { self.strikes + 1 } else { 0 };
            let backoff = (FIRST_BACKOFF * 2u32.pow(self.strikes.min(4))).min(MAX_BACKOFF);
            self.ruled_out = Some((costs, now + backoff));
            // The failure is counted; the upgrade that caused it is not counted twice.
            self.last_upgrade = None;
        }
        match self.ruled_out {
            Some((cost, until)) if now < until => estimate.min(cost.saturating_sub(1)),
            Some(_) => {
                self.ruled_out = None;
                estimate
            }
            None => estimate,
        }
    }

    /// The allocation went up at `now`.
    pub fn upgraded(&mut self, now: Instant) {
        self.last_upgrade = Some(now);
    }

    /// An upgrade that has held for [`STABLE_AFTER`] clears the strikes.
    fn forget_old_strikes(&mut self, now: Instant) {
        if self
            .last_upgrade
            .is_some_and(|at| now.saturating_duration_since(at) >= STABLE_AFTER)
        {
            self.strikes = 0;
            self.last_upgrade = None;
        }
    }
}

#[cfg(test)]
mod tests;
