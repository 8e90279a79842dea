//! The server's own counters from `GET /metrics` (Prometheus text format), when it has them.
//! Older servers answer 404; then the report falls back to what the receivers counted.

use std::collections::BTreeMap;

/// The counter of RTP packets the server wrote to subscribers: its forwarding rate.
pub const PACKETS_OUT: &str = "hearth_rtp_packets_out_total";
/// The gauge of tracks forwarded to subscribers right now.
pub const SUBSCRIBED_TRACKS: &str = "hearth_subscribed_tracks";
/// Bytes the server's allocator has handed out and not had back.
pub const HEAP_ALLOCATED: &str = "hearth_heap_allocated_bytes";

/// Every sample of a scrape by metric name, summed over label sets; labelled series also
/// appear on their own, under `name{labels}`, so the report can tell drop reasons apart.
#[derive(Debug, Clone, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Scrapes `base/metrics`; `None` when the server has no such page or cannot be reached.
    pub async fn scrape(base: &str) -> Option<Self> {
        let r = crate::http::request(base, "GET", "/metrics", None, None)
            .await
            .ok()?;
        (r.status == 200).then(|| Self::parse(&r.body))
    }

    /// Parses the text format: `name{labels} value [timestamp]`, comments skipped.
    pub fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Label values may contain spaces, so the name ends at '{' or the first space, and
            // the value is the first field after the closing '}'.
            let (name, rest) = match line.find('{') {
                Some(open) => match line[open..].rfind('}') {
                    Some(close) => (&line[..open], &line[open + close + 1..]),
                    None => continue,
                },
                None => match line.split_once(char::is_whitespace) {
                    Some((n, r)) => (n, r),
                    None => continue,
                },
            };
            let Some(value) = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            else {
                continue;
            };
            *values.entry(name.to_owned()).or_insert(0.0) += value;
            let series = line[..line.len() - rest.len()].trim();
            if series != name {
                values.insert(series.to_owned(), value);
            }
        }
        Self(values)
    }

    /// One metric, if the server exports it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// Over an interval from `start` to `self`: counters (`_total`) as increases, everything
    /// else (gauges) as its value now. Only Hearth's own metrics.
    pub fn window(&self, start: &Self) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter(|(name, _)| name.starts_with("hearth_"))
            .map(|(name, now)| {
                let base = name.split('{').next().unwrap_or(name);
                let value = if base.ends_with("_total") {
                    now - start.get(name).unwrap_or(0.0)
                } else {
                    *now
                };
                (name.clone(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_over_labels_and_windows_subtract_counters_only() {
        let start = Metrics::parse(
            "# HELP hearth_rtp_packets_out_total Packets out.\n\
             # TYPE hearth_rtp_packets_out_total counter\n\
             hearth_rtp_packets_out_total{kind=\"audio\"} 10\n\
             hearth_rtp_packets_out_total{kind=\"video\",note=\"a b\"} 90 1700000000\n\
             hearth_participants 3\n\
             process_cpu_seconds_total 1.5\n\
             garbage\n",
        );
        assert_eq!(start.get(PACKETS_OUT), Some(100.0));
        assert_eq!(start.get("hearth_participants"), Some(3.0));
        assert_eq!(
            start.get("hearth_rtp_packets_out_total{kind=\"audio\"}"),
            Some(10.0)
        );
        let end = Metrics::parse(
            "hearth_rtp_packets_out_total{kind=\"audio\"} 30\n\
             hearth_rtp_packets_out_total{kind=\"video\",note=\"a b\"} 220\n\
             hearth_participants 5\n",
        );
        let w = end.window(&start);
        assert_eq!(
            w.get("hearth_rtp_packets_out_total{kind=\"audio\"}"),
            Some(&20.0)
        );
        assert_eq!(w.get(PACKETS_OUT), Some(&150.0));
        assert_eq!(w.get("hearth_participants"), Some(&5.0));
        assert!(!w.contains_key("process_cpu_seconds_total"));
    }
}
