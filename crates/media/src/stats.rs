//! Counters of the media path, shared by every connection of a server. Read by `/metrics` and
//! by tests that check what a user would notice (a slow subscriber's drops, keyframe requests).

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters, plus one gauge; all relaxed (they are statistics, not synchronization).
#[derive(Debug, Default)]
pub struct MediaStats {
    /// RTP packets received from publishers.
    pub packets_in: AtomicU64,
    /// RTP payload bytes received from publishers.
    pub bytes_in: AtomicU64,
    /// Sequence numbers missing from publishers' streams as Hearth read them: packets lost on
    /// the network, or dropped by the WebRTC stack's queue before Hearth could read them.
    pub packets_in_missing: AtomicU64,
    /// Publishers' packets read after a later one: reordered, or retransmitted into a hole.
    pub packets_in_late: AtomicU64,
    /// RTP packets written to subscribers.
    pub packets_out: AtomicU64,
    /// RTP payload bytes written to subscribers.
    pub bytes_out: AtomicU64,
    /// Packets dropped because a subscriber's queue was full.
    pub dropped_overflow: AtomicU64,
    /// Packets dropped while a subscriber waited for a keyframe.
    pub dropped_waiting_keyframe: AtomicU64,
    /// Packets not forwarded because their publisher is muted, one per subscriber that would
    /// have had a copy (like the other drops).
    pub dropped_paused: AtomicU64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests_sent: AtomicU64,
    /// Keyframe requests coalesced or throttled instead of being sent.
    pub keyframe_requests_throttled: AtomicU64,
    /// Keyframe requests (PLI/FIR) received from subscribers.
    pub keyframe_requests_from_subscribers: AtomicU64,
    /// Times a subscriber's video moved to another simulcast layer.
    pub layer_switches: AtomicU64,
    /// Gauge, not a counter: down tracks (one per forwarded track per subscriber) alive now.
    pub subscribed_tracks: AtomicU64,
}

impl MediaStats {
    /// Adds one to a counter.
    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one from a gauge.
    pub(crate) fn decr(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
