//! Transport-wide congestion control toward one subscriber, in a single interceptor: it numbers
//! every departing RTP packet (the transport-wide sequence number the client reports on),
//! remembers when each left and how large it was, and hands the client's transport feedback
//! to Google congestion control, whose estimate picks the subscriber's simulcast layers.
//!
//! webrtc-rs offers the same as two interceptors (a numbering one and a send history). Their
//! history keys every packet in three hash maps and allocates the extension bytes twice per
//! packet: 316 ns a packet against 96 ns here (`cargo bench -p hearth-media --bench
//! congestion`; docs/performance.md). Here the numbers are handed out in order, so the history is a
//! queue indexed by sequence number: recording a packet is a push, a report a lookup by
//! offset, and the extension bytes come from a static table.

use rtc::interceptor::{
    Acknowledgement, BandwidthEstimator, Interceptor, Packet, PacketReport, StreamInfo,
    TaggedPacket, convert_twcc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The header extension that carries the transport-wide sequence number.
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// A packet not acknowledged within this long is forgotten unreported (as webrtc-rs's history
/// does): feedback that late says nothing about the link now.
const HORIZON: Duration = Duration::from_secs(2);

/// At most this many packets are remembered: about 5 s of a 16-person meeting's traffic to one
/// subscriber. Must stay below 32 768, so that a sequence number older than the oldest record
/// cannot be mistaken for a recent one after the 16-bit wrap.
const MAX_RECORDS: usize = 16_384;

/// The extension's two bytes for every sequence number, so numbering a packet allocates nothing.
static SEQUENCE_BYTES: [[u8; 2]; 65_536] = {
    let mut table = [[0u8; 2]; 65_536];
    let mut i = 0;
    while i < table.len() {
        table[i] = (i as u16).to_be_bytes();
        i += 1;
    }
    table
};

/// One departed packet, until the client reports on it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    ssrc: u32,
    rtp_sequence_number: u16,
    size: usize,
    departure: Instant,
    acknowledgement: Option<Acknowledgement>,
}

/// See the module docs. Sits wire-most (`Slot::CongestionControl`), so retransmissions are
/// numbered too and the departure recorded is the last thing before the wire.
pub struct TransportCc<E> {
    estimator: E,
    /// Where each new estimate goes, bits per second. Left alone (0) until the estimate first
    /// moves from where the estimator started: the allocation treats 0 as "no feedback yet".
    estimate: Arc<AtomicU64>,
    last_target: f64,
    /// SSRC -> extension id, for the streams that negotiated the extension (a few dozen at
    /// most, so a list beats a map).
    streams: Vec<(u32, u8)>,
    /// `sent[i]` carries the unwrapped sequence number `first + i`.
    sent: VecDeque<Sent>,
    first: u64,
    /// The highest sequence number reported as arrived and not yet handed to the estimator.
    highest_arrived: Option<u64>,
    /// Reused for every feedback.
    reports: Vec<PacketReport>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<E: BandwidthEstimator> TransportCc<E> {
    /// Numbers packets and feeds `estimator`, storing each estimate (bits per second) in
    /// `estimate`.
    pub fn new(estimator: E, estimate: Arc<AtomicU64>) -> Self {
        Self {
            last_target: estimator.target_bitrate(),
            estimator,
            estimate,
            streams: Vec::new(),
            sent: VecDeque::new(),
            first: 0,
            highest_arrived: None,
            reports: Vec::new(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    fn next_sequence(&self) -> u64 {
        self.first + self.sent.len() as u64
    }

    fn forget_oldest(&mut self) {
        if self.sent.pop_front().is_some() {
            self.first += 1;
        }
    }

    fn record(&mut self, rtp: &mut rtc::rtp::Packet, ext_id: u8, now: Instant) {
        if self.sent.len() >= MAX_RECORDS {
            self.forget_oldest();
        }
        let sequence = self.next_sequence();
        let bytes = &SEQUENCE_BYTES[usize::from(sequence as u16)];
        if rtp
            .header
            .set_extension(ext_id, bytes::Bytes::from_static(bytes))
            .is_err()
        {
            // An id the header's profile cannot carry: send the packet unnumbered.
            return;
        }
        self.sent.push_back(Sent {
            ssrc: rtp.header.ssrc,
            rtp_sequence_number: rtp.header.sequence_number,
            size: rtp.marshal_size(),
            departure: now,
            acknowledgement: None,
        });
    }

    /// Marks what the feedback acknowledges; true if it named anything this endpoint sent.
    fn acknowledge(&mut self, feedback: &TransportLayerCc) -> bool {
        let mut known = false;
        for ack in convert_twcc(feedback) {
            // The offset from the oldest record, modulo 2^16: a number older than that record
            // comes out at 2^16 minus a little, far past the end of the queue.
            let offset = usize::from(ack.sequence_number.wrapping_sub(self.first as u16));
            let Some(sent) = self.sent.get_mut(offset) else {
                continue;
            };
            known = true;
            sent.acknowledgement = Some(ack);
            if ack.arrived {
                let sequence = self.first + offset as u64;
                self.highest_arrived =
                    Some(self.highest_arrived.map_or(sequence, |h| h.max(sequence)));
            }
        }
        known
    }

    /// Everything up to the highest arrived packet, in send order, to the estimator; what was
    /// not reported as arrived by then counts as lost. Loss alone reports nothing: a lost packet
    /// is only known lost once a later one arrived.
    fn report(&mut self, now: Instant) {
        if let Some(highest) = self.highest_arrived.take() {
            while self.first <= highest {
                let Some(sent) = self.sent.pop_front() else {
                    break;
                };
                let ack = sent.acknowledgement;
                self.reports.push(PacketReport {
                    ssrc: sent.ssrc,
                    id: self.first,
                    rtp_sequence_number: sent.rtp_sequence_number,
                    is_twcc: true,
                    twcc_sequence_number: self.first as u16,
                    size: sent.size,
                    arrived: ack.is_some_and(|a| a.arrived),
                    departure: sent.departure,
                    arrival: ack.and_then(|a| a.arrival),
                    ecn: ack.map_or(Default::default(), |a| a.ecn),
                });
                self.first += 1;
            }
        }
        self.estimator.on_reports(now, &self.reports);
        self.reports.clear();
        let target = self.estimator.target_bitrate();
        if target != self.last_target {
            self.last_target = target;
            self.estimate.store(target as u64, Ordering::Relaxed);
        }
    }

    fn prune(&mut self, now: Instant) {
        let Some(cutoff) = now.checked_sub(HORIZON) else {
            return;
        };
        while self.sent.front().is_some_and(|s| s.departure < cutoff) {
            self.forget_oldest();
        }
    }
}

impl<E: BandwidthEstimator> Protocol<TaggedPacket, TaggedPacket, ()> for TransportCc<E> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let mut reported = false;
            for feedback in packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>())
            {
                reported |= self.acknowledge(feedback);
            }
            if reported {
                self.report(msg.now);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let now = msg.now;
        if let Packet::Rtp(rtp) = &mut msg.message.packet {
            let ssrc = rtp.header.ssrc;
            if let Some(&(_, ext_id)) = self.streams.iter().find(|(s, _)| *s == ssrc) {
                self.record(rtp, ext_id, now);
            }
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.prune(now);
        self.estimator.handle_timeout(now);
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        self.estimator.poll_timeout()
    }
}

impl<E: BandwidthEstimator> Interceptor for TransportCc<E> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let Some(ext) = info
            .rtp_header_extensions
            .iter()
            .find(|ext| ext.uri == TRANSPORT_CC_URI && ext.id != 0)
        else {
            return;
        };
        self.streams.retain(|(ssrc, _)| *ssrc != info.ssrc);
        self.streams.push((info.ssrc, ext.id as u8));
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.retain(|(ssrc, _)| *ssrc != info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests;
