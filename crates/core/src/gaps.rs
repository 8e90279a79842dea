//! Loss on the way in, seen from the sequence numbers of one RTP stream as Hearth reads it.
//!
//! A publisher's packet can be lost before Hearth forwards it in two places: on the network,
//! and inside the WebRTC stack, whose per-track queue drops packets when the reader falls
//! behind (an overloaded server). Neither reaches Hearth as an event; both leave a hole in the
//! sequence numbers Hearth reads. Counting the holes, and the packets that arrive after a later
//! one (reordered, or retransmitted after a NACK), tells an operator how much was lost before
//! forwarding: holes minus late arrivals.

/// A jump forward larger than this is a restarted stream, not loss (RFC 3550 A.1's
/// `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// A packet further behind than this is a restarted stream, not a late one (`MAX_MISORDER`).
const MAX_MISORDER: u16 = 100;

/// What one packet told about its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrival {
    /// Sequence numbers skipped before this packet.
    pub skipped: u64,
    /// This packet came after a later one: reordered, or a retransmission filling a hole.
    pub late: bool,
}

/// The highest sequence number seen on one stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceGaps {
    highest: Option<u16>,
}

impl SequenceGaps {
    /// A stream not seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a packet with sequence number `seq`.
    pub fn note(&mut self, seq: u16) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return Arrival::default();
        };
        let ahead = seq.wrapping_sub(highest);
        let behind = highest.wrapping_sub(seq);
        if ahead == 0 {
            // A duplicate: neither a hole nor late.
            Arrival::default()
        } else if ahead <= MAX_DROPOUT {
            self.highest = Some(seq);
            Arrival {
                skipped: u64::from(ahead - 1),
                late: false,
            }
        } else if behind <= MAX_MISORDER {
            Arrival {
                skipped: 0,
                late: true,
            }
        } else {
            // Too far either way: the sender started over; count from here.
            self.highest = Some(seq);
            Arrival::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u16]) -> (u64, u64) {
        let mut g = SequenceGaps::new();
        seqs.iter().fold((0, 0), |(skipped, late), &s| {
            let a = g.note(s);
            (skipped + a.skipped, late + u64::from(a.late))
        })
    }

    #[test]
    fn an_unbroken_stream_has_no_holes_even_across_the_wrap() {
        assert_eq!(run(&[65533, 65534, 65535, 0, 1, 2]), (0, 0));
    }

    #[test]
    fn holes_are_counted_and_a_retransmission_filling_one_is_late() {
        // 3 and 4 lost, 7 lost; 4 comes back after a NACK.
        assert_eq!(run(&[1, 2, 5, 6, 8, 4]), (3, 1));
    }

    #[test]
    fn a_hole_across_the_wrap_is_counted() {
        assert_eq!(run(&[65534, 1]), (2, 0));
    }

    #[test]
    fn duplicates_are_neither_holes_nor_late() {
        assert_eq!(run(&[10, 11, 11, 12]), (0, 0));
    }

    #[test]
    fn a_sender_starting_over_is_not_loss() {
        // A jump of 30 000 forward, then one of 20 000 back: two restarts, no loss.
        assert_eq!(run(&[100, 101, 30_101, 30_102, 10_000, 10_001]), (0, 0));
    }
}
