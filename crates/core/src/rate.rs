//! A token bucket: the rate limit on messages from one client. Time is a parameter.

use std::time::Instant;

/// Allows bursts of `capacity` and `per_second` sustained.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(capacity: u32, per_second: f64, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_second,
            tokens: f64::from(capacity),
            last: now,
        }
    }

    /// Takes one token at `now`; `false` when the bucket is empty (the action is over the limit).
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_up_to_capacity_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, 1.0, t0);
        for _ in 0..5 {
            assert!(b.take(t0));
        }
        assert!(
            !b.take(t0),
            "the sixth message in a burst is over the limit"
        );
        assert!(!b.take(t0 + Duration::from_millis(900)));
        assert!(
            b.take(t0 + Duration::from_millis(1900)),
            "one more after a second"
        );
        // A long pause refills only to capacity.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(b.take(later));
        }
        assert!(!b.take(later));
    }
}
