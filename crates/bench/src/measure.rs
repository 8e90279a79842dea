//! From two readings of every participant's counters, the measured interval: what was sent,
//! received and lost, and how late it arrived. Only differences of counters are used, so
//! joining and warm-up never leak into the numbers.

use hearth_client::{LatencyHistogram, Traffic};
use hearth_proto::MediaKind;
use std::time::Instant;

use crate::metrics::{HEAP_ALLOCATED, Metrics, PACKETS_OUT, SUBSCRIBED_TRACKS};
use crate::procfs::{self, ProcSample};
use crate::report::{MachineLoad, Quantiles, ServerCost, Signaling, ToolCost};

/// Everything read at one moment.
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    /// Per member, in the order of the members list.
    pub traffic: Vec<Traffic>,
    pub server: Option<ProcSample>,
    pub tool: Option<ProcSample>,
    /// Busy CPU seconds of the whole machine.
    pub machine_busy_s: Option<f64>,
    pub metrics: Option<Metrics>,
}

impl Reading {
    /// Reads the server's and our own /proc; the caller fills in traffic and metrics.
    pub fn now(server_pid: Option<u32>, traffic: Vec<Traffic>, metrics: Option<Metrics>) -> Self {
        Self {
            at: Instant::now(),
            traffic,
            server: server_pid.and_then(|pid| procfs::sample(Some(pid))),
            tool: procfs::sample(None),
            machine_busy_s: procfs::machine_busy_s(),
            metrics,
        }
    }
}

/// The media of an interval, summed over participants.
#[derive(Debug, Clone, Default)]
pub struct MediaWindow {
    /// Tracks that delivered intact packets in the interval.
    pub tracks_received: usize,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Packets that arrived, intact or not.
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Packets the senders sent on the tracks received (from the payload counters).
    pub packets_expected: u64,
    pub intact: u64,
    pub corrupt: u64,
    /// Participants that received anything.
    pub receivers: usize,
    pub audio_latency: LatencyHistogram,
    pub video_latency: LatencyHistogram,
}

impl MediaWindow {
    /// Packets expected but not received intact.
    pub fn lost(&self) -> u64 {
        self.packets_expected.saturating_sub(self.intact)
    }
}

/// What changed between `start` and `end` (same members, same order; a member missing from
/// `start` counts from zero).
pub fn media_window(start: &[Traffic], end: &[Traffic]) -> MediaWindow {
    let mut w = MediaWindow::default();
    let empty = Traffic::default();
    for (i, now) in end.iter().enumerate() {
        let before = start.get(i).unwrap_or(&empty);
        w.packets_sent += now.packets_sent.saturating_sub(before.packets_sent);
        w.bytes_sent += now.bytes_sent.saturating_sub(before.bytes_sent);
        let mut received_any = false;
        for (id, r) in &now.received {
            let old = before.received.get(id);
            let d = |f: fn(&hearth_client::Received) -> u64| {
                f(r).saturating_sub(old.map(f).unwrap_or(0))
            };
            let intact = d(|r| r.intact);
            w.packets_received += d(|r| r.packets);
            w.bytes_received += d(|r| r.bytes);
            w.corrupt += d(|r| r.corrupt);
            w.intact += intact;
            // Loss from the sender's counter: how far it advanced is how many were sent. A
            // track that appeared mid-interval has no starting point; count it as lossless.
            let sent = match (old.and_then(|o| o.highest_counter), r.highest_counter) {
                (Some(a), Some(b)) => u64::from(b.wrapping_sub(a)),
                _ => intact,
            };
            w.packets_expected += sent.max(intact);
            if intact > 0 {
                w.tracks_received += 1;
                received_any = true;
            }
            let latency = match old {
                Some(o) => r.latency_us.since(&o.latency_us),
                None => r.latency_us.clone(),
            };
            match r.kind {
                Some(MediaKind::Video) => w.video_latency.merge(&latency),
                _ => w.audio_latency.merge(&latency),
            }
        }
        w.receivers += usize::from(received_any);
    }
    w
}

/// The server's counter of participants removed because their signaling queue overflowed.
const TOO_SLOW: &str = "hearth_participants_removed_too_slow_total";

/// Signaling received per participant as of `end`, and the participants dropped as too slow
/// between the `before` and `after` scrapes.
pub fn signaling(end: &[Traffic], before: Option<&Metrics>, after: Option<&Metrics>) -> Signaling {
    let n = end.len().max(1) as f64;
    let messages: u64 = end.iter().map(|t| t.signal_messages).sum();
    let bytes: u64 = end.iter().map(|t| t.signal_bytes).sum();
    Signaling {
        messages_per_participant: messages as f64 / n,
        kb_per_participant: bytes as f64 / 1000.0 / n,
        // Absent from servers older than the counter: unknown, not zero.
        dropped_too_slow: after
            .and_then(|a| a.get(TOO_SLOW))
            .map(|a| a - before.and_then(|b| b.get(TOO_SLOW)).unwrap_or(0.0)),
    }
}

/// What the server paid between two readings. `received` (what our subscribers received)
/// stands in for the forwarded count when the server has no `/metrics`.
pub fn server_cost(
    pid: Option<u32>,
    cpus: usize,
    start: &Reading,
    end: &Reading,
    received: u64,
) -> Option<ServerCost> {
    let (Some(pid), Some(a), Some(b)) = (pid, start.server, end.server) else {
        return None;
    };
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-3);
    let from_metrics = start
        .metrics
        .as_ref()
        .and_then(|m| m.get(PACKETS_OUT))
        .zip(end.metrics.as_ref().and_then(|m| m.get(PACKETS_OUT)))
        .map(|(a, b)| b - a);
    let (forwarded, forwarded_from) = match from_metrics {
        Some(n) => (n, "metrics"),
        None => (received as f64, "receivers"),
    };
    let cpu_s = b.cpu_s - a.cpu_s;
    Some(ServerCost {
        pid,
        cpus,
        cpu_s,
        cpu_pct: cpu_s / secs * 100.0,
        rss_mb_start: a.rss_bytes as f64 / 1e6,
        rss_mb_end: b.rss_bytes as f64 / 1e6,
        rss_mb_idle: None,
        subscribed_tracks: None,
        rss_kb_per_subscribed_track: None,
        heap_kb_per_subscribed_track: None,
        fds_start: a.fds,
        fds_end: b.fds,
        threads: b.threads,
        forwarded_pps: forwarded / secs,
        forwarded_from,
        cpu_us_per_packet: (forwarded > 0.0).then(|| cpu_s * 1e6 / forwarded),
        x_floor: None,
    })
}

/// Charges the memory the run added to the server (from `idle`, before anyone joined, to
/// `end`) to the tracks subscribed at `end`.
pub fn track_memory(cost: &mut ServerCost, idle: &Reading, end: &Reading) {
    let tracks = end.metrics.as_ref().and_then(|m| m.get(SUBSCRIBED_TRACKS));
    // Resident memory only grows in the first run on a server: the allocator keeps the pages
    // and the next runs reuse them. The heap is given back when people leave, so its growth
    // is the cost of every run alike.
    let heap = |r: &Reading| r.metrics.as_ref().and_then(|m| m.get(HEAP_ALLOCATED));
    cost.heap_kb_per_subscribed_track = match (heap(idle), heap(end), tracks) {
        (Some(before), Some(after), Some(n)) if n > 0.0 => Some((after - before) / 1e3 / n),
        _ => None,
    };
    let (Some(idle), Some(now)) = (idle.server, end.server) else {
        return;
    };
    cost.rss_mb_idle = Some(idle.rss_bytes as f64 / 1e6);
    cost.subscribed_tracks = tracks;
    cost.rss_kb_per_subscribed_track = tracks
        .filter(|n| *n > 0.0)
        .map(|n| (now.rss_bytes as f64 - idle.rss_bytes as f64) / 1e3 / n);
}

/// What the tool paid between two readings.
pub fn tool_cost(cpus: usize, start: &Reading, end: &Reading) -> ToolCost {
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-3);
    let (a, b) = (start.tool.unwrap_or_default(), end.tool.unwrap_or_default());
    ToolCost {
        cpus,
        cpu_s: b.cpu_s - a.cpu_s,
        cpu_pct: (b.cpu_s - a.cpu_s) / secs * 100.0,
        rss_mb: b.rss_bytes as f64 / 1e6,
    }
}

/// What the whole machine did between two readings, and how much of it was neither the server
/// nor the tool.
pub fn machine_load(start: &Reading, end: &Reading) -> Option<MachineLoad> {
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-3);
    let busy = end.machine_busy_s? - start.machine_busy_s?;
    let cpu = |r: &Reading| r.server.map_or(0.0, |s| s.cpu_s) + r.tool.map_or(0.0, |t| t.cpu_s);
    let ours = cpu(end) - cpu(start);
    Some(MachineLoad {
        cores: procfs::machine_cores(),
        busy_pct: busy / secs * 100.0,
        others_pct: ((busy - ours) / secs * 100.0).max(0.0),
        loadavg: procfs::loadavg(),
    })
}

/// p50 and p99 of a latency histogram (µs), in milliseconds.
pub fn latency_ms(h: &LatencyHistogram) -> Quantiles {
    let ms = |q| h.quantile(q).map(|us| us as f64 / 1000.0);
    Quantiles {
        p50: ms(0.5),
        p99: ms(0.99),
        samples: h.count(),
    }
}

/// p50 and p99 of plain values.
pub fn quantiles(values: &[f64]) -> Quantiles {
    Quantiles {
        p50: quantile(values, 0.5),
        p99: quantile(values, 0.99),
        samples: values.len() as u64,
    }
}

/// Packets and bytes received so far by everyone: what the progress line differentiates.
pub fn totals(traffic: &[Traffic]) -> (u64, u64) {
    traffic
        .iter()
        .flat_map(|t| t.received.values())
        .fold((0, 0), |(p, b), r| (p + r.packets, b + r.bytes))
}

/// The value below which a fraction `q` of `values` lie (nearest rank); `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::Received;

    fn track(kind: MediaKind, intact: u64, highest: u32, latency_us: &[u64]) -> Received {
        // Field by field: `Received` has private fields, so no struct update syntax.
        let mut r = Received::default();
        r.kind = Some(kind);
        r.packets = intact;
        r.intact = intact;
        r.bytes = intact * 1000;
        r.highest_counter = Some(highest);
        for l in latency_us {
            r.latency_us.record(*l);
        }
        r
    }

    fn traffic(sent: u64, tracks: &[(&str, Received)]) -> Traffic {
        Traffic {
            packets_sent: sent,
            bytes_sent: sent * 1000,
            received: tracks
                .iter()
                .map(|(id, r)| ((*id).to_owned(), r.clone()))
                .collect(),
            ..Traffic::default()
        }
    }

    #[test]
    fn signaling_is_averaged_over_participants_and_drops_counted_between_scrapes() {
        let mut a = Traffic::default();
        (a.signal_messages, a.signal_bytes) = (30, 6000);
        let mut b = Traffic::default();
        (b.signal_messages, b.signal_bytes) = (10, 2000);
        let before = Metrics::parse("hearth_participants_removed_too_slow_total 2\n");
        let after = Metrics::parse(
            "hearth_participants_removed_too_slow_total 7\n\
             hearth_websocket_errors_total{code=\"bad_json\"} 40\n",
        );
        let s = signaling(&[a, b], Some(&before), Some(&after));
        assert_eq!(s.messages_per_participant, 20.0);
        assert_eq!(s.kb_per_participant, 4.0);
        assert_eq!(s.dropped_too_slow, Some(5.0), "only since the first scrape");
        assert_eq!(signaling(&[], None, None).dropped_too_slow, None);
        let old_server = Metrics::parse("hearth_participants 3\n");
        assert_eq!(
            signaling(&[], Some(&old_server), Some(&old_server)).dropped_too_slow,
            None,
            "a server without the counter is unknown, not zero"
        );
    }

    #[test]
    fn memory_per_track_is_charged_from_the_heap_even_when_resident_memory_did_not_grow() {
        let at = |rss_bytes, metrics: &str| Reading {
            at: Instant::now(),
            traffic: Vec::new(),
            server: Some(ProcSample {
                rss_bytes,
                ..ProcSample::default()
            }),
            tool: None,
            machine_busy_s: None,
            metrics: Some(Metrics::parse(metrics)),
        };
        // A second run on a warm server: its pages were kept from the first run.
        let idle = at(
            300_000_000,
            "hearth_heap_allocated_bytes 40000000
",
        );
        let end = at(
            299_000_000,
            "hearth_heap_allocated_bytes 140000000
hearth_subscribed_tracks 200
",
        );
        let mut cost = ServerCost::default();
        track_memory(&mut cost, &idle, &end);
        assert_eq!(cost.heap_kb_per_subscribed_track, Some(500.0));
        assert_eq!(cost.rss_kb_per_subscribed_track, Some(-5.0));
        // A server that does not report its heap: unknown, not zero.
        let mut cost = ServerCost::default();
        track_memory(
            &mut cost,
            &at(1, ""),
            &at(
                2,
                "hearth_subscribed_tracks 200
",
            ),
        );
        assert_eq!(cost.heap_kb_per_subscribed_track, None);
    }

    #[test]
    fn the_window_counts_only_what_happened_inside_it_and_loss_from_counter_gaps() {
        let start = vec![traffic(
            100,
            &[("a", track(MediaKind::Audio, 50, 49, &[900; 50]))],
        )];
        // 100 more sent on the track (counter 49 -> 149) but only 90 arrived; a video track
        // appeared meanwhile.
        let end = vec![traffic(
            300,
            &[
                ("a", {
                    let mut r = track(MediaKind::Audio, 140, 149, &[900; 50]);
                    for _ in 0..90 {
                        r.latency_us.record(2000);
                    }
                    r
                }),
                ("v", track(MediaKind::Video, 30, 29, &[5000; 30])),
            ],
        )];
        let w = media_window(&start, &end);
        assert_eq!(w.packets_sent, 200);
        assert_eq!(w.intact, 120);
        assert_eq!(w.packets_expected, 130);
        assert_eq!(w.lost(), 10);
        assert_eq!((w.tracks_received, w.receivers), (2, 1));
        assert_eq!(w.audio_latency.count(), 90, "only the interval's samples");
        assert!(w.audio_latency.quantile(0.5).unwrap_or(0) > 1500);
        assert_eq!(w.video_latency.count(), 30);
        assert_eq!(totals(&end), (170, 170_000));
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
