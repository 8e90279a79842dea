//! A published track and its fan-out to subscribers.
//!
//! The publisher's reader task hands every packet to [`PublishedTrack::forward`], which offers
//! it to each subscriber's bounded queue without waiting: a subscriber whose queue is full loses
//! the packet (and is told, through its gap flag, to restart video at the next keyframe). The
//! publisher and the other subscribers never wait for a slow one.
//!
//! Besides subscribers' down tracks, a track feeds [`PacketTap`]s: in-process consumers such as
//! the recorder, which get the same packets on the same terms (offered, never waited for) plus
//! the publisher's sender reports.

use crate::stats::MediaStats;
use hearth_core::KeyframeThrottle;
use hearth_proto::{MediaKind, ParticipantId, TrackId, TrackInfo};
use rtc::rtp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// At most one keyframe request per this interval reaches a publisher, however many subscribers
/// ask.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// An in-process consumer of a published track's packets (the recorder). Called from the
/// publisher's reader task, so it must never block: a consumer that cannot take a packet now
/// loses it, and deals with the gap itself (it knows, since it refused the packet).
pub trait PacketTap: Send + Sync {
    /// Offers one packet; returns whether it was taken.
    fn offer(&self, packet: &Arc<rtp::Packet>) -> bool;
    /// The publisher's latest sender report for this track: its wall clock (NTP format) when
    /// its RTP clock read `rtp_time`.
    fn sender_report(&self, ntp_time: u64, rtp_time: u32);
}

/// Where a sink's packets go.
enum SinkTx {
    /// A subscriber's down track: its writer task's queue.
    Down(mpsc::Sender<Arc<rtp::Packet>>),
    /// An in-process consumer.
    Tap(Arc<dyn PacketTap>),
}

/// One subscriber's end of the fan-out.
struct Sink {
    id: u64,
    tx: SinkTx,
    /// Set when a packet for this subscriber was dropped; its writer then restarts video at a
    /// keyframe.
    gap: Arc<AtomicBool>,
}

/// A track a participant publishes, shared by the publisher's reader task and every subscriber.
pub struct PublishedTrack {
    info: TrackInfo,
    /// Subscribers' queues. A std mutex: held only to iterate and `try_send`, never across an
    /// await.
    sinks: Mutex<Vec<Sink>>,
    next_sink_id: AtomicU64,
    /// Wakes the publisher's keyframe task; capacity 1, so a burst of requests coalesces.
    keyframe_tx: mpsc::Sender<()>,
    ended: AtomicBool,
    /// Set while the publisher is muted (by themselves or by a host): packets are not
    /// forwarded, so a remote mute holds even against a client that keeps sending.
    paused: AtomicBool,
    /// The publisher's latest sender report (NTP time, RTP time), given to taps that attach
    /// later so they can place the track on a wall clock at once.
    last_report: Mutex<Option<(u64, u32)>>,
    stats: Arc<MediaStats>,
}

/// The receiving side of a subscription, returned by [`PublishedTrack::attach`].
pub(crate) struct Subscription {
    pub id: u64,
    pub rx: mpsc::Receiver<Arc<rtp::Packet>>,
    pub gap: Arc<AtomicBool>,
}

impl PublishedTrack {
    pub(crate) fn new(info: TrackInfo, stats: Arc<MediaStats>) -> (Arc<Self>, mpsc::Receiver<()>) {
        let (keyframe_tx, keyframe_rx) = mpsc::channel(1);
        let track = Arc::new(Self {
            info,
            sinks: Mutex::new(Vec::new()),
            next_sink_id: AtomicU64::new(1),
            keyframe_tx,
            ended: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            last_report: Mutex::new(None),
            stats,
        });
        (track, keyframe_rx)
    }

    /// What subscribers are told about this track.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// The track's id.
    pub fn id(&self) -> &TrackId {
        &self.info.id
    }

    /// Who publishes it.
    pub fn participant_id(&self) -> &ParticipantId {
        &self.info.participant_id
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.info.kind
    }

    /// Whether the publisher stopped sending it for good.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// How many subscribers are attached.
    pub fn subscriber_count(&self) -> usize {
        self.lock_sinks().len()
    }

    fn lock_sinks(&self) -> std::sync::MutexGuard<'_, Vec<Sink>> {
        // A panic while holding this lock can only come from a bug in this file; the list is
        // still consistent (push/retain are atomic with respect to it), so keep going.
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops (`true`) or resumes forwarding. Resuming video asks for a keyframe so pictures
    /// come back at once, and marks a gap so subscribers restart on it.
    pub fn set_paused(&self, paused: bool) {
        let was = self.paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            for sink in self.lock_sinks().iter() {
                sink.gap.store(true, Ordering::Relaxed);
            }
            self.request_keyframe();
        }
    }

    /// Whether forwarding is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Offers a packet to every subscriber without waiting.
    pub(crate) fn forward(&self, packet: rtp::Packet) {
        if self.paused.load(Ordering::Relaxed) {
            let copies = self.lock_sinks().len() as u64;
            MediaStats::add(&self.stats.dropped_paused, copies);
            return;
        }
        let packet = Arc::new(packet);
        let sinks = self.lock_sinks();
        for sink in sinks.iter() {
            let tx = match &sink.tx {
                SinkTx::Down(tx) => tx,
                SinkTx::Tap(tap) => {
                    // A tap counts what it refuses itself: its losses are not a subscriber's.
                    tap.offer(&packet);
                    continue;
                }
            };
            match tx.try_send(Arc::clone(&packet)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sink.gap.store(true, Ordering::Relaxed);
                    MediaStats::incr(&self.stats.dropped_overflow);
                }
                // The subscriber is going away; detach will remove it.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Passes the publisher's sender report to every tap (down tracks make their own).
    pub(crate) fn sender_report(&self, ntp_time: u64, rtp_time: u32) {
        *self.last_report.lock().unwrap_or_else(|e| e.into_inner()) = Some((ntp_time, rtp_time));
        for sink in self.lock_sinks().iter() {
            if let SinkTx::Tap(tap) = &sink.tx {
                tap.sender_report(ntp_time, rtp_time);
            }
        }
    }

    /// Adds an in-process consumer of this track's packets; it stays attached until the
    /// returned handle is dropped or the track ends. Paused tracks offer it nothing, as with
    /// subscribers. Hears the latest sender report at once, if there was one.
    pub fn attach_tap(self: &Arc<Self>, tap: Arc<dyn PacketTap>) -> TapHandle {
        let report = *self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((ntp, rtp)) = report {
            tap.sender_report(ntp, rtp);
        }
        let id = self.next_sink_id.fetch_add(1, Ordering::Relaxed);
        if !self.is_ended() {
            self.lock_sinks().push(Sink {
                id,
                tx: SinkTx::Tap(tap),
                gap: Arc::new(AtomicBool::new(false)),
            });
        }
        TapHandle {
            track: Arc::downgrade(self),
            id,
        }
    }

    /// Adds a subscriber with a queue of `capacity` packets.
    pub(crate) fn attach(&self, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity);
        let gap = Arc::new(AtomicBool::new(false));
        let id = self.next_sink_id.fetch_add(1, Ordering::Relaxed);
        self.lock_sinks().push(Sink {
            id,
            tx: SinkTx::Down(tx),
            gap: Arc::clone(&gap),
        });
        Subscription { id, rx, gap }
    }

    /// Removes a subscriber.
    pub(crate) fn detach(&self, id: u64) {
        self.lock_sinks().retain(|s| s.id != id);
    }

    /// Asks the publisher for a keyframe. Coalesced here and throttled in the publisher's
    /// keyframe task.
    pub fn request_keyframe(&self) {
        if self.info.kind != MediaKind::Video || self.is_ended() {
            return;
        }
        if self.keyframe_tx.try_send(()).is_err() {
            MediaStats::incr(&self.stats.keyframe_requests_throttled);
        }
    }

    /// Marks the track ended and drops every subscriber queue, which ends their writer tasks.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        self.lock_sinks().clear();
    }
}

/// Keeps a [`PacketTap`] attached; detaches it when dropped.
#[derive(Debug)]
pub struct TapHandle {
    track: std::sync::Weak<PublishedTrack>,
    id: u64,
}

impl Drop for TapHandle {
    fn drop(&mut self) {
        if let Some(track) = self.track.upgrade() {
            track.detach(self.id);
        }
    }
}

impl std::fmt::Debug for PublishedTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedTrack")
            .field("info", &self.info)
            .field("ended", &self.is_ended())
            .finish()
    }
}

/// Runs a publisher track's keyframe requests through a [`KeyframeThrottle`], calling `send`
/// for each one that goes upstream. Ends when the track is dropped.
pub(crate) async fn run_keyframe_requests<F, Fut>(
    mut requests: mpsc::Receiver<()>,
    stats: Arc<MediaStats>,
    mut send: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut throttle = KeyframeThrottle::new(KEYFRAME_REQUEST_INTERVAL);
    loop {
        let deadline = throttle.deadline();
        let due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            request = requests.recv() => {
                if request.is_none() {
                    return;
                }
                if throttle.request(tokio::time::Instant::now().into_std()) {
                    if !send().await {
                        return;
                    }
                    MediaStats::incr(&stats.keyframe_requests_sent);
                } else {
                    MediaStats::incr(&stats.keyframe_requests_throttled);
                }
            }
            () = due => {
                if throttle.poll(tokio::time::Instant::now().into_std()) {
                    if !send().await {
                        return;
                    }
                    MediaStats::incr(&stats.keyframe_requests_sent);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

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

    #[test]
    fn a_stalled_subscriber_loses_packets_without_holding_back_the_others() {
        let (track, _kf, stats) = track(MediaKind::Video);
        let stalled = track.attach(4);
        let mut healthy = track.attach(200);
        for seq in 0..100 {
            track.forward(packet(seq)); // never waits: this is a plain function call
        }
        let mut got = Vec::new();
        while let Ok(p) = healthy.rx.try_recv() {
            got.push(p.header.sequence_number);
        }
        assert_eq!(
            got,
            (0..100).collect::<Vec<_>>(),
            "healthy subscriber got every packet"
        );
        assert!(
            stalled.gap.load(Ordering::Relaxed),
            "stalled subscriber is told it missed packets"
        );
        assert!(!healthy.gap.load(Ordering::Relaxed));
        assert_eq!(MediaStats::get(&stats.dropped_overflow), 96);
    }

    #[test]
    fn detached_and_ended_subscribers_stop_receiving() {
        let (track, _kf, _) = track(MediaKind::Audio);
        let a = track.attach(8);
        let mut b = track.attach(8);
        track.detach(a.id);
        assert_eq!(track.subscriber_count(), 1);
        track.forward(packet(1));
        assert!(b.rx.try_recv().is_ok());
        track.end();
        assert!(track.is_ended());
        assert!(matches!(
            b.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
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
        let mut sub = track.attach(16);
        track.set_paused(true);
        track.forward(packet(1));
        assert!(sub.rx.try_recv().is_err(), "muted: nothing forwarded");
        assert_eq!(MediaStats::get(&stats.dropped_paused), 1);
        track.set_paused(false);
        assert!(
            sub.gap.load(Ordering::Relaxed),
            "subscribers restart video on a keyframe"
        );
        assert!(keyframe_rx.try_recv().is_ok(), "and one is requested");
        track.forward(packet(2));
        assert!(sub.rx.try_recv().is_ok());
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
        let (track, _kf, stats) = track(MediaKind::Video);
        track.sender_report(7, 70);
        let tap = Arc::new(CountingTap {
            room: 3,
            ..Default::default()
        });
        let mut sub = track.attach(16);
        let handle = track.attach_tap(Arc::clone(&tap) as Arc<dyn PacketTap>);
        assert_eq!(
            *tap.reports.lock().unwrap(),
            vec![(7, 70)],
            "a late tap hears the last report at once"
        );
        for seq in 0..5 {
            track.forward(packet(seq));
        }
        track.sender_report(8, 80);
        assert_eq!(*tap.taken.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(
            MediaStats::get(&stats.dropped_overflow),
            0,
            "a tap's refusals are not a subscriber's overflow"
        );
        assert_eq!(tap.reports.lock().unwrap().last(), Some(&(8, 80)));
        let mut got = 0;
        while sub.rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 5, "a full tap does not hold back subscribers");
        assert!(!sub.gap.load(Ordering::Relaxed));

        drop(handle);
        assert_eq!(
            track.subscriber_count(),
            1,
            "dropping the handle detaches the tap"
        );
        track.forward(packet(9));
        assert_eq!(tap.taken.lock().unwrap().len(), 3);
    }

    #[test]
    fn audio_never_asks_for_keyframes() {
        let (track, mut keyframe_rx, _) = track(MediaKind::Audio);
        track.request_keyframe();
        assert!(keyframe_rx.try_recv().is_err());
    }
}
