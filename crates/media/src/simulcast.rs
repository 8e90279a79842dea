//! What the SFU knows about a published track's simulcast layers: which SSRC is which layer,
//! how fast each arrives and how large its pictures are.

use hearth_core::Layer;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most layers a track may have. Browsers send up to three.
pub const MAX_LAYERS: usize = 3;

/// How often each layer's bitrate is recomputed: long enough to smooth over frames, short
/// enough that a layer the publisher stops sending is noticed within a second.
const WINDOW: Duration = Duration::from_millis(500);

/// The layer a simulcast stream's RID names, smallest first. Hearth's clients send `q`, `h`
/// and `f` (quarter, half, full); `l`/`m`/`h` and digits are common elsewhere. A stream
/// without a RID is the only layer.
pub fn layer_of_rid(rid: Option<&str>) -> u8 {
    match rid.unwrap_or("") {
        "" | "q" | "l" | "0" | "low" => 0,
        "h" | "m" | "1" | "mid" => 1,
        "f" | "2" | "high" => 2,
        other => {
            // Unknown names: a stable guess from the first character, within range.
            let first = other.bytes().next().unwrap_or(0);
            first % MAX_LAYERS as u8
        }
    }
}

/// Per-layer arrival meters, written by the publisher's reader task once per packet and read by
/// subscribers' layer allocation a few times a second.
#[derive(Debug, Default)]
pub(crate) struct LayerMeters {
    /// Bytes of the current window, per layer, and when the window began.
    window: Mutex<Window>,
    bitrate: [AtomicU64; MAX_LAYERS],
    width: [AtomicU32; MAX_LAYERS],
    height: [AtomicU32; MAX_LAYERS],
    /// Highest layer index seen so far, plus one (0: nothing yet).
    seen: AtomicU32,
    /// Each layer's last non-zero bitrate: what a paused layer would cost again.
    known: [AtomicU64; MAX_LAYERS],
    /// Layers the publisher was asked to pause, one bit each.
    paused: AtomicU32,
    /// Windows left during which a layer just resumed still counts at its known bitrate: it
    /// measures nothing until its first packets are in, and must not look absent meanwhile.
    resuming: [AtomicU32; MAX_LAYERS],
}

/// Measuring windows a resumed layer is given to show up again (2 s).
const RESUME_GRACE_WINDOWS: u32 = 4;

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    bytes: [u64; MAX_LAYERS],
}

impl LayerMeters {
    /// Counts one packet of `layer`, `bytes` long, arriving `at`. Returns whether the bitrates
    /// were just recomputed.
    pub(crate) fn add(&self, layer: u8, bytes: usize, at: Instant) -> bool {
        let layer = usize::from(layer).min(MAX_LAYERS - 1);
        self.seen.fetch_max(layer as u32 + 1, Ordering::Relaxed);
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let started = *window.started.get_or_insert(at);
        window.bytes[layer] += bytes as u64;
        let elapsed = at.saturating_duration_since(started);
        if elapsed >= WINDOW {
            let secs = elapsed.as_secs_f64();
            for (i, bytes) in window.bytes.iter_mut().enumerate() {
                let bps = (*bytes as f64 * 8.0 / secs) as u64;
                self.bitrate[i].store(bps, Ordering::Relaxed);
                if bps > 0 {
                    self.known[i].store(bps, Ordering::Relaxed);
                }
                let _ = self.resuming[i]
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                *bytes = 0;
            }
            window.started = Some(at);
            return true;
        }
        false
    }

    /// The largest layer arriving now (as of the last window), if any.
    pub(crate) fn highest_arriving(&self) -> Option<u8> {
        (0..MAX_LAYERS)
            .rev()
            .find(|&i| self.bitrate[i].load(Ordering::Relaxed) > 0)
            .map(|i| i as u8)
    }

    /// Notes the picture size a keyframe of `layer` declared.
    pub(crate) fn set_size(&self, layer: u8, width: u32, height: u32) {
        let layer = usize::from(layer).min(MAX_LAYERS - 1);
        self.width[layer].store(width, Ordering::Relaxed);
        self.height[layer].store(height, Ordering::Relaxed);
    }

    /// The layers seen so far, smallest first. A layer paused at Hearth's request counts at
    /// its last known bitrate: it can be had again by asking (a layer the publisher stopped by
    /// itself, for its own uplink, counts as not arriving).
    pub(crate) fn snapshot(&self) -> Vec<Layer> {
        let seen = self.seen.load(Ordering::Relaxed) as usize;
        let paused = self.paused.load(Ordering::Relaxed);
        (0..seen.min(MAX_LAYERS))
            .map(|i| {
                let held = paused & (1 << i) != 0 || self.resuming[i].load(Ordering::Relaxed) > 0;
                let bitrate = match self.bitrate[i].load(Ordering::Relaxed) {
                    0 if held => self.known[i].load(Ordering::Relaxed),
                    bps => bps,
                };
                Layer {
                    bitrate,
                    width: self.width[i].load(Ordering::Relaxed),
                    height: self.height[i].load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// How many layers were seen (the top one is `count - 1`).
    pub(crate) fn count(&self) -> usize {
        (self.seen.load(Ordering::Relaxed) as usize).min(MAX_LAYERS)
    }

    /// Records which layers the publisher was asked to pause.
    pub(crate) fn set_paused(&self, mask: u32) {
        let before = self.paused.swap(mask, Ordering::Relaxed);
        for (i, resuming) in self.resuming.iter().enumerate() {
            if before & !mask & (1 << i) != 0 {
                resuming.store(RESUME_GRACE_WINDOWS, Ordering::Relaxed);
            }
        }
    }

    /// Whether more than one layer arrives.
    pub(crate) fn is_simulcast(&self) -> bool {
        self.seen.load(Ordering::Relaxed) > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_layer_counts_at_its_last_bitrate_until_it_is_back() {
        let meters = LayerMeters::default();
        let t0 = Instant::now();
        let window = |n: u64, layers: &[u8]| {
            for i in 0..10u64 {
                let at = t0 + Duration::from_millis(n * 500 + i * 50);
                for &layer in layers {
                    meters.add(layer, 1000, at);
                }
            }
            meters.add(0, 0, t0 + Duration::from_millis((n + 1) * 500));
        };
        window(0, &[0, 1]);
        window(1, &[0, 1]);
        let known = meters.snapshot()[1].bitrate;
        assert!(known > 0);
        meters.set_paused(0b10);
        window(2, &[0]);
        assert_eq!(
            meters.snapshot()[1].bitrate,
            known,
            "paused: still on offer"
        );
        meters.set_paused(0);
        window(3, &[0]);
        assert_eq!(
            meters.snapshot()[1].bitrate,
            known,
            "resumed, not arriving yet"
        );
        for n in 4..8 {
            window(n, &[0]);
        }
        assert_eq!(
            meters.snapshot()[1].bitrate,
            0,
            "it never came back: absent"
        );
    }

    #[test]
    fn rids_map_to_layers_smallest_first() {
        assert_eq!(layer_of_rid(None), 0);
        assert_eq!(layer_of_rid(Some("q")), 0);
        assert_eq!(layer_of_rid(Some("h")), 1);
        assert_eq!(layer_of_rid(Some("f")), 2);
        assert!(usize::from(layer_of_rid(Some("zzz"))) < MAX_LAYERS);
    }

    #[test]
    fn meters_measure_each_layer_over_a_window() {
        let meters = LayerMeters::default();
        let t0 = Instant::now();
        // 100 packets of 1000 bytes on layer 2 and 10 on layer 0 over 500 ms.
        for i in 0..=100u32 {
            let at = t0 + Duration::from_millis(u64::from(i) * 5);
            meters.add(2, 1000, at);
            if i % 10 == 0 {
                meters.add(0, 1000, at);
            }
        }
        meters.set_size(2, 1280, 720);
        let layers = meters.snapshot();
        assert_eq!(layers.len(), 3);
        assert!(meters.is_simulcast());
        assert_eq!(layers[2].bitrate, 101 * 8000 * 2);
        // (Layer 0's packet at 500 ms came after the window closed.)
        assert_eq!(layers[0].bitrate, 10 * 8000 * 2);
        assert_eq!(layers[1].bitrate, 0, "a layer not sent measures nothing");
        assert_eq!((layers[2].width, layers[2].height), (1280, 720));
    }
}
