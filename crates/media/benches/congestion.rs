//! What transport-wide congestion control costs per packet sent to one subscriber: webrtc-rs's
//! two interceptors (numbering, then the send history) against Hearth's single one
//! (`hearth_media::congestion`), both feeding the same Google congestion control. Each
//! iteration sends one 1200-byte packet through; every 20th also brings the feedback that
//! acknowledges the last 20, as a client sends ten times a second at ~200 packets a second.
//!
//! `cargo bench -p hearth-media --bench congestion`

use criterion::{Criterion, criterion_group, criterion_main};
use hearth_media::congestion::TransportCc;
use rtc::interceptor::{
    AttributedPacket, CongestionControlBuilder, Gcc, Interceptor, Packet, RTPHeaderExtension,
    StreamInfo, TaggedPacket, TwccSenderBuilder,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
    TransportLayerCc,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportMessage;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SSRC: u32 = 0x1234_5678;
const EXT: u16 = 5;
const PER_FEEDBACK: u16 = 20;

fn stream() -> StreamInfo {
    StreamInfo {
        ssrc: SSRC,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01".into(),
            id: EXT,
        }],
        ..Default::default()
    }
}

fn gcc() -> Gcc {
    Gcc::new(1_000_000.0, rtc::interceptor::GCC_MIN_BITRATE, 50_000_000.0)
}

fn packet(seq: u16, now: Instant) -> TaggedPacket {
    let mut rtp = rtc::rtp::Packet::default();
    rtp.header.version = 2;
    rtp.header.ssrc = SSRC;
    rtp.header.sequence_number = seq;
    rtp.header.timestamp = u32::from(seq) * 3000;
    rtp.payload = bytes::Bytes::from_static(&[0x5a; 1200]);
    message(Packet::Rtp(rtp), now)
}

fn message(packet: Packet, now: Instant) -> TaggedPacket {
    TransportMessage {
        now,
        transport: Default::default(),
        message: AttributedPacket::new(packet),
    }
}

/// Acknowledges the `PER_FEEDBACK` transport-wide numbers from `base`, all arrived.
fn feedback(base: u16, now: Instant) -> TaggedPacket {
    let fb = TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: SSRC,
        base_sequence_number: base,
        packet_status_count: PER_FEEDBACK,
        reference_time: 0,
        fb_pkt_count: 0,
        packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
            run_length: PER_FEEDBACK,
        })],
        recv_deltas: (0..PER_FEEDBACK)
            .map(|_| RecvDelta {
                type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                delta: 5000,
            })
            .collect(),
    };
    message(Packet::Rtcp(vec![Box::new(fb)]), now)
}

/// Drives a chain of interceptors, application side first, for one packet (and its feedback).
fn send(chain: &mut [&mut dyn Interceptor], seq: u16, start: Instant) {
    let now = start + Duration::from_millis(u64::from(seq) * 5);
    let mut msg = packet(seq, now);
    for stage in chain.iter_mut() {
        stage.handle_write(msg).expect("write");
        msg = stage.poll_write().expect("passes through");
    }
    black_box(msg);
    if seq % PER_FEEDBACK == PER_FEEDBACK - 1 {
        let mut msg = feedback(seq + 1 - PER_FEEDBACK, now + Duration::from_millis(20));
        for stage in chain.iter_mut().rev() {
            stage.handle_read(msg).expect("read");
            msg = stage.poll_read().expect("passes through");
        }
        black_box(msg);
    }
}

fn congestion(c: &mut Criterion) {
    let mut group = c.benchmark_group("congestion_per_packet");
    group.bench_function("webrtc-rs TwccSender + CongestionControl", |b| {
        let mut numbering = TwccSenderBuilder::new().build();
        let mut history = CongestionControlBuilder::new(gcc()).build();
        numbering.bind_local_stream(&stream());
        history.bind_local_stream(&stream());
        let start = Instant::now();
        let mut seq: u16 = 0;
        b.iter(|| {
            send(&mut [&mut numbering, &mut history], seq, start);
            seq = seq.wrapping_add(1);
        });
    });
    group.bench_function("hearth TransportCc", |b| {
        let mut cc = TransportCc::new(gcc(), Arc::default());
        cc.bind_local_stream(&stream());
        let start = Instant::now();
        let mut seq: u16 = 0;
        b.iter(|| {
            send(&mut [&mut cc], seq, start);
            seq = seq.wrapping_add(1);
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = congestion
}
criterion_main!(benches);
