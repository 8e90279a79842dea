//! Which video frames arrived whole: what a decoder could show. A frame is the packets of one
//! RTP timestamp, from the one that starts it (the VP8 start-of-partition bit) to the one with
//! the marker bit; it is complete once every sequence number in between has arrived, in any
//! order (retransmissions arrive late). A frame still missing packets when `WINDOW` newer
//! frames have arrived is lost.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Frames tracked at once. At 30 frames a second, about two seconds: longer than any
/// retransmission takes to arrive.
const WINDOW: usize = 64;

/// A gap between complete frames at least this long is a freeze a viewer would notice.
pub const FREEZE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
struct Parts {
    /// When the frame's first packet arrived, counted in frames: see `FrameTracker::seen`.
    order: u64,
    first: Option<u16>,
    last: Option<u16>,
    seqs: Vec<u16>,
}

/// Counts complete frames of one video track.
#[derive(Debug, Clone, Default)]
pub struct FrameTracker {
    pending: BTreeMap<u32, Parts>,
    /// Timestamps of frames counted already (complete or given up), so that a late duplicate
    /// does not open them again. At most `2 * WINDOW`.
    done: VecDeque<u32>,
    /// Distinct frames seen so far.
    seen: u64,
    /// Frames whose every packet arrived.
    pub complete: u64,
    /// Frames given up on: `WINDOW` newer frames arrived while they still missed packets.
    pub incomplete: u64,
    /// Gaps of at least [`FREEZE`] between complete frames.
    pub freezes: u64,
    last_complete_at: Option<Instant>,
}

impl FrameTracker {
    /// Notes one packet of the frame at `timestamp`. `starts` and `ends` say whether it is the
    /// frame's first and last packet.
    pub fn packet(&mut self, timestamp: u32, seq: u16, starts: bool, ends: bool, now: Instant) {
        if self.done.contains(&timestamp) {
            return; // a retransmission of a frame already counted
        }
        let seen = self.seen;
        let parts = self.pending.entry(timestamp).or_insert_with(|| Parts {
            order: seen,
            ..Parts::default()
        });
        let opened = parts.order == seen;
        if opened {
            self.seen += 1;
        }
        if parts.seqs.contains(&seq) {
            return; // a duplicate (a retransmission of something that did arrive)
        }
        parts.seqs.push(seq);
        if starts {
            parts.first = Some(seq);
        }
        if ends {
            parts.last = Some(seq);
        }
        if let (Some(first), Some(last)) = (parts.first, parts.last) {
            let expected = usize::from(last.wrapping_sub(first)) + 1;
            if parts.seqs.len() >= expected {
                self.pending.remove(&timestamp);
                self.remember(timestamp);
                self.complete += 1;
                if self
                    .last_complete_at
                    .is_some_and(|at| now.saturating_duration_since(at) >= FREEZE)
                {
                    self.freezes += 1;
                }
                self.last_complete_at = Some(now);
            }
        }
        if opened {
            self.give_up_on_old_frames();
        }
    }

    fn give_up_on_old_frames(&mut self) {
        let horizon = self.seen.saturating_sub(WINDOW as u64);
        let stale: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, parts)| parts.order < horizon)
            .map(|(ts, _)| *ts)
            .collect();
        for ts in stale {
            self.pending.remove(&ts);
            self.remember(ts);
            self.incomplete += 1;
        }
    }

    fn remember(&mut self, timestamp: u32) {
        if self.done.len() == 2 * WINDOW {
            self.done.pop_front();
        }
        self.done.push_back(timestamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_complete_in_any_order_and_lost_ones_are_counted() {
        let mut f = FrameTracker::default();
        let now = Instant::now();
        // Frame at ts 100: seqs 10..=12, the middle one late (a retransmission), then again.
        f.packet(100, 10, true, false, now);
        f.packet(100, 12, false, true, now);
        assert_eq!(f.complete, 0);
        f.packet(100, 11, false, false, now);
        assert_eq!(f.complete, 1);
        f.packet(100, 11, false, false, now); // a duplicate changes nothing
        assert_eq!(f.complete, 1);
        // Frame at ts 200 never gets its middle packet.
        f.packet(200, 13, true, false, now);
        f.packet(200, 15, false, true, now);
        for i in 0..WINDOW as u32 {
            let seq = 16 + i as u16;
            f.packet(300 + i, seq, true, true, now);
        }
        assert_eq!(f.complete, 1 + WINDOW as u64);
        assert_eq!(f.incomplete, 1);
        // A late retransmission of a frame counted already opens nothing.
        f.packet(100, 11, false, false, now);
        f.packet(200, 14, false, false, now);
        assert_eq!((f.complete, f.incomplete), (1 + WINDOW as u64, 1));
        assert!(f.pending.is_empty());
    }

    #[test]
    fn a_long_gap_between_frames_is_a_freeze() {
        let mut f = FrameTracker::default();
        let t = Instant::now();
        f.packet(1, 1, true, true, t);
        f.packet(2, 2, true, true, t + Duration::from_millis(33));
        f.packet(3, 3, true, true, t + Duration::from_millis(900));
        assert_eq!((f.complete, f.freezes), (3, 1));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut f = FrameTracker::default();
        let now = Instant::now();
        f.packet(7, 65535, true, false, now);
        f.packet(7, 0, false, true, now);
        assert_eq!(f.complete, 1);
    }
}
