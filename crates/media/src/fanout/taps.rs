//! What in-process consumers (the recorder) get of a track: one continuous stream, in the
//! largest layer that arrives.
//!
//! A recording stores one stream per track. A simulcast track's layers each have their own
//! SSRC, sequence numbers and clock; handed over mixed, they made a recording of 83 ms of
//! camera out of 6 s. So taps get the output of a [`Forwarder`] like a subscriber's: one
//! layer at a time, switched at keyframes, numbered continuously, on one SSRC, with sender
//! reports mapped onto the same clock.

use super::Arrival;
use hearth_core::{Decision, Forwarder};
use rtc::rtp;
use std::sync::Arc;

/// The stream taps receive from one track.
#[derive(Debug)]
pub(super) struct TapStream {
    forwarder: Forwarder,
    /// The SSRC every tapped packet carries: the first one seen.
    ssrc: Option<u32>,
}

/// What one packet means for the taps.
pub(super) enum Tapped {
    /// Offer them this.
    Packet(Arc<rtp::Packet>),
    /// Nothing for them; `request_keyframe` if the stream waits for one on this layer.
    Nothing { request_keyframe: bool },
}

impl TapStream {
    /// Video waits for [`Self::set_layer`] before anything goes out: the first packets of a
    /// simulcast track come from whichever layer starts first, and a recording should begin
    /// in the layer it keeps.
    pub(super) fn new(video: bool) -> Self {
        let mut forwarder = Forwarder::new(video);
        forwarder.set_target(None);
        Self {
            forwarder,
            ssrc: None,
        }
    }

    /// The layer taps should get (the largest one arriving).
    pub(super) fn set_layer(&mut self, layer: u8) {
        self.forwarder.set_target(Some(layer));
    }

    pub(super) fn packet(&mut self, packet: &Arc<rtp::Packet>, arrival: &Arrival) -> Tapped {
        match self.forwarder.on_packet(arrival.meta(packet)) {
            Decision::Forward(rewrite) => {
                let ssrc = *self.ssrc.get_or_insert(packet.header.ssrc);
                let header = &packet.header;
                if rewrite.seq == header.sequence_number
                    && rewrite.timestamp == header.timestamp
                    && ssrc == header.ssrc
                {
                    return Tapped::Packet(Arc::clone(packet));
                }
                let mut out = rtp::Packet::clone(packet);
                out.header.sequence_number = rewrite.seq;
                out.header.timestamp = rewrite.timestamp;
                out.header.ssrc = ssrc;
                Tapped::Packet(Arc::new(out))
            }
            Decision::Drop { request_keyframe } => Tapped::Nothing { request_keyframe },
            Decision::Skip => Tapped::Nothing {
                request_keyframe: false,
            },
        }
    }

    /// A sender report of `layer`'s stream (`rtp_time` on that layer's clock) on the taps'
    /// clock, or `None` if taps do not get that layer now.
    pub(super) fn report_time(&self, layer: u8, rtp_time: u32) -> Option<u32> {
        self.forwarder.timestamp_for(layer, rtp_time)
    }
}
