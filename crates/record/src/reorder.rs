//! Puts a stream's RTP packets back in sequence order, waiting a bounded time for late and
//! retransmitted ones, and says where packets were lost for good.
//!
//! Recording does not compete with playout deadlines, so the wait can be generous: the SFU's
//! NACKs bring most lost packets back within a round trip, and every packet recovered here is a
//! frame the recording keeps.

use rtc::rtp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a hole in the sequence may stay open before the packets after it are released and
/// the hole counts as loss. Covers a NACK round trip on a poor link several times over.
pub const MAX_WAIT: Duration = Duration::from_millis(300);

/// Most packets held while waiting for a hole to fill: about a second of 1.5 Mbit/s video, so a
/// flood cannot grow the buffer without bound.
pub const MAX_HELD: usize = 256;

/// A sequence jump this large is not loss but a restarted stream: start over from it.
const RESTART_JUMP: u64 = 3000;

/// What comes out of the buffer, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    /// The next packet in sequence.
    Packet(rtp::Packet),
    /// One or more packets before the next one will never come.
    Lost,
}

/// The reorder buffer of one stream. Time is passed in.
#[derive(Debug, Default)]
pub struct Reorder {
    /// Extended sequence number of the next packet to release; `None` before the first.
    next: Option<u64>,
    /// Highest extended sequence number seen, to extend the next 16-bit one.
    highest: u64,
    held: BTreeMap<u64, (rtp::Packet, Instant)>,
}

impl Reorder {
    /// A buffer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Extends a 16-bit sequence number to the one nearest the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(_) = self.next else {
            // Start high enough that early packets of the first cycle stay positive.
            self.highest = (1u64 << 32) + u64::from(seq);
            return self.highest;
        };
        let cycle = self.highest & !0xffff;
        let candidates = [
            cycle.wrapping_sub(0x1_0000) + u64::from(seq),
            cycle + u64::from(seq),
            cycle + 0x1_0000 + u64::from(seq),
        ];
        let ext = candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(self.highest))
            .unwrap_or(cycle + u64::from(seq));
        self.highest = self.highest.max(ext);
        ext
    }

    /// Takes one packet that arrived at `now`, and appends to `out` whatever can be released.
    pub fn push(&mut self, packet: rtp::Packet, now: Instant, out: &mut Vec<Ordered>) {
        let ext = self.extend(packet.header.sequence_number);
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            return; // a duplicate, or a retransmission that came too late
        }
        if ext - next > RESTART_JUMP {
            // The sender restarted its sequence (or jumped far): what is held is stale.
            self.held.clear();
            self.next = Some(ext);
            out.push(Ordered::Lost);
        }
        self.held.entry(ext).or_insert((packet, now));
        self.release(now, out);
    }

    /// Releases what waited too long; call regularly even when no packets arrive.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Ordered>) {
        self.release(now, out);
    }

    fn release(&mut self, now: Instant, out: &mut Vec<Ordered>) {
        loop {
            let Some(next) = self.next else { return };
            if let Some((packet, _)) = self.held.remove(&next) {
                out.push(Ordered::Packet(packet));
                self.next = Some(next + 1);
                continue;
            }
            // A hole at `next`. Give up on it when the oldest packet behind it has waited long
            // enough, or when too many are waiting.
            let oldest_wait = self
                .held
                .values()
                .map(|(_, at)| now.saturating_duration_since(*at))
                .max();
            match oldest_wait {
                Some(waited) if waited >= MAX_WAIT || self.held.len() >= MAX_HELD => {
                    let (&first, _) = self
                        .held
                        .first_key_value()
                        .expect("oldest_wait is Some, so something is held");
                    self.next = Some(first);
                    out.push(Ordered::Lost);
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn packet(seq: u16) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.sequence_number = seq;
        p
    }

    fn seqs(out: &[Ordered]) -> Vec<Option<u16>> {
        out.iter()
            .map(|o| match o {
                Ordered::Packet(p) => Some(p.header.sequence_number),
                Ordered::Lost => None,
            })
            .collect()
    }

    #[test]
    fn late_packets_are_put_back_in_order() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        for seq in [10, 12, 11, 13] {
            r.push(packet(seq), t0, &mut out);
        }
        assert_eq!(seqs(&out), vec![Some(10), Some(11), Some(12), Some(13)]);
    }

    #[test]
    fn a_hole_is_declared_lost_after_the_wait_and_later_arrivals_are_ignored() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        r.push(packet(1), t0, &mut out);
        r.push(packet(3), t0, &mut out);
        r.tick(t0 + MAX_WAIT / 2, &mut out);
        assert_eq!(seqs(&out), vec![Some(1)], "still waiting for 2");
        r.tick(t0 + MAX_WAIT, &mut out);
        assert_eq!(seqs(&out), vec![Some(1), None, Some(3)]);
        r.push(packet(2), t0 + MAX_WAIT * 2, &mut out);
        assert_eq!(out.len(), 3, "too late: dropped, not released out of order");
    }

    #[test]
    fn a_retransmission_within_the_wait_fills_the_hole() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        r.push(packet(1), t0, &mut out);
        r.push(packet(3), t0, &mut out);
        r.push(packet(2), t0 + Duration::from_millis(120), &mut out);
        assert_eq!(seqs(&out), vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        for seq in [65534, 0, 65535, 1] {
            r.push(packet(seq), t0, &mut out);
        }
        assert_eq!(seqs(&out), vec![Some(65534), Some(65535), Some(0), Some(1)]);
    }

    #[test]
    fn the_buffer_never_holds_more_than_its_bound() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        r.push(packet(0), t0, &mut out);
        // 1 never comes; a flood behind it must not be held forever.
        for seq in 2..2000u16 {
            r.push(packet(seq), t0, &mut out);
            assert!(r.held() <= MAX_HELD);
        }
        assert!(out.contains(&Ordered::Lost));
        assert_eq!(
            seqs(&out).last().copied().flatten(),
            Some(1999),
            "everything after the hole came out in order"
        );
    }

    #[test]
    fn duplicates_are_dropped() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        let mut out = Vec::new();
        for seq in [5, 5, 6, 5, 6, 7] {
            r.push(packet(seq), t0, &mut out);
        }
        assert_eq!(seqs(&out), vec![Some(5), Some(6), Some(7)]);
    }
}
