//! `GET /metrics`: the server's counters in the Prometheus text exposition format (0.0.4),
//! written by hand; the format is a few lines per metric and not worth a dependency.
//!
//! Everything here is a number summed over the whole server. The endpoint is unauthenticated,
//! so no session id, name, key or address ever becomes a label.
//!
//! Reading is cheap: atomics, the length of the session map, and two small files in
//! `/proc/self`. Nothing asks a room task anything, so a scrape never waits on a busy room.

use crate::AppState;
use hearth_media::MediaStats;
use hearth_proto::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The `content-type` of the exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Linux reports CPU time in clock ticks of `USER_HZ`, which is 100 on every architecture
/// Hearth runs on (the kernel fixes it for user space; Prometheus' own `procfs` assumes it too).
const USER_HZ: f64 = 100.0;

/// Counters kept by the HTTP and WebSocket layer.
#[derive(Debug, Default)]
pub(crate) struct ServerMetrics {
    /// WebSockets being served now.
    websocket_connections: AtomicU64,
    /// Error messages sent on WebSockets, by code. A mutex rather than one atomic per code:
    /// errors are rare, and the proto crate has no list of codes to index by.
    websocket_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Participants resumed on a new socket after losing theirs.
    resumes: AtomicU64,
    /// ICE restarts of subscribe connections that clients asked for.
    ice_restarts: AtomicU64,
}

impl ServerMetrics {
    /// Counts an open WebSocket until the returned guard is dropped.
    pub(crate) fn websocket_opened(self: &Arc<Self>) -> OpenSocket {
        self.websocket_connections.fetch_add(1, Ordering::Relaxed);
        OpenSocket(Arc::clone(self))
    }

    /// Counts a participant resumed on a new socket.
    pub(crate) fn resumed(&self) {
        self.resumes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an ICE restart a client asked for.
    pub(crate) fn ice_restarted(&self) {
        self.ice_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// ICE restarts so far.
    pub(crate) fn ice_restarts(&self) -> u64 {
        self.ice_restarts.load(Ordering::Relaxed)
    }

    /// Counts one error message sent to a client.
    pub(crate) fn websocket_error(&self, code: ErrorCode) {
        let mut errors = self
            .websocket_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *errors.entry(code.as_str()).or_insert(0) += 1;
    }
}

/// One open WebSocket in `hearth_websocket_connections`; dropping it closes the count.
pub(crate) struct OpenSocket(Arc<ServerMetrics>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.websocket_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Participants and published tracks summed over every room. Each room task adds its own
/// through a [`RoomShare`], so the sum costs nothing to read.
#[derive(Debug, Default)]
pub(crate) struct RoomTotals {
    participants: AtomicU64,
    published_tracks: AtomicU64,
    /// A counter, not a gauge: participants removed because their queue of room events was
    /// full (a connection that could not keep up with the session's signaling).
    removed_too_slow: AtomicU64,
}

impl RoomTotals {
    /// Counts one participant removed as too slow.
    pub(crate) fn removed_too_slow(&self) {
        self.removed_too_slow.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one room task contributes to [`RoomTotals`]. Moving it by differences keeps the totals
/// exact without the room recounting anyone else's; dropping it (the room task ends, however it
/// ends) takes the room's share back out.
#[derive(Debug)]
pub(crate) struct RoomShare {
    totals: Arc<RoomTotals>,
    participants: u64,
    published_tracks: u64,
}

impl RoomShare {
    /// A room with nobody in it yet.
    pub(crate) fn new(totals: Arc<RoomTotals>) -> Self {
        Self {
            totals,
            participants: 0,
            published_tracks: 0,
        }
    }

    /// The room now holds `participants` people and `published_tracks` tracks.
    pub(crate) fn set(&mut self, participants: usize, published_tracks: usize) {
        shift(
            &self.totals.participants,
            &mut self.participants,
            participants as u64,
        );
        shift(
            &self.totals.published_tracks,
            &mut self.published_tracks,
            published_tracks as u64,
        );
    }
}

impl Drop for RoomShare {
    fn drop(&mut self) {
        self.set(0, 0);
    }
}

/// Moves `gauge` by the change from `mine` to `now`.
fn shift(gauge: &AtomicU64, mine: &mut u64, now: u64) {
    if now > *mine {
        gauge.fetch_add(now - *mine, Ordering::Relaxed);
    } else if now < *mine {
        gauge.fetch_sub(*mine - now, Ordering::Relaxed);
    }
    *mine = now;
}

/// The body of `GET /metrics`.
pub(crate) fn render(state: &AppState) -> String {
    let mut out = Exposition::default();
    let totals = state.sessions().totals();
    let media = state.media_stats();
    let server = state.metrics();
    let get = MediaStats::get;

    out.one(
        "hearth_sessions",
        Kind::Gauge,
        "Live sessions (not ended).",
        state.sessions().len(),
    );
    out.one(
        "hearth_participants",
        Kind::Gauge,
        "Participants in rooms, summed over sessions (waiting rooms not included).",
        totals.participants.load(Ordering::Relaxed),
    );
    out.one(
        "hearth_participants_removed_too_slow_total",
        Kind::Counter,
        "Participants removed because they could not keep up with their session's signaling.",
        totals.removed_too_slow.load(Ordering::Relaxed),
    );
    out.one(
        "hearth_published_tracks",
        Kind::Gauge,
        "Tracks being published, summed over sessions.",
        totals.published_tracks.load(Ordering::Relaxed),
    );
    out.one(
        "hearth_subscribed_tracks",
        Kind::Gauge,
        "Down tracks: one per forwarded track per subscriber.",
        get(&media.subscribed_tracks),
    );
    out.one(
        "hearth_websocket_connections",
        Kind::Gauge,
        "Open signaling WebSockets.",
        server.websocket_connections.load(Ordering::Relaxed),
    );
    out.one(
        "hearth_rtp_packets_in_total",
        Kind::Counter,
        "RTP packets received from publishers.",
        get(&media.packets_in),
    );
    out.one(
        "hearth_rtp_bytes_in_total",
        Kind::Counter,
        "RTP payload bytes received from publishers.",
        get(&media.bytes_in),
    );
    out.one(
        "hearth_rtp_packets_in_missing_total",
        Kind::Counter,
        "Sequence numbers missing from publishers' streams as read: lost on the network, or \
         dropped by the WebRTC stack's queue before Hearth read them.",
        get(&media.packets_in_missing),
    );
    out.one(
        "hearth_rtp_packets_in_late_total",
        Kind::Counter,
        "Publishers' packets read after a later one: reordered, or retransmitted into a hole.",
        get(&media.packets_in_late),
    );
    out.one(
        "hearth_rtp_packets_out_total",
        Kind::Counter,
        "RTP packets written to subscribers.",
        get(&media.packets_out),
    );
    out.one(
        "hearth_rtp_bytes_out_total",
        Kind::Counter,
        "RTP payload bytes written to subscribers.",
        get(&media.bytes_out),
    );
    out.labelled(
        "hearth_rtp_packets_dropped_total",
        Kind::Counter,
        "RTP packets not forwarded to a subscriber, by reason.",
        "reason",
        [
            ("queue_overflow", get(&media.dropped_overflow)),
            ("waiting_keyframe", get(&media.dropped_waiting_keyframe)),
            ("paused", get(&media.dropped_paused)),
        ],
    );
    out.one(
        "hearth_keyframe_requests_sent_total",
        Kind::Counter,
        "Keyframe requests (PLI) sent to publishers.",
        get(&media.keyframe_requests_sent),
    );
    out.one(
        "hearth_keyframe_requests_throttled_total",
        Kind::Counter,
        "Keyframe requests coalesced or throttled instead of being sent.",
        get(&media.keyframe_requests_throttled),
    );
    out.one(
        "hearth_keyframe_requests_from_subscribers_total",
        Kind::Counter,
        "Keyframe requests (PLI/FIR) received from subscribers.",
        get(&media.keyframe_requests_from_subscribers),
    );
    out.one(
        "hearth_layer_switches_total",
        Kind::Counter,
        "Times a subscriber's video moved to another simulcast layer.",
        get(&media.layer_switches),
    );
    out.one(
        "hearth_ice_restarts_total",
        Kind::Counter,
        "ICE restarts of subscribe connections that clients asked for (their network changed).",
        server.ice_restarts(),
    );
    out.one(
        "hearth_participants_resumed_total",
        Kind::Counter,
        "Participants who lost their signaling socket and resumed on a new one.",
        server.resumes.load(Ordering::Relaxed),
    );
    let errors = server
        .websocket_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    out.labelled(
        "hearth_websocket_errors_total",
        Kind::Counter,
        "Error messages sent on signaling WebSockets, by error code.",
        "code",
        errors,
    );
    let recordings = state.sessions().recordings();
    out.one(
        "hearth_recording_active",
        Kind::Gauge,
        "Recordings in progress.",
        recordings.active(),
    );
    out.one(
        "hearth_recording_packets_dropped_total",
        Kind::Counter,
        "Packets recorders could not take in time (the disk fell behind); live media is not affected.",
        recordings.dropped_packets(),
    );
    if let Some(bytes) = read_proc("/proc/self/status", resident_bytes) {
        out.one(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            bytes,
        );
    }
    if let Some(bytes) = state.config().heap_allocated.and_then(|read| read()) {
        out.one(
            "hearth_heap_allocated_bytes",
            Kind::Gauge,
            "Bytes allocated and not yet freed, by the allocator's own count (resident memory also holds pages the allocator keeps for reuse).",
            bytes,
        );
    }
    if let Some(seconds) = read_proc("/proc/self/stat", cpu_seconds) {
        out.one(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            seconds,
        );
    }
    out.text
}

/// Reads `path` and parses it; `None` where there is no such file (not Linux).
fn read_proc<T>(path: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
    parse(&std::fs::read_to_string(path).ok()?)
}

/// `VmRSS` of `/proc/self/status`, which the kernel gives in kB.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `utime + stime` of `/proc/self/stat`, in seconds. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from the last
/// `)`: after it come `state` (field 3), ..., `utime` (14) and `stime` (15).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// A page of the text format being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// A metric with one unlabelled sample.
    fn one(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.header(name, kind, help);
        let _ = writeln!(self.text, "{name} {value}");
    }

    /// A metric with one sample per value of `label`. Label values here are fixed reason names
    /// and error codes (snake_case), which need no escaping.
    fn labelled<V: Display>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'static str, V)>,
    ) {
        self.header(name, kind, help);
        for (value, n) in samples {
            let _ = writeln!(self.text, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 125 0 0 20 0 \
                    9 0 100 2000000 600 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(3.75));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn resident_memory_is_read_in_bytes() {
        let status = "Name:\thearth\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
        assert_eq!(resident_bytes(status), Some(1234 * 1024));
        assert_eq!(resident_bytes("Name:\thearth\n"), None);
    }

    #[test]
    fn a_room_share_moves_the_totals_and_takes_itself_back_when_dropped() {
        let totals = Arc::new(RoomTotals::default());
        let mut a = RoomShare::new(Arc::clone(&totals));
        let mut b = RoomShare::new(Arc::clone(&totals));
        a.set(3, 6);
        b.set(2, 1);
        a.set(2, 4);
        assert_eq!(totals.participants.load(Ordering::Relaxed), 4);
        assert_eq!(totals.published_tracks.load(Ordering::Relaxed), 5);
        drop(a);
        assert_eq!(totals.participants.load(Ordering::Relaxed), 2);
        assert_eq!(totals.published_tracks.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(totals.participants.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_page_is_valid_exposition_text() {
        let mut out = Exposition::default();
        out.one("m_total", Kind::Counter, "Things.", 7);
        out.labelled("d_total", Kind::Counter, "Drops.", "reason", [("x", 1u64)]);
        assert_eq!(
            out.text,
            "# HELP m_total Things.\n# TYPE m_total counter\nm_total 7\n\
             # HELP d_total Drops.\n# TYPE d_total counter\nd_total{reason=\"x\"} 1\n"
        );
    }
}
