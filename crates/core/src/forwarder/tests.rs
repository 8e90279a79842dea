//! The forwarding decision's unit tests: one subscriber's view of a publisher's packets.

use super::*;
use std::time::Duration;

fn pkt(seq: u16, timestamp: u32, keyframe: bool) -> PacketMeta {
    on_layer(0, seq, timestamp, keyframe, epoch())
}

/// One fixed instant per test run, so packet times can be written as offsets from it.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn on_layer(layer: u8, seq: u16, timestamp: u32, keyframe: bool, at: Instant) -> PacketMeta {
    PacketMeta {
        seq,
        timestamp,
        keyframe,
        layer,
        at,
    }
}

fn forwarded(d: Decision) -> Rewrite {
    match d {
        Decision::Forward(r) => r,
        Decision::Drop { .. } | Decision::Skip => panic!("expected forward, got {d:?}"),
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

/// Three layers of one camera, as a simulcast publisher sends them: per frame, a few packets
/// of each layer, each layer with its own sequence and timestamp bases.
struct Simulcast {
    seq: [u16; 3],
    ts: [u32; 3],
    frame: u32,
}

impl Simulcast {
    fn new() -> Self {
        Self {
            seq: [65_500, 1_000, 30_000],
            ts: [4_000_000_000, 12_345, 2_000_000_000],
            frame: 0,
        }
    }

    /// The next frame's packets (30 fps: 33 ms apart), all layers; `keyframe` on every layer
    /// (`key_layers` picks which).
    fn frame(&mut self, key_layers: &[u8]) -> Vec<PacketMeta> {
        let at = epoch() + Duration::from_millis(u64::from(self.frame) * 33);
        self.frame += 1;
        let mut out = Vec::new();
        for layer in 0..3u8 {
            let l = usize::from(layer);
            let key = key_layers.contains(&layer);
            for i in 0..=layer {
                out.push(on_layer(layer, self.seq[l], self.ts[l], key && i == 0, at));
                self.seq[l] = self.seq[l].wrapping_add(1);
            }
            self.ts[l] = self.ts[l].wrapping_add(3000);
        }
        out
    }
}

/// What the subscriber saw: every forwarded packet, with the layer it came from.
#[derive(Default)]
struct Seen {
    out: Vec<(PacketMeta, Rewrite)>,
}

impl Seen {
    fn run(&mut self, f: &mut Forwarder, packets: Vec<PacketMeta>) {
        for p in packets {
            if let Decision::Forward(r) = f.on_packet(p) {
                self.out.push((p, r));
            }
        }
    }
}

#[test]
fn layer_switches_start_on_a_keyframe_with_continuous_numbering() {
    let mut source = Simulcast::new();
    let mut f = Forwarder::new(true);
    let mut seen = Seen::default();
    seen.run(&mut f, source.frame(&[0, 1, 2]));
    for _ in 0..10 {
        seen.run(&mut f, source.frame(&[]));
    }
    f.set_target(Some(2));
    for _ in 0..5 {
        // No keyframe on layer 2 yet: layer 0 keeps playing.
        seen.run(&mut f, source.frame(&[]));
    }
    assert_eq!(f.current_layer(), Some(0));
    seen.run(&mut f, source.frame(&[2]));
    for _ in 0..10 {
        seen.run(&mut f, source.frame(&[]));
    }
    f.set_target(Some(1));
    seen.run(&mut f, source.frame(&[1]));
    for _ in 0..10 {
        seen.run(&mut f, source.frame(&[]));
    }
    assert_eq!(f.current_layer(), Some(1));

    let out = &seen.out;
    assert!(!out.is_empty());
    for pair in out.windows(2) {
        let ((a_in, a), (b_in, b)) = (pair[0], pair[1]);
        assert_eq!(b.seq, a.seq.wrapping_add(1), "a hole or repeat at {b_in:?}");
        let advance = b.timestamp.wrapping_sub(a.timestamp);
        assert!(
            advance < 0x8000_0000,
            "timestamp went backwards at {b_in:?}"
        );
        if a_in.layer != b_in.layer {
            assert!(
                b_in.keyframe,
                "switch to layer {} not on a keyframe",
                b_in.layer
            );
            assert!(b.switched);
            // The time that passed between the two packets, in 90 kHz ticks: here the new
            // layer's keyframe is the same frame, arriving right after the old layer's packets,
            // so at least one tick and at most a frame interval (33 ms = 2970 ticks).
            assert!((1..=2970).contains(&advance), "advance {advance}");
        } else if a_in.at == b_in.at {
            assert_eq!(advance, 0, "packets of one frame keep one timestamp");
        }
    }
    let layers: Vec<u8> = out.iter().map(|(p, _)| p.layer).collect();
    let mut runs = layers.clone();
    runs.dedup();
    assert_eq!(
        runs,
        vec![0, 2, 1],
        "one layer at a time, in the order asked"
    );
}

#[test]
fn a_paused_subscriber_gets_nothing_and_resumes_on_a_keyframe() {
    let mut source = Simulcast::new();
    let mut f = Forwarder::new(true);
    let mut seen = Seen::default();
    seen.run(&mut f, source.frame(&[0]));
    seen.run(&mut f, source.frame(&[]));
    let before = seen.out.len();
    f.set_target(None);
    for _ in 0..5 {
        for p in source.frame(&[0, 1, 2]) {
            assert_eq!(f.on_packet(p), Decision::Skip, "paused: not a loss either");
        }
    }
    assert_eq!(seen.out.len(), before);
    f.set_target(Some(1));
    assert!(f.is_waiting_for_keyframe());
    seen.run(&mut f, source.frame(&[]));
    assert_eq!(seen.out.len(), before, "no delta frame after a pause");
    seen.run(&mut f, source.frame(&[1]));
    let (resumed_in, resumed) = seen.out[before];
    let (_, last) = seen.out[before - 1];
    assert_eq!(resumed_in.layer, 1);
    assert!(resumed_in.keyframe);
    assert_eq!(resumed.seq, last.seq.wrapping_add(1));
}

#[test]
fn a_gap_on_the_old_layer_while_switching_waits_for_any_keyframe_of_the_target() {
    let mut source = Simulcast::new();
    let mut f = Forwarder::new(true);
    seen_all(&mut f, source.frame(&[0]));
    f.set_target(Some(1));
    f.on_gap();
    // Layer 0 is broken now; its deltas are held back rather than sent into a hole.
    for p in source.frame(&[]) {
        let d = f.on_packet(p);
        if p.layer == 0 {
            assert_eq!(
                d,
                Decision::Drop {
                    request_keyframe: false
                }
            );
        }
        if p.layer == 1 {
            assert_eq!(
                d,
                Decision::Drop {
                    request_keyframe: true
                }
            );
        }
    }
    let mut first = None;
    for p in source.frame(&[1]) {
        if let Decision::Forward(r) = f.on_packet(p) {
            first.get_or_insert((p, r));
        }
    }
    let (p, r) = first.expect("layer 1's keyframe is forwarded");
    assert_eq!(p.layer, 1);
    assert!(r.switched);
}

#[test]
fn late_packets_of_the_old_layer_after_a_switch_are_skipped() {
    let mut source = Simulcast::new();
    let mut f = Forwarder::new(true);
    seen_all(&mut f, source.frame(&[0]));
    let late = source.frame(&[]);
    f.set_target(Some(2));
    seen_all(&mut f, source.frame(&[2]));
    for p in late.into_iter().filter(|p| p.layer == 0) {
        assert_eq!(f.on_packet(p), Decision::Skip);
    }
}

fn seen_all(f: &mut Forwarder, packets: Vec<PacketMeta>) {
    let mut seen = Seen::default();
    seen.run(f, packets);
}

#[test]
fn a_switch_advances_the_timestamp_by_the_time_that_passed() {
    let mut f = Forwarder::new(true);
    let t0 = epoch();
    let first = forwarded(f.on_packet(on_layer(0, 10, 1_000, true, t0)));
    f.set_target(Some(1));
    // The new layer's keyframe comes 100 ms later, on a clock with a different base.
    let later = t0 + Duration::from_millis(100);
    let switched = forwarded(f.on_packet(on_layer(1, 5_000, 777_777, true, later)));
    assert_eq!(switched.seq, first.seq.wrapping_add(1));
    assert_eq!(switched.timestamp.wrapping_sub(first.timestamp), 9_000);
    // And the new layer's own timestamps carry on from there.
    let next = forwarded(f.on_packet(on_layer(1, 5_001, 777_777 + 3_000, false, later)));
    assert_eq!(next.timestamp.wrapping_sub(switched.timestamp), 3_000);
}
