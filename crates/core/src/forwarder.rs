//! The per-subscriber forwarding decision: forward this packet or drop it, and if forwarding,
//! with which sequence number and timestamp.
//!
//! Each subscriber of each track owns one [`Forwarder`]. The publisher's numbering is not the
//! subscriber's: when the SFU drops packets for one subscriber (its queue overflowed, it joined
//! mid-frame), that subscriber must still see a gap-free sequence starting on a keyframe, or its
//! browser would NACK packets that will never come and show a frozen, smeared picture. SSRC and
//! payload type are fixed per subscriber connection and applied by the media adapter.
//!
//! A simulcast track arrives as several layers (the same camera at two or three sizes), each
//! with its own sequence numbers and timestamps. The subscriber sees one stream: the forwarder
//! passes one layer, and moves to another ([`Forwarder::set_target`]) only at a keyframe of
//! the new layer, renumbering so that sequence numbers stay continuous and timestamps advance
//! by the time that really passed. Until that keyframe comes, the old layer keeps playing.

use std::time::Instant;

/// What the forwarder needs to know about an incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// The publisher's RTP sequence number (of this packet's layer).
    pub seq: u16,
    /// The publisher's RTP timestamp (of this packet's layer).
    pub timestamp: u32,
    /// Whether the packet starts a keyframe (see [`crate::is_keyframe`]).
    pub keyframe: bool,
    /// Which simulcast layer it belongs to, 0 the smallest; 0 for a track without simulcast.
    pub layer: u8,
    /// When it arrived at the SFU.
    pub at: Instant,
}

/// The numbering a forwarded packet gets on the subscriber's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Sequence number for the subscriber.
    pub seq: u16,
    /// Timestamp for the subscriber.
    pub timestamp: u32,
    /// Whether this packet switched the subscriber to a new layer (or started it).
    pub switched: bool,
}

/// The decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it, renumbered.
    Forward(Rewrite),
    /// Do not send it. `request_keyframe` is set when the subscriber is waiting for a keyframe
    /// of this packet's layer that the publisher should be asked for.
    Drop {
        /// Ask the publisher for a keyframe on this packet's layer (throttled upstream).
        request_keyframe: bool,
    },
    /// Not for this subscriber at all: a layer it does not receive, or it receives none (the
    /// tile is not shown). Not a loss.
    Skip,
}

/// Per-subscriber, per-track forwarding state. See the module docs.
#[derive(Debug, Clone)]
pub struct Forwarder {
    /// Video waits for a keyframe after a gap; audio frames stand alone.
    video: bool,
    /// RTP clock rate, to turn elapsed time into timestamp ticks at a layer switch.
    clock_rate: u32,
    /// The layer the subscriber should receive; `None`: none (video paused for it).
    target: Option<u8>,
    /// The layer being forwarded now; `None` before the first keyframe or after a pause.
    current: Option<u8>,
    /// Set until the current layer may be forwarded again (after a gap), at a keyframe.
    waiting_for_keyframe: bool,
    /// Whether anything was forwarded yet (then `last_out_*` are meaningful).
    started: bool,
    /// out_seq = in_seq - seq_offset (wrapping).
    seq_offset: u16,
    /// out_ts = in_ts - ts_offset (wrapping). Constant while the source is one layer; it moves
    /// only when the layer changes, keeping the subscriber's clock smooth.
    ts_offset: u32,
    /// Highest input sequence number forwarded so far (of the current layer).
    highest_in_seq: u16,
    /// Input sequence number at which forwarding last (re)started; anything older belongs to a
    /// stretch the subscriber never saw and must not be sent.
    resume_in_seq: u16,
    /// Last (highest) output sequence number sent, its timestamp, and when it was sent.
    last_out_seq: u16,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    /// The layer of the last packet sent: a switch away from it recomputes the timestamp offset.
    last_layer: Option<u8>,
}

/// `a` is newer than `b` in RTP sequence space (RFC 3550 wrap-around).
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Forwarder {
    /// A forwarder for a new subscriber, receiving layer 0. Video starts by waiting for a
    /// keyframe; audio forwards at once.
    pub fn new(video: bool) -> Self {
        Self {
            video,
            clock_rate: if video { 90_000 } else { 48_000 },
            target: Some(0),
            current: if video { None } else { Some(0) },
            waiting_for_keyframe: video,
            started: false,
            seq_offset: 0,
            ts_offset: 0,
            highest_in_seq: 0,
            resume_in_seq: 0,
            last_out_seq: 0,
            last_out_ts: 0,
            last_out_at: None,
            last_layer: None,
        }
    }

    /// Whether the subscriber is waiting for a keyframe (after a gap, or to switch layers).
    pub fn is_waiting_for_keyframe(&self) -> bool {
        self.target.is_some() && (self.waiting_for_keyframe || self.current != self.target)
    }

    /// The layer being forwarded now, if any.
    pub fn current_layer(&self) -> Option<u8> {
        self.current
    }

    /// The layer the subscriber should receive, if any.
    pub fn target_layer(&self) -> Option<u8> {
        self.target
    }

    /// `timestamp` of `layer`'s clock as this subscriber's clock has it, if known: `layer` is
    /// the one forwarded now, or the one the stream will start on (nothing sent yet, so it
    /// starts unshifted). How a sender report of the source maps onto the forwarded stream.
    pub fn timestamp_for(&self, layer: u8, timestamp: u32) -> Option<u32> {
        if self.current == Some(layer) {
            Some(timestamp.wrapping_sub(self.ts_offset))
        } else if !self.started && self.target == Some(layer) {
            Some(timestamp)
        } else {
            None
        }
    }

    /// Chooses the layer this subscriber should receive, or none (`None`: stop sending video,
    /// e.g. the tile is not visible). Takes effect at the target layer's next keyframe; until
    /// then the current layer carries on.
    pub fn set_target(&mut self, target: Option<u8>) {
        if !self.video || target == self.target {
            return;
        }
        self.target = target;
        if target.is_none() {
            // Whatever comes back later starts at a keyframe.
            self.current = None;
        }
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
        let Some(target) = self.target else {
            return Decision::Skip;
        };
        let from_target = meta.layer == target;
        let from_current = self.current == Some(meta.layer);
        if !from_target && !from_current {
            return Decision::Skip;
        }
        if from_target && (!from_current || self.waiting_for_keyframe) {
            // Starting, switching to, or restarting this layer: only at a keyframe.
            // (When switching, the old layer still plays meanwhile; see below.)
            if !meta.keyframe {
                return Decision::Drop {
                    request_keyframe: true,
                };
            }
            self.resume_at(meta);
            return self.forward(meta, true);
        }
        // From the current layer, which is not the target: keep it playing until the target's
        // keyframe arrives, unless it lost packets meanwhile.
        if !from_target && self.waiting_for_keyframe {
            return Decision::Drop {
                request_keyframe: false,
            };
        }
        if !self.started {
            self.resume_at(meta);
            return self.forward(meta, true);
        }
        if seq_newer(meta.seq, self.highest_in_seq) {
            self.highest_in_seq = meta.seq;
        } else if seq_newer(self.resume_in_seq, meta.seq) {
            // A late packet from before the point where this subscriber's stream begins.
            return Decision::Drop {
                request_keyframe: false,
            };
        }
        self.forward(meta, false)
    }

    fn forward(&mut self, meta: PacketMeta, switched: bool) -> Decision {
        let seq = meta.seq.wrapping_sub(self.seq_offset);
        let timestamp = meta.timestamp.wrapping_sub(self.ts_offset);
        if seq_newer(seq, self.last_out_seq) || !self.started {
            self.last_out_seq = seq;
            self.last_out_ts = timestamp;
            self.last_out_at = Some(meta.at);
        }
        self.started = true;
        self.last_layer = Some(meta.layer);
        Decision::Forward(Rewrite {
            seq,
            timestamp,
            switched,
        })
    }

    /// (Re)starts forwarding at `meta` (a keyframe, or any audio packet), so that its output
    /// number directly follows the last one sent. A different layer than the last one sent has
    /// its own clock: its timestamp is mapped to follow the last one by the time that passed.
    fn resume_at(&mut self, meta: PacketMeta) {
        if self.started {
            self.seq_offset = meta.seq.wrapping_sub(self.last_out_seq.wrapping_add(1));
            if self.last_layer != Some(meta.layer) {
                let elapsed = self.last_out_at.map_or(0.0, |at| {
                    meta.at.saturating_duration_since(at).as_secs_f64()
                });
                let ticks = ((elapsed * f64::from(self.clock_rate)) as u32).max(1);
                let out = self.last_out_ts.wrapping_add(ticks);
                self.ts_offset = meta.timestamp.wrapping_sub(out);
            }
        } else {
            self.seq_offset = 0;
            self.ts_offset = 0;
        }
        self.current = Some(meta.layer);
        self.waiting_for_keyframe = false;
        self.highest_in_seq = meta.seq;
        self.resume_in_seq = meta.seq;
    }
}

#[cfg(test)]
mod tests;
