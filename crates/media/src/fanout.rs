//! A published track and its fan-out to subscribers.
//!
//! The publisher's reader task hands every packet to [`PublishedTrack::forward`], which offers
//! it to each subscriber's [`DownSink`] in turn, without waiting: the sink decides, renumbers and
//! hands the packet to its connection's send queue right there, in the reader task. A subscriber
//! whose connection cannot take the packet now loses it (and restarts video at the next
//! keyframe). The publisher and the other subscribers never wait for a slow one.
//!
//! Writing from the reader task, rather than through a queue and a writer task per subscriber,
//! saves a channel hop and a task wake-up per forwarded packet, and lets work that is the same
//! for every subscriber (is this a keyframe? the counters) be done once per packet.
//!
//! Besides subscribers' down tracks, a track feeds [`PacketTap`]s: in-process consumers such as
//! the recorder, which get the same packets on the same terms (offered, never waited for) plus
//! the publisher's sender reports.

use crate::simulcast::{LayerMeters, MAX_LAYERS};
use crate::stats::MediaStats;
use hearth_core::{KeyframeThrottle, Layer, LevelSample, is_keyframe, vp8_keyframe_size};
use hearth_proto::{MediaKind, ParticipantId, TrackId, TrackInfo};
use rtc::rtp;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taps::{TapStream, Tapped};
use tokio::sync::mpsc;

/// Subscriber writes a reader task does before it yields to the runtime. Its packets come from
/// a webrtc-rs queue that never makes it yield, and each packet costs it a write per
/// subscriber, so a backlog to 500 viewers would otherwise hold a core for a quarter of a
/// second and starve the connections it writes to (and signaling) meanwhile.
pub(crate) const FANOUT_BUDGET: usize = 256;

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

/// What became of a packet offered to a [`DownSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Handed to the subscriber's connection; `bytes` of payload.
    Sent {
        /// Payload bytes written.
        bytes: usize,
    },
    /// Held back: the subscriber is restarting video and this is not a keyframe.
    WaitingKeyframe {
        /// Whether the publisher should be asked for one.
        request_keyframe: bool,
    },
    /// The subscriber's connection could not take it now (its send queue is full). The sink
    /// restarts video at the next keyframe by itself.
    Full,
    /// The connection cannot send yet (not connected or not negotiated) or is closing.
    NotReady,
    /// Not meant for this subscriber: another simulcast layer than the one it receives, or
    /// video it does not show.
    Skipped,
}

/// What the fan-out learned about a packet, once for all subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// Whether it carries the start of a keyframe.
    pub keyframe: bool,
    /// Its simulcast layer (0 without simulcast).
    pub layer: u8,
    /// When it arrived.
    pub at: Instant,
}

impl Arrival {
    /// What a [`hearth_core::Forwarder`] is told about `packet`.
    pub(crate) fn meta(&self, packet: &rtp::Packet) -> hearth_core::PacketMeta {
        hearth_core::PacketMeta {
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            keyframe: self.keyframe,
            layer: self.layer,
            at: self.at,
        }
    }
}

/// A subscriber's down track as the fan-out sees it. Called from the publisher's reader task
/// with the track's subscriber list locked, so it must never block or wait.
pub(crate) trait DownSink: Send {
    /// Offers one packet, with what is known about it (decided once for all subscribers).
    fn offer(&mut self, packet: &rtp::Packet, arrival: &Arrival) -> Offered;
    /// The subscriber missed packets (or the track resumes): restart video at a keyframe.
    fn on_gap(&mut self);
    /// The simulcast layer this subscriber wants now, if any.
    fn wanted_layer(&self) -> Option<u8> {
        None
    }
}

/// Where a sink's packets go.
enum SinkTx {
    /// A subscriber's down track.
    Down(Box<dyn DownSink>),
    /// An in-process consumer.
    Tap(Arc<dyn PacketTap>),
}

/// One subscriber's end of the fan-out.
struct Sink {
    id: u64,
    tx: SinkTx,
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
    /// The layers a keyframe is wanted on, one bit each, collected until the keyframe task
    /// sends the requests.
    keyframe_layers: AtomicU8,
    /// Per-layer bitrates and sizes.
    layers: LayerMeters,
    /// What taps (the recorder) get: one stream, the largest layer arriving.
    tap_stream: Mutex<TapStream>,
    ended: AtomicBool,
    /// Set while the publisher is muted (by themselves or by a host): packets are not
    /// forwarded, so a remote mute holds even against a client that keeps sending.
    paused: AtomicBool,
    /// The publisher's latest sender report (NTP time, RTP time), given to taps that attach
    /// later so they can place the track on a wall clock at once.
    last_report: Mutex<Option<(u64, u32)>>,
    /// Audio levels since the room last collected them (audio tracks only).
    levels: crate::levels::AudioLevels,
    stats: Arc<MediaStats>,
}

impl PublishedTrack {
    pub(crate) fn new(info: TrackInfo, stats: Arc<MediaStats>) -> (Arc<Self>, mpsc::Receiver<()>) {
        let tap_stream = Mutex::new(TapStream::new(info.kind == MediaKind::Video));
        let (keyframe_tx, keyframe_rx) = mpsc::channel(1);
        let track = Arc::new(Self {
            info,
            sinks: Mutex::new(Vec::new()),
            next_sink_id: AtomicU64::new(1),
            keyframe_tx,
            keyframe_layers: AtomicU8::new(0),
            layers: LayerMeters::default(),
            tap_stream,
            ended: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            last_report: Mutex::new(None),
            levels: crate::levels::AudioLevels::default(),
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
            for sink in self.lock_sinks().iter_mut() {
                if let SinkTx::Down(down) = &mut sink.tx {
                    down.on_gap();
                }
            }
            self.request_keyframe();
        }
    }

    /// The audio levels this track's packets carried since the last call: what the room's
    /// speaker detection runs on. Empty for video, and for a publisher whose levels were not
    /// negotiated.
    pub fn take_audio_levels(&self) -> LevelSample {
        self.levels.take()
    }

    /// Notes the level `packet` carries in extension `ext_id` (0: none negotiated).
    pub(crate) fn note_audio_level(&self, packet: &rtp::Packet, ext_id: u8) {
        self.levels.add(packet, ext_id);
    }

    /// Whether forwarding is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The layers arriving, smallest first, with their bitrates and sizes (one entry for a
    /// track without simulcast).
    pub fn layers(&self) -> Vec<Layer> {
        self.layers.snapshot()
    }

    /// Whether the publisher sends this track in more than one layer.
    pub fn is_simulcast(&self) -> bool {
        self.layers.is_simulcast()
    }

    /// The layers someone wants now, one bit each: a subscriber's target, and the top layer
    /// while a tap (the recorder) is attached.
    pub(crate) fn wanted_layers(&self) -> u32 {
        let top = self.layers.count().saturating_sub(1);
        self.lock_sinks()
            .iter()
            .filter_map(|sink| match &sink.tx {
                SinkTx::Down(down) => down.wanted_layer().map(usize::from),
                SinkTx::Tap(_) => Some(top),
            })
            .fold(0, |mask, layer| mask | (1 << layer.min(MAX_LAYERS - 1)))
    }

    /// How many simulcast layers have been seen.
    pub(crate) fn layer_count(&self) -> usize {
        self.layers.count()
    }

    /// Records which layers the publisher was asked to pause (one bit each), so that the
    /// allocation still counts them as available.
    pub(crate) fn set_paused_layers(&self, mask: u32) {
        self.layers.set_paused(mask);
    }

    /// Offers a packet of simulcast `layer` (0 without simulcast) to every subscriber without
    /// waiting. Returns how many sinks it went through, the measure of the work done (see
    /// [`FANOUT_BUDGET`]).
    pub(crate) fn forward(&self, packet: rtp::Packet, layer: u8) -> usize {
        self.forward_at(packet, layer, Instant::now())
    }

    /// [`Self::forward`] of a packet that arrived `at`.
    pub(crate) fn forward_at(&self, packet: rtp::Packet, layer: u8, at: Instant) -> usize {
        let layer = layer.min(MAX_LAYERS as u8 - 1);
        if self.layers.add(layer, packet.payload.len(), at)
            && let Some(best) = self.layers.highest_arriving()
        {
            self.lock_tap_stream().set_layer(best);
        }
        let mut sinks = self.lock_sinks();
        if self.paused.load(Ordering::Relaxed) {
            MediaStats::add(&self.stats.dropped_paused, sinks.len() as u64);
            return 0;
        }
        let keyframe =
            self.info.kind == MediaKind::Video && is_keyframe(&self.info.codec, &packet.payload);
        if keyframe && let Some((w, h)) = vp8_keyframe_size(&packet.payload) {
            self.layers.set_size(layer, w, h);
        }
        let arrival = Arrival {
            keyframe,
            layer,
            at,
        };
        let packet = Arc::new(packet);
        let mut tally = Tally::default();
        // What taps get of this packet, decided at the first tap.
        let mut tapped: Option<Option<Arc<rtp::Packet>>> = None;
        for sink in sinks.iter_mut() {
            match &mut sink.tx {
                SinkTx::Down(down) => tally.add(down.offer(&packet, &arrival)),
                // A tap counts what it refuses itself: its losses are not a subscriber's.
                SinkTx::Tap(tap) => {
                    let out = tapped.get_or_insert_with(|| {
                        match self.lock_tap_stream().packet(&packet, &arrival) {
                            Tapped::Packet(p) => Some(p),
                            Tapped::Nothing { request_keyframe } => {
                                tally.request_keyframe |= request_keyframe;
                                None
                            }
                        }
                    });
                    if let Some(p) = out {
                        tap.offer(p);
                    }
                }
            }
        }
        let offered = sinks.len();
        drop(sinks);
        tally.record(&self.stats);
        if tally.request_keyframe {
            self.request_keyframe_on(layer);
        }
        offered
    }

    fn lock_tap_stream(&self) -> std::sync::MutexGuard<'_, TapStream> {
        self.tap_stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Passes the publisher's sender report for `layer`'s stream to every tap, on the taps'
    /// clock; reports of layers taps do not get now are of no use to them. (Down tracks make
    /// their own.)
    pub(crate) fn sender_report(&self, layer: u8, ntp_time: u64, rtp_time: u32) {
        let Some(rtp_time) = self.lock_tap_stream().report_time(layer, rtp_time) else {
            return;
        };
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
            });
        }
        TapHandle {
            track: Arc::downgrade(self),
            id,
        }
    }

    /// Adds a subscriber; returns the id that detaches it. An ended track takes none.
    pub(crate) fn attach(&self, down: Box<dyn DownSink>) -> u64 {
        let id = self.next_sink_id.fetch_add(1, Ordering::Relaxed);
        if !self.is_ended() {
            self.lock_sinks().push(Sink {
                id,
                tx: SinkTx::Down(down),
            });
        }
        id
    }

    /// Removes a subscriber.
    pub(crate) fn detach(&self, id: u64) {
        self.lock_sinks().retain(|s| s.id != id);
    }

    /// Asks the publisher for a keyframe on every layer. Coalesced here and throttled in the
    /// publisher's keyframe task.
    pub fn request_keyframe(&self) {
        self.request_keyframes(u8::MAX);
    }

    /// Asks the publisher for a keyframe on `layer`.
    pub fn request_keyframe_on(&self, layer: u8) {
        self.request_keyframes(1 << layer.min(7));
    }

    fn request_keyframes(&self, mask: u8) {
        if self.info.kind != MediaKind::Video || self.is_ended() {
            return;
        }
        self.keyframe_layers.fetch_or(mask, Ordering::Relaxed);
        if self.keyframe_tx.try_send(()).is_err() {
            MediaStats::incr(&self.stats.keyframe_requests_throttled);
        }
    }

    /// The layers keyframes were asked for since the last call, one bit each.
    pub(crate) fn take_keyframe_layers(&self) -> u8 {
        self.keyframe_layers.swap(0, Ordering::Relaxed)
    }

    /// Marks the track ended and lets go of every subscriber and tap.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        self.lock_sinks().clear();
    }
}

/// What one packet's fan-out did, counted once per packet rather than once per subscriber.
#[derive(Default)]
struct Tally {
    sent: u64,
    bytes: u64,
    full: u64,
    waiting_keyframe: u64,
    request_keyframe: bool,
}

impl Tally {
    fn add(&mut self, offered: Offered) {
        match offered {
            Offered::Sent { bytes } => {
                self.sent += 1;
                self.bytes += bytes as u64;
            }
            Offered::WaitingKeyframe { request_keyframe } => {
                self.waiting_keyframe += 1;
                self.request_keyframe |= request_keyframe;
            }
            Offered::Full => self.full += 1,
            Offered::NotReady | Offered::Skipped => {}
        }
    }

    fn record(&self, stats: &MediaStats) {
        for (counter, n) in [
            (&stats.packets_out, self.sent),
            (&stats.bytes_out, self.bytes),
            (&stats.dropped_overflow, self.full),
            (&stats.dropped_waiting_keyframe, self.waiting_keyframe),
        ] {
            if n > 0 {
                MediaStats::add(counter, n);
            }
        }
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

mod taps;
#[cfg(test)]
mod tests;
