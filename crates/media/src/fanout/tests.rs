//! The fan-out's unit tests: real `PublishedTrack`s with in-memory down tracks.

use super::*;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

fn track(kind: MediaKind) -> (Arc<PublishedTrack>, mpsc::Receiver<()>, Arc<MediaStats>) {
    let stats = Arc::new(MediaStats::default());
    let info = TrackInfo {
        id: TrackId::from_string("t"),
        participant_id: ParticipantId::from_string("p"),
        kind,
        codec: "video/VP8".into(),
        source: hearth_proto::TrackSource::Camera,
    };
    let (t, rx) = PublishedTrack::new(info, Arc::clone(&stats));
    (t, rx, stats)
}

fn packet(seq: u16) -> rtp::Packet {
    let mut p = rtp::Packet::default();
    p.header.sequence_number = seq;
    p
}

/// A down track that takes `room` packets, then reports its connection full. Restarts on
/// a keyframe after a gap, as the real one does.
#[derive(Clone, Default)]
struct TestSink {
    got: Arc<std::sync::Mutex<Vec<u16>>>,
    room: usize,
    gaps: Arc<AtomicUsize>,
    waiting: Arc<AtomicBool>,
}

impl TestSink {
    fn with_room(room: usize) -> Self {
        Self {
            room,
            ..Default::default()
        }
    }
    fn got(&self) -> Vec<u16> {
        self.got.lock().unwrap().clone()
    }
}

impl DownSink for TestSink {
    fn offer(&mut self, packet: &rtp::Packet, arrival: &Arrival) -> Offered {
        let keyframe = arrival.keyframe;
        if self.waiting.load(Ordering::Relaxed) {
            if !keyframe {
                return Offered::WaitingKeyframe {
                    request_keyframe: true,
                };
            }
            self.waiting.store(false, Ordering::Relaxed);
        }
        let mut got = self.got.lock().unwrap();
        if got.len() >= self.room {
            drop(got);
            self.on_gap();
            return Offered::Full;
        }
        got.push(packet.header.sequence_number);
        Offered::Sent {
            bytes: packet.payload.len(),
        }
    }
    fn on_gap(&mut self) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
        self.waiting.store(true, Ordering::Relaxed);
    }
}

fn attach(track: &PublishedTrack, room: usize) -> (u64, TestSink) {
    let sink = TestSink::with_room(room);
    (track.attach(Box::new(sink.clone())), sink)
}

/// A VP8 packet: a keyframe start or a delta frame.
fn vp8(seq: u16, keyframe: bool) -> rtp::Packet {
    let mut p = packet(seq);
    // Descriptor with S=1, partition 0; then the frame tag (bit 0 clear = keyframe).
    let tag = if keyframe { 0x10 } else { 0x11 };
    p.payload = bytes::Bytes::from(vec![0x10, tag, 0, 0, 0x9d, 0x01, 0x2a]);
    p
}

#[test]
fn a_stalled_subscriber_loses_packets_without_holding_back_the_others() {
    let (track, _kf, stats) = track(MediaKind::Video);
    let (_, stalled) = attach(&track, 4);
    let (_, healthy) = attach(&track, 200);
    for seq in 0..100 {
        track.forward(packet(seq), 0); // never waits: this is a plain function call
    }
    assert_eq!(
        healthy.got(),
        (0..100).collect::<Vec<_>>(),
        "healthy subscriber got every packet"
    );
    assert_eq!(stalled.got(), vec![0, 1, 2, 3]);
    assert!(
        stalled.gaps.load(Ordering::Relaxed) > 0,
        "stalled subscriber restarts at a keyframe"
    );
    assert_eq!(healthy.gaps.load(Ordering::Relaxed), 0);
    assert_eq!(MediaStats::get(&stats.dropped_overflow), 1);
    assert_eq!(
        MediaStats::get(&stats.dropped_waiting_keyframe),
        95,
        "then it waits for a keyframe instead of overflowing again"
    );
    assert_eq!(MediaStats::get(&stats.packets_out), 104);
}

#[test]
fn keyframes_are_recognised_once_for_every_subscriber() {
    let (track, mut keyframe_rx, _) = track(MediaKind::Video);
    let (_, a) = attach(&track, 100);
    let (_, b) = attach(&track, 100);
    for sink in [&a, &b] {
        sink.waiting.store(true, Ordering::Relaxed);
    }
    track.forward(vp8(1, false), 0);
    assert!(
        keyframe_rx.try_recv().is_ok(),
        "waiting subscribers ask once"
    );
    track.forward(vp8(2, true), 0);
    track.forward(vp8(3, false), 0);
    assert_eq!(a.got(), vec![2, 3]);
    assert_eq!(b.got(), vec![2, 3]);
}

#[test]
fn detached_and_ended_subscribers_stop_receiving() {
    let (track, _kf, _) = track(MediaKind::Audio);
    let (a_id, a) = attach(&track, 8);
    let (_, b) = attach(&track, 8);
    track.detach(a_id);
    assert_eq!(track.subscriber_count(), 1);
    track.forward(packet(1), 0);
    assert_eq!(a.got(), Vec::<u16>::new());
    assert_eq!(b.got(), vec![1]);
    track.end();
    assert!(track.is_ended());
    track.forward(packet(2), 0);
    assert_eq!(b.got(), vec![1], "an ended track forwards nothing");
    let (_, late) = attach(&track, 8);
    assert_eq!(track.subscriber_count(), 0, "and takes no new subscribers");
    track.forward(packet(3), 0);
    assert!(late.got().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_keyframe_requests_reaches_the_publisher_twice_a_second_at_most() {
    let (track, keyframe_rx, stats) = track(MediaKind::Video);
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    tokio::spawn(run_keyframe_requests(
        keyframe_rx,
        Arc::clone(&stats),
        move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { true }
        },
    ));
    // Twenty subscribers each ask every 50 ms for two seconds.
    for _ in 0..40 {
        for _ in 0..20 {
            track.request_keyframe();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent = sent.load(Ordering::Relaxed);
    assert!((3..=5).contains(&sent), "{sent} keyframe requests in ~2 s");
    assert!(MediaStats::get(&stats.keyframe_requests_throttled) > 700);
}

#[test]
fn a_paused_track_forwards_nothing_and_resumes_on_a_keyframe() {
    let (track, mut keyframe_rx, stats) = track(MediaKind::Video);
    let (_, sub) = attach(&track, 16);
    track.set_paused(true);
    track.forward(vp8(1, true), 0);
    assert!(sub.got().is_empty(), "muted: nothing forwarded");
    assert_eq!(MediaStats::get(&stats.dropped_paused), 1);
    track.set_paused(false);
    assert_eq!(
        sub.gaps.load(Ordering::Relaxed),
        1,
        "subscribers restart video on a keyframe"
    );
    assert!(keyframe_rx.try_recv().is_ok(), "and one is requested");
    track.forward(vp8(2, false), 0);
    track.forward(vp8(3, true), 0);
    assert_eq!(sub.got(), vec![3]);
}

/// A tap that takes `room` packets, then refuses.
#[derive(Default)]
struct CountingTap {
    taken: std::sync::Mutex<Vec<u16>>,
    room: usize,
    reports: std::sync::Mutex<Vec<(u64, u32)>>,
}

impl PacketTap for CountingTap {
    fn offer(&self, packet: &Arc<rtp::Packet>) -> bool {
        let mut taken = self.taken.lock().unwrap();
        if taken.len() >= self.room {
            return false;
        }
        taken.push(packet.header.sequence_number);
        true
    }
    fn sender_report(&self, ntp_time: u64, rtp_time: u32) {
        self.reports.lock().unwrap().push((ntp_time, rtp_time));
    }
}

#[test]
fn a_tap_gets_packets_and_sender_reports_until_its_handle_is_dropped() {
    let (track, _kf, stats) = track(MediaKind::Audio);
    track.sender_report(0, 7, 70);
    let tap = Arc::new(CountingTap {
        room: 3,
        ..Default::default()
    });
    let (_, sub) = attach(&track, 16);
    let handle = track.attach_tap(Arc::clone(&tap) as Arc<dyn PacketTap>);
    assert_eq!(
        *tap.reports.lock().unwrap(),
        vec![(7, 70)],
        "a late tap hears the last report at once"
    );
    for seq in 0..5 {
        track.forward(packet(seq), 0);
    }
    track.sender_report(0, 8, 80);
    assert_eq!(*tap.taken.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(
        MediaStats::get(&stats.dropped_overflow),
        0,
        "a tap's refusals are not a subscriber's overflow"
    );
    assert_eq!(tap.reports.lock().unwrap().last(), Some(&(8, 80)));
    assert_eq!(
        sub.got().len(),
        5,
        "a full tap does not hold back subscribers"
    );
    assert_eq!(sub.gaps.load(Ordering::Relaxed), 0);

    drop(handle);
    assert_eq!(
        track.subscriber_count(),
        1,
        "dropping the handle detaches the tap"
    );
    track.forward(packet(9), 0);
    assert_eq!(tap.taken.lock().unwrap().len(), 3);
}

#[test]
fn audio_never_asks_for_keyframes() {
    let (track, mut keyframe_rx, _) = track(MediaKind::Audio);
    track.request_keyframe();
    assert!(keyframe_rx.try_recv().is_err());
}

#[test]
fn keyframe_requests_name_the_layers_asked_for() {
    let (track, mut keyframe_rx, _) = track(MediaKind::Video);
    track.request_keyframe_on(1);
    track.request_keyframe_on(2);
    assert!(keyframe_rx.try_recv().is_ok(), "the keyframe task is woken");
    assert_eq!(track.take_keyframe_layers(), 0b110);
    assert_eq!(track.take_keyframe_layers(), 0, "taken once");
}

#[test]
fn a_tap_gets_one_continuous_stream_of_the_largest_layer() {
    let (track, mut keyframe_rx, _) = track(MediaKind::Video);
    let tap = Arc::new(CountingTap {
        room: 1000,
        ..Default::default()
    });
    let _handle = track.attach_tap(Arc::clone(&tap) as Arc<dyn PacketTap>);
    let t0 = Instant::now();
    let on = |layer: u8, ssrc: u32, seq: u16, ts: u32, key: bool| {
        let mut p = vp8(seq, key);
        p.header.ssrc = ssrc;
        p.header.timestamp = ts;
        (p, layer)
    };
    // 30 frames a second for a second: layer 0 (SSRC 10) and layer 2 (SSRC 12), each with its
    // own numbering; keyframes on both at the start and on layer 2 again at frame 20.
    for frame in 0..30u16 {
        let at = t0 + Duration::from_millis(u64::from(frame) * 33);
        let key = frame == 0;
        for (p, layer) in [
            on(0, 10, 1000 + frame, 90_000 + u32::from(frame) * 3000, key),
            on(
                2,
                12,
                50_000 + frame,
                7_000_000 + u32::from(frame) * 3000,
                key || frame == 20,
            ),
        ] {
            track.forward_at(p, layer, at);
        }
        if frame == 16 {
            // Layer 0's report is of no use to the taps; layer 2's is, on the taps' clock.
            track.sender_report(0, 1, 90_000);
            assert!(tap.reports.lock().unwrap().is_empty());
            track.sender_report(2, 2, 7_000_000 + 16 * 3000);
        }
    }
    let taken = tap.taken.lock().unwrap().clone();
    // Nothing until the layers were measured (500 ms), then layer 2 from its next keyframe on.
    assert_eq!(taken.len(), 10, "frames 20..30 of layer 2: {taken:?}");
    assert!(
        taken.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "continuous: {taken:?}"
    );
    assert!(
        keyframe_rx.try_recv().is_ok(),
        "a keyframe was asked for on the chosen layer"
    );
    assert_eq!(track.take_keyframe_layers() & 0b100, 0b100);
    // The report came before layer 2 started for the taps, but after it was chosen: the
    // stream starts unshifted on it, so the report passed as is.
    assert_eq!(
        *tap.reports.lock().unwrap(),
        vec![(2, 7_000_000 + 16 * 3000)]
    );
}
