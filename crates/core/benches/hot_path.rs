//! Micro-benchmarks of the pure pieces on Hearth's packet and message paths: the forwarding
//! decision and keyframe detection run once per packet per subscriber, the keyframe throttle
//! once per request, the token bucket and the permission check once per client message.
//!
//! Kept short (1 s warm-up, 2 s measurement, 20 samples) so `cargo bench -p hearth-core` stays
//! under a minute; they show orders of magnitude, not fine differences.

use criterion::{Criterion, criterion_group, criterion_main};
use hearth_core::permissions::ALL_ACTIONS;
use hearth_core::{Forwarder, KeyframeThrottle, PacketMeta, TokenBucket, allowed, is_keyframe};
use hearth_proto::{Role, Shape};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Packets per video frame in the forwarding benches (a 1.5 Mbit/s, 30 fps stream is ~5).
const PACKETS_PER_FRAME: u16 = 5;

fn forwarder(c: &mut Criterion) {
    let mut group = c.benchmark_group("forwarder_on_packet");
    group.bench_function("video", |b| {
        let now = Instant::now();
        let mut f = Forwarder::new(true);
        f.on_packet(PacketMeta {
            seq: 0,
            timestamp: 0,
            keyframe: true,
            layer: 0,
            at: now,
        });
        let mut seq: u16 = 0;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let frame = u32::from(seq / PACKETS_PER_FRAME);
            f.on_packet(black_box(PacketMeta {
                seq,
                timestamp: frame.wrapping_mul(3000),
                keyframe: false,
                layer: 0,
                at: now,
            }))
        });
    });
    group.bench_function("audio", |b| {
        let now = Instant::now();
        let mut f = Forwarder::new(false);
        let mut seq: u16 = 0;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            f.on_packet(black_box(PacketMeta {
                seq,
                timestamp: u32::from(seq).wrapping_mul(960),
                keyframe: false,
                layer: 0,
                at: now,
            }))
        });
    });
    group.finish();
}

/// A 1,200-byte RTP payload starting with `head`.
fn payload(head: &[u8]) -> Vec<u8> {
    let mut p = head.to_vec();
    p.resize(1200, 0xaa);
    p
}

fn keyframe_detection(c: &mut Criterion) {
    let mut group = c.benchmark_group("is_keyframe");
    // VP8 with the extended descriptor and a two-byte PictureID, as browsers send it.
    let vp8_key = payload(&[0x90, 0x80, 0x80, 0x01, 0x10]);
    let vp8_delta = payload(&[0x90, 0x80, 0x80, 0x02, 0x11]);
    // H.264: FU-A start of an IDR slice; a STAP-A of AUD, SPS, PPS, IDR (the walk stops at the
    // SPS); a non-IDR slice.
    let h264_fu_a_idr = payload(&[0x7c, 0x85]);
    let h264_stap_a = payload(&[
        0x78, 0x00, 0x02, 0x09, 0xf0, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x03, 0x68, 0xce,
        0x3c, 0x00, 0x02, 0x65, 0x88,
    ]);
    let h264_delta = payload(&[0x41, 0x9a]);
    let cases = [
        ("vp8_key", "video/VP8", &vp8_key),
        ("vp8_delta", "video/VP8", &vp8_delta),
        ("h264_fu_a_idr", "video/H264", &h264_fu_a_idr),
        ("h264_stap_a", "video/H264", &h264_stap_a),
        ("h264_delta", "video/H264", &h264_delta),
    ];
    for (name, mime, data) in cases {
        group.bench_function(name, |b| {
            b.iter(|| is_keyframe(black_box(mime), black_box(data)));
        });
    }
    group.finish();
}

fn keyframe_throttle(c: &mut Criterion) {
    c.bench_function("keyframe_throttle_request", |b| {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        let mut i: u64 = 0;
        b.iter(|| {
            // A request every 10 ms: one in fifty goes upstream, the rest are deferred.
            i += 1;
            throttle.request(black_box(t0 + Duration::from_millis(i * 10)))
        });
    });
}

fn token_bucket(c: &mut Criterion) {
    c.bench_function("token_bucket_take", |b| {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(60, 30.0, t0);
        let mut i: u64 = 0;
        b.iter(|| {
            i += 1;
            bucket.take(black_box(t0 + Duration::from_millis(i * 20)))
        });
    });
}

fn permissions(c: &mut Criterion) {
    let roles = [Role::Host, Role::Cohost, Role::Speaker, Role::Attendee];
    let shapes = [Shape::Room, Shape::Stage];
    let cases: Vec<_> = roles
        .iter()
        .flat_map(|&r| shapes.iter().map(move |&s| (r, s)))
        .flat_map(|(r, s)| ALL_ACTIONS.iter().map(move |&a| (r, s, a)))
        .collect();
    c.bench_function("permissions_allowed", |b| {
        let mut i = 0;
        b.iter(|| {
            // Every role, shape and action in turn, so no one branch is all the predictor sees.
            i = (i + 1) % cases.len();
            let (role, shape, action) = cases[i];
            allowed(black_box(role), black_box(shape), black_box(action))
        });
    });
}

criterion_group! {
    name = hot_path;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = forwarder, keyframe_detection, keyframe_throttle, token_bucket, permissions
}
criterion_main!(hot_path);
