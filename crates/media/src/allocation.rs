//! A subscriber's layer allocation: a few times a second, share its bandwidth estimate among
//! the video it receives (see [`hearth_core::layers`]) and tell each down track which layer to
//! forward.

use crate::fanout::PublishedTrack;
use hearth_core::layers::{Demand, Headroom, allocate, cost};
use hearth_proto::{MediaKind, TrackId, TrackSource};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the allocation runs: layer bitrates are measured over 500 ms, and the estimate
/// moves every 200 ms at most.
pub(crate) const INTERVAL: Duration = Duration::from_millis(500);

/// "No layer" in a [`LayerControl`] atomic.
const NONE: u8 = u8::MAX;

/// Shared between one down track's writer (the publisher's reader task) and the allocation.
#[derive(Debug)]
pub(crate) struct LayerControl {
    /// The layer to forward; [`NONE`]: no video.
    target: AtomicU8,
    /// The layer being forwarded now; [`NONE`] before the first keyframe.
    current: AtomicU8,
    /// The size the client renders the track at, packed (width << 32 | height);
    /// `u64::MAX`: not said.
    view: AtomicU64,
}

impl Default for LayerControl {
    fn default() -> Self {
        Self {
            target: AtomicU8::new(0),
            current: AtomicU8::new(NONE),
            view: AtomicU64::new(u64::MAX),
        }
    }
}

impl LayerControl {
    pub(crate) fn target(&self) -> Option<u8> {
        decode(self.target.load(Ordering::Relaxed))
    }

    fn set_target(&self, layer: Option<u8>) {
        self.target.store(layer.unwrap_or(NONE), Ordering::Relaxed);
    }

    pub(crate) fn current(&self) -> Option<u8> {
        decode(self.current.load(Ordering::Relaxed))
    }

    pub(crate) fn set_current(&self, layer: Option<u8>) {
        self.current.store(layer.unwrap_or(NONE), Ordering::Relaxed);
    }

    pub(crate) fn set_view(&self, view: Option<(u32, u32)>) {
        let packed = view.map_or(u64::MAX, |(w, h)| (u64::from(w) << 32) | u64::from(h));
        self.view.store(packed, Ordering::Relaxed);
    }

    fn view(&self) -> Option<(u32, u32)> {
        let packed = self.view.load(Ordering::Relaxed);
        (packed != u64::MAX).then_some(((packed >> 32) as u32, packed as u32))
    }
}

fn decode(v: u8) -> Option<u8> {
    (v != NONE).then_some(v)
}

/// One track in a subscriber's allocation.
struct Entry {
    id: TrackId,
    published: Arc<PublishedTrack>,
    control: Arc<LayerControl>,
}

/// What the allocation task and the [`crate::Subscriber`] share.
#[derive(Default)]
pub(crate) struct Allocation {
    entries: Mutex<Vec<Entry>>,
    /// The congestion controller's latest estimate toward this subscriber, bits per second;
    /// 0 until the first transport feedback (until then the allocation assumes the
    /// estimator's starting point).
    pub(crate) estimate: Arc<AtomicU64>,
}

impl Allocation {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, id: TrackId, published: Arc<PublishedTrack>) -> Arc<LayerControl> {
        let control = Arc::new(LayerControl::default());
        self.lock().push(Entry {
            id,
            published,
            control: Arc::clone(&control),
        });
        control
    }

    pub(crate) fn remove(&self, id: &TrackId) {
        self.lock().retain(|e| &e.id != id);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Records the size the client shows `id` at. Returns whether the track is forwarded.
    pub(crate) fn set_view(&self, id: &TrackId, view: Option<(u32, u32)>) -> bool {
        match self.lock().iter().find(|e| &e.id == id) {
            Some(entry) => {
                entry.control.set_view(view);
                true
            }
            None => false,
        }
    }

    /// One allocation round at `now`.
    fn run(&self, headroom: &mut Headroom, now: Instant) {
        let entries = self.lock();
        let audio: u64 = entries
            .iter()
            .filter(|e| e.published.kind() == MediaKind::Audio)
            .filter_map(|e| e.published.layers().first().map(|l| l.bitrate))
            .sum();
        let mut video: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.published.kind() == MediaKind::Video)
            .collect();
        // Upgraded first: screen shares (text must be legible), then the largest tiles.
        video.sort_by_key(|e| {
            let screen = e.published.info().source == TrackSource::Screen;
            let area = e
                .control
                .view()
                .map_or(u64::MAX, |(w, h)| u64::from(w) * u64::from(h));
            (!screen, std::cmp::Reverse(area))
        });
        let layers: Vec<Vec<hearth_core::Layer>> =
            video.iter().map(|e| e.published.layers()).collect();
        let demands: Vec<Demand<'_>> = video
            .iter()
            .zip(&layers)
            .map(|(e, layers)| Demand {
                layers,
                view: e.control.view(),
            })
            .collect();
        let in_force: Vec<Option<u8>> = video.iter().map(|e| e.control.target()).collect();
        let estimate = self.estimate.load(Ordering::Relaxed);
        // Audio first: what is left is video's.
        let budget = if estimate == 0 {
            // No transport feedback yet: start where the estimator will. (Judging the
            // allocation against this guess would rule out rates the link never refused.)
            (crate::peer::INITIAL_ESTIMATE as u64).saturating_sub(audio)
        } else {
            let for_video = estimate.saturating_sub(audio);
            headroom.budget(now, for_video, cost(&demands, &in_force))
        };
        // Keep what is in force while it still fits with an eighth to spare: layer rates wobble
        // (keyframes), and every switch costs the viewer a keyframe wait.
        let chosen = if allocate(budget.saturating_add(budget / 8), &demands) == in_force {
            in_force.clone()
        } else {
            allocate(budget, &demands)
        };
        if cost(&demands, &chosen) > cost(&demands, &in_force) {
            headroom.upgraded(now);
        }
        for (entry, layer) in video.iter().zip(chosen) {
            if entry.control.target() != layer {
                tracing::debug!(track_id = %entry.id, ?layer, estimate, budget, "layer target");
                entry.control.set_target(layer);
            }
        }
    }
}

/// Runs `allocation` every [`INTERVAL`] until aborted.
pub(crate) async fn run(allocation: Arc<Allocation>) {
    let mut headroom = Headroom::default();
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        allocation.run(&mut headroom, Instant::now());
    }
}
