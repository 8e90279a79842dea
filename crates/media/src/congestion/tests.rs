use super::*;
use rtc::interceptor::{AttributedPacket, Gcc, RTPHeaderExtension};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
};
use rtc::shared::TransportMessage;
use std::sync::Mutex;

const EXT: u8 = 5;

/// An estimator that keeps what it was given, to check what the interceptor reports.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<PacketReport>>>);

impl BandwidthEstimator for Seen {
    fn on_reports(&mut self, _now: Instant, reports: &[PacketReport]) {
        self.0.lock().unwrap().extend_from_slice(reports);
    }
    fn target_bitrate(&self) -> f64 {
        // Something the test can recognise: 1000 bits per second per report so far.
        1000.0 * self.0.lock().unwrap().len() as f64
    }
}

impl Seen {
    fn take(&self) -> Vec<(u64, bool)> {
        self.0
            .lock()
            .unwrap()
            .drain(..)
            .map(|r| (r.id, r.arrived))
            .collect()
    }
}

fn stream(ssrc: u32, with_extension: bool) -> StreamInfo {
    StreamInfo {
        ssrc,
        rtp_header_extensions: if with_extension {
            vec![RTPHeaderExtension {
                uri: TRANSPORT_CC_URI.into(),
                id: u16::from(EXT),
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

fn tagged(packet: Packet, now: Instant) -> TaggedPacket {
    TransportMessage {
        now,
        transport: Default::default(),
        message: AttributedPacket::new(packet),
    }
}

fn rtp(ssrc: u32, sequence_number: u16) -> rtc::rtp::Packet {
    let mut packet = rtc::rtp::Packet::default();
    packet.header.version = 2;
    packet.header.ssrc = ssrc;
    packet.header.sequence_number = sequence_number;
    packet.payload = bytes::Bytes::from_static(&[0u8; 1000]);
    packet
}

/// Sends one packet through and returns the transport-wide number it left with, if any.
fn send<E: BandwidthEstimator>(cc: &mut TransportCc<E>, ssrc: u32, now: Instant) -> Option<u16> {
    cc.handle_write(tagged(Packet::Rtp(rtp(ssrc, 7)), now))
        .unwrap();
    let out = cc.poll_write().expect("the packet passes through");
    let Packet::Rtp(packet) = out.message.packet else {
        panic!("an RTP packet in, an RTP packet out");
    };
    packet
        .header
        .get_extension(EXT)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Transport feedback from `base` on: `true` for each packet that arrived, `false` for one lost.
fn feedback(base: u16, arrived: &[bool]) -> TransportLayerCc {
    let packet_chunks = arrived
        .iter()
        .map(|&a| {
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: if a {
                    SymbolTypeTcc::PacketReceivedSmallDelta
                } else {
                    SymbolTypeTcc::PacketNotReceived
                },
                run_length: 1,
            })
        })
        .collect();
    let recv_deltas = arrived
        .iter()
        .filter(|&&a| a)
        .map(|_| RecvDelta {
            type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
            delta: 1000,
        })
        .collect();
    TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: base,
        packet_status_count: arrived.len() as u16,
        reference_time: 0,
        fb_pkt_count: 0,
        packet_chunks,
        recv_deltas,
    }
}

fn deliver<E: BandwidthEstimator>(cc: &mut TransportCc<E>, fb: TransportLayerCc, now: Instant) {
    cc.handle_read(tagged(Packet::Rtcp(vec![Box::new(fb)]), now))
        .unwrap();
    assert!(cc.poll_read().is_some(), "feedback passes on up the chain");
}

fn with_streams(seen: &Seen) -> (TransportCc<Seen>, Arc<AtomicU64>) {
    let estimate = Arc::new(AtomicU64::new(0));
    let mut cc = TransportCc::new(seen.clone(), Arc::clone(&estimate));
    cc.bind_local_stream(&stream(10, true));
    cc.bind_local_stream(&stream(20, true));
    cc.bind_local_stream(&stream(30, false));
    (cc, estimate)
}

#[test]
fn packets_are_numbered_in_send_order_across_streams_and_only_where_negotiated() {
    let seen = Seen::default();
    let (mut cc, _) = with_streams(&seen);
    let now = Instant::now();
    let numbers: Vec<_> = [10, 20, 10, 30, 20]
        .iter()
        .map(|&s| send(&mut cc, s, now))
        .collect();
    assert_eq!(numbers, [Some(0), Some(1), Some(2), None, Some(3)]);

    cc.unbind_local_stream(&stream(10, true));
    assert_eq!(
        send(&mut cc, 10, now),
        None,
        "an unbound stream is left alone"
    );
    assert_eq!(send(&mut cc, 20, now), Some(4));
}

#[test]
fn feedback_reports_every_packet_up_to_the_last_arrival_in_send_order() {
    let seen = Seen::default();
    let (mut cc, estimate) = with_streams(&seen);
    let now = Instant::now();
    for _ in 0..6 {
        send(&mut cc, 10, now);
    }
    // 0 and 2 arrived, 1 was lost, 3 arrived; 4 and 5 not reported yet.
    deliver(&mut cc, feedback(0, &[true, false, true, true]), now);
    assert_eq!(seen.take(), [(0, true), (1, false), (2, true), (3, true)]);
    assert_eq!(
        estimate.load(Ordering::Relaxed),
        4000,
        "the estimate is published"
    );

    // 4 lost and 5 never mentioned: nothing to say until a later packet arrives.
    deliver(&mut cc, feedback(4, &[false]), now);
    assert_eq!(seen.take(), []);
    send(&mut cc, 10, now);
    deliver(&mut cc, feedback(6, &[true]), now);
    assert_eq!(seen.take(), [(4, false), (5, false), (6, true)]);

    // Feedback repeating packets already reported changes nothing.
    deliver(&mut cc, feedback(0, &[true, true]), now);
    assert_eq!(seen.take(), []);
}

#[test]
fn numbers_wrap_at_sixteen_bits_and_feedback_still_finds_its_packet() {
    let seen = Seen::default();
    let (mut cc, _) = with_streams(&seen);
    let now = Instant::now();
    for _ in 0..65_536 {
        send(&mut cc, 20, now);
    }
    assert_eq!(
        send(&mut cc, 20, now),
        Some(0),
        "65 536th packet wraps to 0"
    );
    assert_eq!(send(&mut cc, 20, now), Some(1));
    deliver(&mut cc, feedback(1, &[true]), now);
    let reports = seen.take();
    // Everything still remembered up to it is reported, the wrapped packet last; what was
    // forgotten (beyond MAX_RECORDS) is not.
    assert_eq!(reports.len(), MAX_RECORDS);
    assert_eq!(reports.last(), Some(&(65_537, true)));
}

#[test]
fn packets_unacknowledged_past_the_horizon_are_forgotten() {
    let seen = Seen::default();
    let (mut cc, _) = with_streams(&seen);
    let start = Instant::now();
    send(&mut cc, 10, start);
    send(&mut cc, 10, start + Duration::from_secs(2));
    cc.handle_timeout(start + Duration::from_millis(2_500))
        .unwrap();
    deliver(
        &mut cc,
        feedback(0, &[true, true]),
        start + Duration::from_millis(2_500),
    );
    assert_eq!(
        seen.take(),
        [(1, true)],
        "packet 0 is gone, packet 1 is not"
    );
}

#[test]
fn the_history_stays_bounded_when_no_feedback_ever_comes() {
    let seen = Seen::default();
    let (mut cc, _) = with_streams(&seen);
    let now = Instant::now();
    for _ in 0..MAX_RECORDS * 2 {
        send(&mut cc, 10, now);
    }
    assert_eq!(cc.sent.len(), MAX_RECORDS);
}

#[test]
fn google_congestion_control_gets_the_reports_and_its_estimate_is_published() {
    let estimate = Arc::new(AtomicU64::new(0));
    let mut cc = TransportCc::new(
        Gcc::new(1_000_000.0, rtc::interceptor::GCC_MIN_BITRATE, 50_000_000.0),
        Arc::clone(&estimate),
    );
    cc.bind_local_stream(&stream(10, true));
    let start = Instant::now();
    // 2 s of a 1 Mbit/s stream, every packet acknowledged 50 ms later.
    for round in 0..20u16 {
        let now = start + Duration::from_millis(100 * u64::from(round));
        for _ in 0..10 {
            send(&mut cc, 10, now);
        }
        deliver(
            &mut cc,
            feedback(round * 10, &[true; 10]),
            now + Duration::from_millis(50),
        );
    }
    let bps = estimate.load(Ordering::Relaxed);
    assert!(
        bps > 0,
        "the estimate moved and reached the subscriber's allocation"
    );
    assert!(
        cc.sent.is_empty(),
        "every acknowledged packet was handed on"
    );
}
