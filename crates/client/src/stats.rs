//! Cheap receive-side statistics for the load tool: one-way latency from the send timestamp in
//! every payload, kept in a fixed-size log-linear histogram. A histogram rather than a list of
//! samples so memory stays bounded however long a run lasts and however many participants one
//! process hosts (500 viewers are 1000 tracks).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the UNIX epoch: the send timestamp in payloads. Wall-clock time rather
/// than a process-local `Instant`, so a sender and a receiver in different processes on one
/// machine agree on it.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Sub-buckets per power of two: 16 keeps every reported quantile within about 6% of the truth.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped below 2^40 µs (12 days): anything near that is a broken clock anyway.
const MAX_BITS: u32 = 40;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) * SUB as usize;

/// A histogram of microsecond values: exact below 16 µs, then 16 buckets per power of two.
/// Empty histograms allocate nothing, so idle tracks cost a few bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

fn index(v: u64) -> usize {
    let v = v.min((1 << MAX_BITS) - 1);
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) & (SUB - 1);
    (shift as usize + 1) * SUB as usize + sub as usize
}

/// The middle of bucket `i`: what a quantile falling in it reports.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low + (1 << shift) / 2
}

impl LatencyHistogram {
    /// Counts one value.
    pub fn record(&mut self, us: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[index(us)] += 1;
        self.total += 1;
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The values counted since `earlier`, an older copy of this histogram: how the load tool
    /// isolates its measured interval without resetting anything.
    pub fn since(&self, earlier: &Self) -> Self {
        if earlier.total == 0 {
            return self.clone();
        }
        let counts: Vec<u64> = self
            .counts
            .iter()
            .zip(&earlier.counts)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let total = counts.iter().sum();
        Self { counts, total }
    }

    /// The value below which a fraction `q` (0 to 1) of the values lie; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        // The rank of the wanted value, 1-based: q = 0.5 of 3 values is the 2nd.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value_of(i));
            }
        }
        None
    }
}

impl fmt::Debug for LatencyHistogram {
    // A summary: 592 bucket counts would drown any assertion message that prints a snapshot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.total)
            .field("p50_us", &self.quantile(0.5))
            .field("p99_us", &self.quantile(0.99))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_values_land_near_their_bucket() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let i = index(v);
            assert!(i == last || i == last + 1, "bucket index jumps at {v}");
            last = i;
            let back = value_of(i);
            // Within one bucket width: 1/16 of the value.
            assert!(
                back.abs_diff(v) <= v / SUB + 1,
                "{v} -> bucket {i} -> {back}"
            );
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5).unwrap_or(0);
        let p99 = h.quantile(0.99).unwrap_or(0);
        assert!((4700..=5300).contains(&p50), "p50 {p50}");
        assert!((9300..=10_600).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn since_keeps_only_the_newer_values_and_merge_adds() {
        let mut h = LatencyHistogram::default();
        h.record(100);
        let earlier = h.clone();
        h.record(5000);
        h.record(5000);
        let window = h.since(&earlier);
        assert_eq!(window.count(), 2);
        assert!(window.quantile(0.0).unwrap_or(0) > 4000);
        let mut sum = LatencyHistogram::default();
        sum.merge(&window);
        sum.merge(&earlier);
        assert_eq!(sum.count(), 3);
        assert_eq!(LatencyHistogram::default().since(&earlier).count(), 0);
    }
}
