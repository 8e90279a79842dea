//! An interceptor that hands the application the RTCP it acts on: keyframe requests (PLI, FIR)
//! and sender reports.
//!
//! webrtc-rs stops inbound RTCP at the end of its interceptor chain unless an interceptor marks
//! a packet for the application. An SFU must see a subscriber's keyframe request to relay it to
//! the publisher, and the recorder needs a publisher's sender reports to line up its audio and
//! video (they map each stream's RTP clock to one wall clock). The rest (receiver reports,
//! NACKs, transport feedback) is handled inside the chain, so only these are marked.

use crate::diversion::Diversions;
use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::TransportMessage;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A sender report's stream and clock mapping: (SSRC, NTP time, RTP time).
pub(crate) fn sender_report_of(packet: &dyn rtc::rtcp::Packet) -> Option<(u32, u64, u32)> {
    packet
        .as_any()
        .downcast_ref::<SenderReport>()
        .map(|sr| (sr.ssrc, sr.ntp_time, sr.rtp_time))
}

/// Whether one RTCP packet asks for a keyframe.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The clock mapping of one sender report: the sender's wall clock (NTP format) at the moment
/// its RTP clock read `rtp_time`.
pub fn sender_report(packet: &dyn rtc::rtcp::Packet) -> Option<(u64, u32)> {
    packet
        .as_any()
        .downcast_ref::<SenderReport>()
        .map(|sr| (sr.ntp_time, sr.rtp_time))
}

/// See the module docs. Sits last in the chain so every other interceptor has seen the RTCP.
#[derive(Default)]
pub struct RtcpTap {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
    /// Publish connections: simulcast streams Hearth reads directly.
    diversions: Option<Arc<Diversions>>,
}

impl RtcpTap {
    /// A tap that also diverts the streams in `diversions` (publish connections; see
    /// [`crate::diversion`]).
    pub(crate) fn new(diversions: Option<Arc<Diversions>>) -> Self {
        Self {
            diversions,
            ..Self::default()
        }
    }

    fn deliver(&mut self, like: &TaggedPacket, packets: Vec<Box<dyn rtc::rtcp::Packet>>) {
        self.inbound.push_back(TransportMessage {
            now: like.now,
            transport: like.transport,
            message: AttributedPacket::new(Packet::Rtcp(packets))
                .with(Attribute::DeliverToApplication),
        });
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        let TransportMessage {
            now,
            transport,
            message: AttributedPacket { attributes, packet },
        } = msg;
        let packet = match (&self.diversions, packet) {
            (Some(diversions), Packet::Rtp(rtp)) => match diversions.take(rtp) {
                None => return Ok(()),
                Some(rtp) => Packet::Rtp(rtp),
            },
            (_, packet) => packet,
        };
        let msg = TransportMessage {
            now,
            transport,
            message: AttributedPacket { attributes, packet },
        };
        let Packet::Rtcp(packets) = &msg.message.packet else {
            self.inbound.push_back(msg);
            return Ok(());
        };
        let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
            .iter()
            .filter(|p| is_keyframe_request(p.as_ref()))
            .cloned()
            .collect();
        // webrtc-rs routes application RTCP to a track by the first SSRC the first packet
        // names. A sender report names its reception-report sources before its own SSRC, and a
        // compound packet may report on several streams, so each report goes alone and without
        // its reception reports: then it reaches the track it describes.
        let reports: Vec<SenderReport> = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
            .map(|sr| SenderReport {
                reports: Vec::new(),
                profile_extensions: Default::default(),
                ..sr.clone()
            })
            .collect();
        if !requests.is_empty() {
            self.deliver(&msg, requests);
        }
        for report in reports {
            self.deliver(&msg, vec![Box::new(report)]);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.outbound.pop_front()
    }
}

impl Interceptor for RtcpTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
