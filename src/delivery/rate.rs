//! Per-endpoint rate limits (`rateLimit`): a token bucket each, holding at most `rate` tokens
//! (burst = rate) and refilled at `rate` per second. A delivery takes a token when it starts; an
//! endpoint without one is skipped by the dispatcher until the next token is due, so a throttled
//! delivery waits in its queue, is never failed, and holds no delivery slot meanwhile.
//!
//! A bucket starts with one token (a new endpoint, or after a restart), so the first second
//! does not carry a full burst on top of the steady rate. Integer arithmetic in thousandths of a
//! token: exact, and the same on every platform.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Thousandths of a token in one token.
const UNIT: i64 = 1000;
/// Buckets kept before full (idle) ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: u32,
    /// Thousandths of a token.
    level: i64,
    at_ms: i64,
}

impl Bucket {
    fn capacity(&self) -> i64 {
        i64::from(self.rate) * UNIT
    }

    /// Refills for the time since the last look (a clock that went back adds nothing).
    fn refill(&mut self, rate: u32, now_ms: i64) {
        if rate != self.rate {
            self.rate = rate;
            self.level = self.level.min(self.capacity());
        }
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        // rate tokens per 1000 ms = rate thousandths per ms
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(i64::from(rate)))
            .min(self.capacity());
        self.at_ms = now_ms.max(self.at_ms);
    }
}

/// The buckets of every rate-limited endpoint.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    /// How many deliveries to `endpoint_id` (limited to `rate` per second) may start at
    /// `now_ms`, and, when none may, when the next one can.
    pub fn available(&self, endpoint_id: &str, rate: u32, now_ms: i64) -> (usize, Option<i64>) {
        let rate = rate.max(1);
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_BUCKETS && !map.contains_key(endpoint_id) {
            map.retain(|_, b| {
                let mut b = *b;
                b.refill(b.rate, now_ms);
                b.level < b.capacity()
            });
        }
        let bucket = map.entry(endpoint_id.to_owned()).or_insert(Bucket {
            rate,
            level: UNIT,
            at_ms: now_ms,
        });
        bucket.refill(rate, now_ms);
        let whole = usize::try_from(bucket.level / UNIT).unwrap_or(0);
        if whole > 0 {
            return (whole, None);
        }
        // The missing thousandths arrive at `rate` per ms.
        let missing = UNIT - bucket.level;
        let wait = (missing + i64::from(rate) - 1) / i64::from(rate);
        (0, Some(now_ms + wait.max(1)))
    }

    /// A delivery to `endpoint_id` started: it takes a token (if the endpoint has a bucket).
    pub fn take(&self, endpoint_id: &str) {
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = map.get_mut(endpoint_id) {
            b.level -= UNIT;
        }
    }

    /// Forgets an endpoint's bucket (deleted, or its limit removed).
    pub fn forget(&self, endpoint_id: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(endpoint_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a dispatcher that starts whatever the bucket allows, waking exactly when the
    /// next token is due, and counts starts per second.
    fn per_second(rate: u32, seconds: i64) -> Vec<usize> {
        let limits = RateLimits::default();
        let mut counts = vec![0; usize::try_from(seconds).unwrap_or(0)];
        let mut now = 0;
        while now < seconds * 1000 {
            let (n, next) = limits.available("wh-1", rate, now);
            for _ in 0..n {
                limits.take("wh-1");
                counts[usize::try_from(now / 1000).unwrap_or(0)] += 1;
            }
            now = next.unwrap_or(now + 1);
        }
        counts
    }

    #[test]
    fn steady_rate_without_a_first_burst() {
        assert_eq!(per_second(10, 5), [10, 10, 10, 10, 10]);
        assert_eq!(per_second(1, 3), [1, 1, 1]);
        assert_eq!(per_second(1000, 2), [1000, 1000]);
    }

    #[test]
    fn a_quiet_endpoint_may_burst_up_to_its_rate() {
        let limits = RateLimits::default();
        assert_eq!(limits.available("e", 5, 0), (1, None));
        limits.take("e");
        assert_eq!(limits.available("e", 5, 0), (0, Some(200)));
        assert_eq!(limits.available("e", 5, 10_000).0, 5, "capped at the rate");
        // A lower rate caps what was saved up; a clock going back adds nothing.
        assert_eq!(limits.available("e", 2, 10_000).0, 2);
        assert_eq!(limits.available("e", 2, 5_000).0, 2);
        limits.forget("e");
        assert_eq!(
            limits.available("e", 2, 20_000).0,
            1,
            "a new bucket starts with one"
        );
    }
}
