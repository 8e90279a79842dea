//! The report: one JSON-serializable record per run, a table of runs and their medians for
//! people, and the floor table.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::floor::{Floor, median};

/// p50 and p99 of a distribution, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub samples: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Participants {
    pub planned: usize,
    pub joined: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tracks {
    pub received: usize,
    pub expected: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Packets {
    /// Sent by our publishers in the interval.
    pub sent: u64,
    /// Received by our subscribers, intact or not.
    pub received: u64,
    /// Sent on the tracks our subscribers received (sender counters): received + lost.
    pub expected: u64,
    pub lost: u64,
    pub loss_pct: Option<f64>,
    /// Damaged or misattributed: must be 0.
    pub corrupt: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Bitrate {
    /// Payload Mbit/s sent by all publishers.
    pub sent_mbps: f64,
    /// Payload Mbit/s received by all subscribers.
    pub received_mbps: f64,
    /// Average over subscribers that received anything.
    pub per_receiver_mbps: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub audio: Quantiles,
    pub video: Quantiles,
}

/// What the server paid over the interval.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCost {
    pub pid: u32,
    /// CPUs the server may run on (its affinity).
    pub cpus: usize,
    pub cpu_s: f64,
    /// Of one core: 200 means two cores busy.
    pub cpu_pct: f64,
    pub rss_mb_start: f64,
    pub rss_mb_end: f64,
    /// Before anyone of the run joined.
    pub rss_mb_idle: Option<f64>,
    /// Subscribed tracks at the end (the server's `hearth_subscribed_tracks`).
    pub subscribed_tracks: Option<f64>,
    /// Resident memory the run added (end minus idle) per subscribed track: everything a
    /// participant costs (connections, sockets, buffers, signaling) charged to the tracks.
    pub rss_kb_per_subscribed_track: Option<f64>,
    /// Heap the run added (`hearth_heap_allocated_bytes`, end minus idle) per subscribed track:
    /// the same charge, right on every run of a server, where resident memory is right only on
    /// its first (the allocator keeps pages for the next run).
    pub heap_kb_per_subscribed_track: Option<f64>,
    pub fds_start: usize,
    pub fds_end: usize,
    pub threads: u64,
    /// RTP packets forwarded per second.
    pub forwarded_pps: f64,
    /// `metrics` (the server's `hearth_rtp_packets_out_total`) or `receivers` (what our
    /// subscribers received: a lower bound, it misses packets lost on the way).
    pub forwarded_from: &'static str,
    /// Server CPU microseconds per forwarded packet, everything included (ingress,
    /// signaling, timers).
    pub cpu_us_per_packet: Option<f64>,
    /// `cpu_us_per_packet` over the floor.
    pub x_floor: Option<f64>,
}

/// What the tool itself paid: if it is near its CPU limit, the numbers measure the tool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolCost {
    pub cpus: usize,
    pub cpu_s: f64,
    pub cpu_pct: f64,
    pub rss_mb: f64,
}

/// The whole machine over the interval: on a shared machine, `others_pct` says how much CPU
/// something other than the server and the tool took (builds, other tests, the hypervisor).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MachineLoad {
    /// Cores of the machine.
    pub cores: usize,
    /// Busy CPU of every core, in percent of one core.
    pub busy_pct: f64,
    /// Of that, neither the server nor the tool.
    pub others_pct: f64,
    /// 1-minute load average at the end.
    pub loadavg: Option<f64>,
}

/// Churn only: did everything that came also go?
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnStats {
    pub joins: usize,
    pub leaves: usize,
    /// Churners that received the resident host's audio and video.
    pub got_host_media: usize,
    pub server_fds_before: usize,
    pub server_fds_after: usize,
    pub server_rss_mb_before: f64,
    pub server_rss_mb_after: f64,
    /// The server's memory sampled through the churn (every twentieth of it, at least 5 s).
    pub memory: Vec<MemorySample>,
    /// The first sample after the warm-up (the first quarter of the churn).
    pub rss_mb_after_warmup: Option<f64>,
    /// The last sample while visitors still came and went.
    pub rss_mb_end_of_churn: Option<f64>,
    /// Last minus first sample after the warm-up: about 0 when nothing accumulates.
    pub rss_mb_growth_after_warmup: Option<f64>,
    /// The least-squares slope of the samples over the second half of the churn, MB a minute.
    /// The allocator keeps what the busiest moment needed, so a burst of overlapping visits
    /// raises the memory in a step that stays; a per-visit leak instead climbs at a steady
    /// rate, which is what this measures (about 0 when nothing accumulates).
    pub rss_mb_per_min_second_half: Option<f64>,
    /// Bytes the server's allocator has handed out and not had back (`hearth_heap_allocated_bytes`)
    /// at the first sample after the warm-up, at the end, and their trend over the second half
    /// (MB a minute): unlike resident memory, this does not include pages the allocator keeps,
    /// so a leak shows here and nothing else does.
    pub heap_mb_after_warmup: Option<f64>,
    pub heap_mb_end_of_churn: Option<f64>,
    pub heap_mb_per_min_second_half: Option<f64>,
    /// The most subscribed tracks any sample saw: the busiest moment the memory is sized for.
    pub peak_subscribed_tracks: Option<f64>,
}

/// What signaling cost the participants: the messages each received from its join to the end
/// of the measured interval, and how many the server dropped as too slow over the whole run
/// (leaving included), which is what a session's signaling growing with the square of its
/// size looks like from outside.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Signaling {
    pub messages_per_participant: f64,
    pub kb_per_participant: f64,
    /// Participants the server removed as too slow (`hearth_participants_removed_too_slow_total`).
    pub dropped_too_slow: Option<f64>,
}

/// One reading of the server's memory during a churn run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemorySample {
    /// Seconds since the churn started.
    pub at_s: f64,
    pub rss_mb: f64,
    /// The server's `hearth_heap_allocated_bytes`, in MB, where it reports it.
    pub heap_mb: Option<f64>,
    /// The server's `hearth_subscribed_tracks` gauge.
    pub subscribed_tracks: Option<f64>,
}

/// One run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub measured_s: f64,
    pub participants: Participants,
    /// Failed joins by reason.
    pub failures: BTreeMap<String, usize>,
    pub tracks: Tracks,
    pub packets: Packets,
    pub bitrate: Bitrate,
    pub latency_ms: Latency,
    /// WebSocket connect to first media packet.
    pub join_ms: Quantiles,
    pub server: Option<ServerCost>,
    pub signaling: Option<Signaling>,
    /// The server's `/metrics` over the interval (counters as increases), when it has them.
    pub metrics: BTreeMap<String, f64>,
    pub tool: ToolCost,
    pub machine: Option<MachineLoad>,
    pub churn: Option<ChurnStats>,
    pub warnings: Vec<String>,
}

impl Report {
    /// Fills the media part from a measured window of `secs` seconds.
    pub fn set_media(&mut self, w: &crate::measure::MediaWindow, secs: f64) {
        let secs = secs.max(1e-3);
        self.packets = Packets {
            sent: w.packets_sent,
            received: w.packets_received,
            expected: w.packets_expected,
            lost: w.lost(),
            loss_pct: (w.packets_expected > 0)
                .then(|| w.lost() as f64 * 100.0 / w.packets_expected as f64),
            corrupt: w.corrupt,
        };
        let mbps = |bytes: u64| bytes as f64 * 8.0 / secs / 1e6;
        self.bitrate = Bitrate {
            sent_mbps: mbps(w.bytes_sent),
            received_mbps: mbps(w.bytes_received),
            per_receiver_mbps: (w.receivers > 0)
                .then(|| mbps(w.bytes_received) / w.receivers as f64),
        };
        self.latency_ms = Latency {
            audio: crate::measure::latency_ms(&w.audio_latency),
            video: crate::measure::latency_ms(&w.video_latency),
        };
    }

    /// Says what makes the numbers suspect: a saturated tool or server, loss, damage, missing
    /// tracks.
    pub fn add_warnings(&mut self) {
        let t = &self.tool;
        if t.cpu_pct > 85.0 * t.cpus as f64 {
            self.warnings.push(format!(
                "the tool used {:.0}% CPU of its {} core(s): it may be the bottleneck, not the \
                 server (give it its own cores, or fewer participants per tool)",
                t.cpu_pct, t.cpus
            ));
        }
        if let Some(s) = &self.server
            && s.cpu_pct > 85.0 * s.cpus as f64
        {
            self.warnings.push(format!(
                "the server used {:.0}% CPU of its {} core(s): it is saturated",
                s.cpu_pct, s.cpus
            ));
        }
        if let Some(m) = &self.machine
            && m.others_pct > 25.0
        {
            self.warnings.push(format!(
                "other processes used {:.0}% CPU during the interval: the numbers are noisy",
                m.others_pct
            ));
        }
        if self.packets.loss_pct.is_some_and(|l| l > 1.0) {
            self.warnings
                .push("loss over 1%: the results describe an overloaded system".into());
        }
        if self.packets.corrupt > 0 {
            self.warnings
                .push("corrupt packets: media was damaged or misattributed".into());
        }
        if self.tracks.received < self.tracks.expected {
            self.warnings.push(format!(
                "only {} of {} expected tracks delivered media",
                self.tracks.received, self.tracks.expected
            ));
        }
    }
}

impl Report {
    /// For runs that publish a real clip (`--clip-video`): its payloads carry no send time or
    /// checksum, so receivers cannot tell loss, latency or damage; only the server's cost is
    /// measured. Replaces the warnings that would claim otherwise.
    pub fn note_real_media(&mut self) {
        self.warnings
            .retain(|w| !w.starts_with("corrupt packets") && !w.starts_with("only "));
        self.warnings.push(
            "real media (--clip-video): loss, latency and delivered tracks are not measured, only the server's cost"
                .into(),
        );
    }
}

/// Rows of the table: label, JSON pointer into a [`Report`], decimals.
const ROWS: &[(&str, &str, usize)] = &[
    ("participants joined", "/participants/joined", 0),
    ("participants failed", "/participants/failed", 0),
    ("tracks received", "/tracks/received", 0),
    ("tracks expected", "/tracks/expected", 0),
    ("packets sent", "/packets/sent", 0),
    ("packets received", "/packets/received", 0),
    ("packets expected", "/packets/expected", 0),
    ("loss %", "/packets/loss_pct", 3),
    ("corrupt packets", "/packets/corrupt", 0),
    ("sent Mbit/s", "/bitrate/sent_mbps", 2),
    ("received Mbit/s", "/bitrate/received_mbps", 1),
    ("per receiver Mbit/s", "/bitrate/per_receiver_mbps", 2),
    ("audio latency p50 ms", "/latency_ms/audio/p50", 2),
    ("audio latency p99 ms", "/latency_ms/audio/p99", 2),
    ("video latency p50 ms", "/latency_ms/video/p50", 2),
    ("video latency p99 ms", "/latency_ms/video/p99", 2),
    ("join p50 ms", "/join_ms/p50", 0),
    ("join p99 ms", "/join_ms/p99", 0),
    (
        "signaling msgs / participant",
        "/signaling/messages_per_participant",
        1,
    ),
    (
        "signaling kB / participant",
        "/signaling/kb_per_participant",
        1,
    ),
    ("dropped as too slow", "/signaling/dropped_too_slow", 0),
    ("server CPU s", "/server/cpu_s", 2),
    ("server CPU % (of 1 core)", "/server/cpu_pct", 1),
    ("server RSS MB (end)", "/server/rss_mb_end", 1),
    ("server fds (end)", "/server/fds_end", 0),
    ("subscribed tracks (end)", "/server/subscribed_tracks", 0),
    (
        "server RSS kB / subscribed track",
        "/server/rss_kb_per_subscribed_track",
        0,
    ),
    (
        "server heap kB / subscribed track",
        "/server/heap_kb_per_subscribed_track",
        0,
    ),
    ("forwarded pkt/s", "/server/forwarded_pps", 0),
    // Only a full queue is loss; a new subscriber waiting for its first keyframe and a
    // paused track are the server doing its job, so they are told apart.
    (
        "dropped: queue full",
        "/metrics/hearth_rtp_packets_dropped_total{reason=\"queue_overflow\"}",
        0,
    ),
    (
        "dropped: awaiting keyframe",
        "/metrics/hearth_rtp_packets_dropped_total{reason=\"waiting_keyframe\"}",
        0,
    ),
    (
        "dropped: track paused",
        "/metrics/hearth_rtp_packets_dropped_total{reason=\"paused\"}",
        0,
    ),
    // Holes in the publishers' sequence numbers as the server read them: loss on the way
    // in, including what the WebRTC stack's own queue dropped before Hearth saw it.
    (
        "missing on the way in",
        "/metrics/hearth_rtp_packets_in_missing_total",
        0,
    ),
    (
        "late on the way in",
        "/metrics/hearth_rtp_packets_in_late_total",
        0,
    ),
    ("server µs / fwd packet", "/server/cpu_us_per_packet", 2),
    ("× floor", "/server/x_floor", 1),
    ("tool CPU % (of 1 core)", "/tool/cpu_pct", 1),
    ("other processes CPU %", "/machine/others_pct", 1),
    ("churn joins", "/churn/joins", 0),
    ("churn leaves", "/churn/leaves", 0),
    ("churners got host media", "/churn/got_host_media", 0),
    ("server fds before", "/churn/server_fds_before", 0),
    ("server fds after", "/churn/server_fds_after", 0),
    ("server RSS MB before", "/churn/server_rss_mb_before", 1),
    ("server RSS MB after", "/churn/server_rss_mb_after", 1),
    ("RSS MB after warm-up", "/churn/rss_mb_after_warmup", 1),
    ("RSS MB end of churn", "/churn/rss_mb_end_of_churn", 1),
    (
        "RSS growth after warm-up MB",
        "/churn/rss_mb_growth_after_warmup",
        1,
    ),
    (
        "RSS MB / min, second half",
        "/churn/rss_mb_per_min_second_half",
        2,
    ),
    ("peak subscribed tracks", "/churn/peak_subscribed_tracks", 0),
    ("heap MB after warm-up", "/churn/heap_mb_after_warmup", 1),
    ("heap MB end of churn", "/churn/heap_mb_end_of_churn", 1),
    (
        "heap MB / min, second half",
        "/churn/heap_mb_per_min_second_half",
        2,
    ),
];

fn value_at(report: &serde_json::Value, pointer: &str) -> Option<f64> {
    report.pointer(pointer).and_then(serde_json::Value::as_f64)
}

/// Each row's median over runs, by JSON pointer (for the JSON output).
pub fn medians(runs: &[Report]) -> BTreeMap<String, f64> {
    let values: Vec<serde_json::Value> = runs
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    ROWS.iter()
        .filter_map(|(_, pointer, _)| {
            let mut v: Vec<f64> = values.iter().filter_map(|r| value_at(r, pointer)).collect();
            median(&mut v).map(|m| ((*pointer).to_owned(), m))
        })
        .collect()
}

/// The table: one column per run, then the median when there are several.
pub fn table(runs: &[Report]) -> String {
    let values: Vec<serde_json::Value> = runs
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let many = runs.len() > 1;
    let mut out = String::new();
    let mut header = format!("{:<28}", "metric");
    for i in 0..runs.len() {
        header += &format!(" {:>12}", format!("run {}", i + 1));
    }
    if many {
        header += &format!(" {:>12}", "median");
    }
    out += &header;
    out.push('\n');
    out += &"-".repeat(header.chars().count());
    out.push('\n');
    for (label, pointer, decimals) in ROWS {
        let cells: Vec<Option<f64>> = values.iter().map(|r| value_at(r, pointer)).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let fmt = |v: Option<f64>| match v {
            Some(v) => format!(" {v:>12.decimals$}"),
            None => format!(" {:>12}", "-"),
        };
        let mut line = format!("{label:<28}");
        for c in &cells {
            line += &fmt(*c);
        }
        if many {
            let mut present: Vec<f64> = cells.iter().flatten().copied().collect();
            line += &fmt(median(&mut present));
        }
        out += &line;
        out.push('\n');
    }
    for (i, r) in runs.iter().enumerate() {
        for (reason, n) in &r.failures {
            out += &format!("run {}: {n} joins failed: {reason}\n", i + 1);
        }
        for w in &r.warnings {
            out += &format!("run {}: warning: {w}\n", i + 1);
        }
    }
    out
}

/// Prints the floor table to stdout.
pub fn print_floor(floor: &Floor) {
    println!("per packet (1200-byte RTP), median of runs:");
    println!(
        "  SRTP protect AES_CM_128_HMAC_SHA1_80  {:>7.3} µs",
        floor.srtp_aes_cm_us
    );
    match floor.srtp_aes_gcm_us {
        Some(us) => println!("  SRTP protect AEAD_AES_128_GCM         {us:>7.3} µs"),
        None => println!("  SRTP protect AEAD_AES_128_GCM         unavailable"),
    }
    println!(
        "  UDP send on loopback                  {:>7.3} µs",
        floor.udp_send_us
    );
    println!(
        "  protect (AES-CM) + send               {:>7.3} µs",
        floor.floor_aes_cm_us
    );
    println!(
        "  floor: protect ({}) + send  {:>7.3} µs",
        floor.floor_profile, floor.floor_us
    );
    println!(
        "  = at most {:.0} forwarded packets/s per core",
        1e6 / floor.floor_us.max(1e-3)
    );
}

/// The pipeline measurement, for the terminal.
pub fn print_pipeline(p: &crate::pipeline::Pipeline) {
    println!(
        "per forwarded 1200-byte VP8 packet, {} subscribe connection(s), median of runs:",
        p.connections
    );
    println!(
        "  rtc core: write_rtp + poll_write (interceptors, SRTP)   {:>7.3} µs",
        p.core_us
    );
    println!(
        "  rtc core + UDP send on loopback, drained between sends  {:>7.3} µs",
        p.core_and_send_us
    );
    println!(
        "  rtc core + UDP send to a waiting reader per connection  {:>7.3} µs ({:.1} % delivered)",
        p.core_and_send_to_waiting_us,
        p.delivered_to_waiting * 100.0
    );
    println!(
        "  {:.3} datagrams and {:.0} bytes out per packet",
        p.datagrams_per_packet, p.bytes_per_packet
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_run_and_the_median_and_skips_empty_rows() {
        let mut a = Report::default();
        a.packets.sent = 100;
        a.participants.joined = 10;
        let mut b = a.clone();
        b.packets.sent = 300;
        let mut c = a.clone();
        c.packets.sent = 200;
        c.warnings.push("tool CPU near its limit".into());
        let t = table(&[a.clone(), b, c]);
        let sent = t
            .lines()
            .find(|l| l.starts_with("packets sent"))
            .expect("row");
        assert!(sent.ends_with("200"), "{sent}");
        assert!(!t.contains("server CPU"), "no server: no server rows");
        assert!(t.contains("run 3: warning: tool CPU near its limit"));
        assert_eq!(medians(&[a])["/packets/sent"], 100.0);
    }
}
