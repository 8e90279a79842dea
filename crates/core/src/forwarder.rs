//! The per-subscriber forwarding decision: forward this packet or drop it, and if forwarding,
//! with which sequence number and timestamp.
//!
//! Each subscriber of each track owns one [`Forwarder`]. The publisher's numbering is not the
//! subscriber's: when the SFU drops packets for one subscriber (its queue overflowed, it joined
//! mid-frame), that subscriber must still see a gap-free sequence starting on a keyframe, or its
//! browser would NACK packets that will never come and show a frozen, smeared picture. SSRC and
//! payload type are fixed per subscriber connection and applied by the media adapter.

/// What the forwarder needs to know about an incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// The publisher's RTP sequence number.
    pub seq: u16,
    /// The publisher's RTP timestamp.
    pub timestamp: u32,
    /// Whether the packet starts a keyframe (see [`crate::is_keyframe`]).
    pub keyframe: bool,
}

/// The numbering a forwarded packet gets on the subscriber's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Sequence number for the subscriber.
    pub seq: u16,
    /// Timestamp for the subscriber.
    pub timestamp: u32,
}

/// The decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it, renumbered.
    Forward(Rewrite),
    /// Do not send it. `request_keyframe` is set when the subscriber is waiting for a keyframe
    /// that the publisher should be asked for.
    Drop {
        /// Ask the publisher for a keyframe (throttled upstream).
        request_keyframe: bool,
    },
}

/// Per-subscriber, per-track forwarding state. See the module docs.
#[derive(Debug, Clone)]
pub struct Forwarder {
    /// Video waits for a keyframe after a gap; audio frames stand alone.
    video: bool,
    /// Set until the next keyframe may be forwarded.
    waiting_for_keyframe: bool,
    /// Whether anything was forwarded yet (then `last_out_seq` is meaningful).
    started: bool,
    /// out_seq = in_seq - seq_offset (wrapping).
    seq_offset: u16,
    /// out_ts = in_ts - ts_offset (wrapping). Constant while the source is one stream; it moves
    /// only when the source changes (layer switches), keeping the subscriber's clock smooth.
    ts_offset: u32,
    /// Highest input sequence number forwarded so far.
    highest_in_seq: u16,
    /// Input sequence number at which forwarding last (re)started; anything older belongs to a
    /// stretch the subscriber never saw and must not be sent.
    resume_in_seq: u16,
    /// Last output sequence number sent.
    last_out_seq: u16,
}

/// `a` is newer than `b` in RTP sequence space (RFC 3550 wrap-around).
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Forwarder {
    /// A forwarder for a new subscriber. Video starts by waiting for a keyframe; audio forwards
    /// at once.
    pub fn new(video: bool) -> Self {
        Self {
            video,
            waiting_for_keyframe: video,
            started: false,
            seq_offset: 0,
            ts_offset: 0,
            highest_in_seq: 0,
            resume_in_seq: 0,
            last_out_seq: 0,
        }
    }

    /// Whether the subscriber is waiting for a keyframe.
    pub fn is_waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    /// Packets for this subscriber were lost before reaching the forwarder (its queue overflowed)
    /// or its connection was (re)established: video must restart at a keyframe. Audio carries on;
    /// its gap is ordinary loss that the decoder conceals.
    pub fn on_gap(&mut self) {
        if self.video {
            self.waiting_for_keyframe = true;
        }
    }

    /// Decides what to do with the next packet from the publisher.
    pub fn on_packet(&mut self, meta: PacketMeta) -> Decision {
        if self.waiting_for_keyframe {
            if !meta.keyframe {
                return Decision::Drop {
                    request_keyframe: true,
                };
            }
            self.resume_at(meta.seq);
        } else if !self.started {
            self.resume_at(meta.seq);
        } else if seq_newer(meta.seq, self.highest_in_seq) {
            self.highest_in_seq = meta.seq;
        } else if seq_newer(self.resume_in_seq, meta.seq) {
            // A late packet from before the point where this subscriber's stream begins.
            return Decision::Drop {
                request_keyframe: false,
            };
        }
        let seq = meta.seq.wrapping_sub(self.seq_offset);
        if seq_newer(seq, self.last_out_seq) || !self.started {
            self.last_out_seq = seq;
        }
        self.started = true;
        Decision::Forward(Rewrite {
            seq,
            timestamp: meta.timestamp.wrapping_sub(self.ts_offset),
        })
    }

    /// (Re)starts forwarding at input sequence `seq`, so that its output number directly follows
    /// the last one sent.
    fn resume_at(&mut self, seq: u16) {
        if self.started {
            self.seq_offset = seq.wrapping_sub(self.last_out_seq.wrapping_add(1));
        }
        self.waiting_for_keyframe = false;
        self.highest_in_seq = seq;
        self.resume_in_seq = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, timestamp: u32, keyframe: bool) -> PacketMeta {
        PacketMeta {
            seq,
            timestamp,
            keyframe,
        }
    }

    fn forwarded(d: Decision) -> Rewrite {
        match d {
            Decision::Forward(r) => r,
            Decision::Drop { .. } => panic!("expected forward, got {d:?}"),
        }
    }

    #[test]
    fn video_waits_for_a_keyframe_and_asks_for_one() {
        let mut f = Forwarder::new(true);
        assert_eq!(
            f.on_packet(pkt(10, 900, false)),
            Decision::Drop {
                request_keyframe: true
            }
        );
        let r = forwarded(f.on_packet(pkt(11, 3000, true)));
        assert_eq!(r.timestamp, 3000);
        let r2 = forwarded(f.on_packet(pkt(12, 3000, false)));
        assert_eq!(r2.seq, r.seq.wrapping_add(1));
    }

    #[test]
    fn audio_forwards_immediately_and_unchanged_numbering() {
        let mut f = Forwarder::new(false);
        assert_eq!(forwarded(f.on_packet(pkt(500, 48_000, false))).seq, 500);
        assert_eq!(forwarded(f.on_packet(pkt(501, 48_960, false))).seq, 501);
        f.on_gap();
        // A gap in audio is plain loss; no waiting.
        assert_eq!(forwarded(f.on_packet(pkt(510, 57_600, false))).seq, 510);
    }

    #[test]
    fn sequence_stays_continuous_across_an_overflow_gap() {
        let mut f = Forwarder::new(true);
        let first = forwarded(f.on_packet(pkt(100, 0, true))).seq;
        forwarded(f.on_packet(pkt(101, 0, false)));
        f.on_gap(); // packets 102..=149 never reach the forwarder
        for seq in 150..160 {
            assert!(matches!(
                f.on_packet(pkt(seq, 9000, false)),
                Decision::Drop { .. }
            ));
        }
        let resumed = forwarded(f.on_packet(pkt(160, 18_000, true)));
        assert_eq!(
            resumed.seq,
            first.wrapping_add(2),
            "no hole for the subscriber"
        );
        assert_eq!(resumed.timestamp, 18_000, "timestamps keep real time");
        let next = forwarded(f.on_packet(pkt(161, 18_000, false)));
        assert_eq!(next.seq, first.wrapping_add(3));
    }

    #[test]
    fn continuity_survives_sequence_wrap_around() {
        let mut f = Forwarder::new(true);
        forwarded(f.on_packet(pkt(65_534, 0, true)));
        assert_eq!(forwarded(f.on_packet(pkt(65_535, 0, false))).seq, 65_535);
        assert_eq!(forwarded(f.on_packet(pkt(0, 0, false))).seq, 0);
        f.on_gap();
        let r = forwarded(f.on_packet(pkt(40, 0, true)));
        assert_eq!(r.seq, 1);
    }

    #[test]
    fn reordered_packets_keep_their_relative_numbers() {
        let mut f = Forwarder::new(true);
        forwarded(f.on_packet(pkt(10, 0, true)));
        assert_eq!(forwarded(f.on_packet(pkt(12, 0, false))).seq, 12);
        assert_eq!(forwarded(f.on_packet(pkt(11, 0, false))).seq, 11);
        assert_eq!(forwarded(f.on_packet(pkt(13, 0, false))).seq, 13);
    }

    #[test]
    fn late_packets_from_before_the_resume_point_are_dropped() {
        let mut f = Forwarder::new(true);
        forwarded(f.on_packet(pkt(10, 0, true)));
        f.on_gap();
        let r = forwarded(f.on_packet(pkt(50, 0, true)));
        assert_eq!(r.seq, 11);
        // Packet 45 arrives late: it belongs to the dropped stretch and would collide with
        // numbers already used.
        assert_eq!(
            f.on_packet(pkt(45, 0, false)),
            Decision::Drop {
                request_keyframe: false
            }
        );
    }
}
