//! Keeps webrtc-rs from flooding the log.
//!
//! Under overload webrtc-rs logs an ERROR, with the whole packet in it, for every packet it
//! drops (a full track queue, a socket that refuses): 2 800 lines, 8 MB, in two minutes of a
//! server saturated by 500 viewers, and formatting them costs the CPU the server was short of.
//! Each webrtc-rs call site may log [`BURST`] lines per [`WINDOW`]; the rest are counted, and
//! [`report`] writes one line per call site saying how many were left out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// Lines one call site may log per window.
pub const BURST: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Whether events from `target` are rate-limited: the WebRTC stack's, not Hearth's own.
fn limited(target: &str) -> bool {
    ["webrtc", "rtc"].iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_') || rest.starts_with("::"))
    })
}

/// A call site: its target and line. webrtc-rs logs through the `log` crate, so its events
/// arrive through tracing's bridge, whose metadata names the bridge; the real target and line
/// are recovered from the event, and owned.
type SiteKey = (String, u32);

#[derive(Debug)]
struct Site {
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

/// The filter; install with `.with(limit.clone())`, and run [`report`] beside it.
#[derive(Debug, Clone, Default)]
pub struct RateLimit {
    /// One entry per call site that logged: bounded by the call sites compiled in.
    sites: Arc<Mutex<HashMap<SiteKey, Site>>>,
}

impl RateLimit {
    /// Whether one more event of `site` may be logged at `now`.
    fn admit(&self, site: SiteKey, now: Instant) -> bool {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let entry = sites.entry(site).or_insert_with(|| Site {
            window_start: now,
            in_window: 0,
            suppressed: 0,
        });
        if now.duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.in_window = 0;
        }
        if entry.in_window < BURST {
            entry.in_window += 1;
            true
        } else {
            entry.suppressed += 1;
            false
        }
    }

    /// Takes the counts of lines left out since the last call, by call site.
    pub fn take_suppressed(&self) -> Vec<(String, u64)> {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        sites
            .iter_mut()
            .filter(|(_, s)| s.suppressed > 0)
            .map(|((target, line), s)| {
                (
                    format!("{target}:{line}"),
                    std::mem::take(&mut s.suppressed),
                )
            })
            .collect()
    }
}

impl<S: Subscriber> Layer<S> for RateLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !limited(meta.target()) {
            return true;
        }
        self.admit(
            (meta.target().to_owned(), meta.line().unwrap_or(0)),
            Instant::now(),
        )
    }
}

/// Every [`WINDOW`], one line per call site whose lines were left out. (Logging from inside
/// the filter would go nowhere: tracing drops events raised while it dispatches one.)
pub async fn report(limit: RateLimit) {
    let mut tick = tokio::time::interval(WINDOW);
    loop {
        tick.tick().await;
        for (site, suppressed) in limit.take_suppressed() {
            tracing::warn!(%site, suppressed, "similar messages left out of the log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_webrtc_stacks_targets_are_limited() {
        for target in [
            "webrtc",
            "webrtc::peer_connection::driver",
            "rtc",
            "rtc_ice::agent",
            "rtc::peer_connection",
        ] {
            assert!(limited(target), "{target}");
        }
        for target in ["hearth", "hearth_server::room", "rtcp_like", "tower_http"] {
            assert!(!limited(target), "{target}");
        }
    }

    #[test]
    fn a_call_site_logs_a_burst_per_window_and_the_rest_is_counted() {
        let limit = RateLimit::default();
        let site = || ("webrtc::peer_connection::driver".to_string(), 1589);
        let start = Instant::now();
        let admitted = (0..25).filter(|_| limit.admit(site(), start)).count();
        assert_eq!(admitted, BURST as usize);
        assert!(
            limit.admit(("rtc_ice::agent".into(), 1), start),
            "another call site has its own budget"
        );
        assert_eq!(
            limit.take_suppressed(),
            [("webrtc::peer_connection::driver:1589".to_string(), 15)]
        );
        assert_eq!(limit.take_suppressed(), [], "counts are taken once");
        assert!(
            limit.admit(site(), start + WINDOW),
            "a new window, a new burst"
        );
    }
}
