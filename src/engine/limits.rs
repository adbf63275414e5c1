//! Rate limits: a token bucket per socket, and a failure counter per user or
//! client address that stops brute-forcing invite keys.

use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Allows `rate` requests a second with bursts of `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Whether the bucket has refilled completely (it can be forgotten).
    fn is_full(&self) -> bool {
        self.tokens + self.last.elapsed().as_secs_f64() * self.rate >= self.burst
    }

    /// Takes one token; false when the bucket is empty.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A token bucket per key (a client address): `per_minute` takes a minute
/// to refill, and as many may come at once. Buckets that have refilled are
/// forgotten now and then, so memory stays bounded.
pub struct KeyedBuckets {
    rate: f64,
    burst: f64,
    buckets: DashMap<String, TokenBucket>,
}

impl KeyedBuckets {
    pub fn per_minute(per_minute: u32) -> KeyedBuckets {
        let burst = f64::from(per_minute.max(1));
        KeyedBuckets {
            rate: burst / 60.0,
            burst,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token from `key`'s bucket; false when it is empty.
    pub fn take(&self, key: &str) -> bool {
        let allowed = self
            .buckets
            .entry(key.to_string())
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst))
            .take();
        if self.buckets.len() > 10_000 {
            self.buckets.retain(|_, bucket| !bucket.is_full());
        }
        allowed
    }
}

/// Counts failures per key in fixed windows; more than `max` in one window
/// blocks the key until the window ends.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    counts: DashMap<String, (Instant, u32)>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max,
            window,
            counts: DashMap::new(),
        }
    }

    /// True while `key` has used up its failures for the current window.
    pub fn is_blocked(&self, key: &str) -> bool {
        match self.counts.get(key) {
            Some(entry) => {
                let (start, count) = *entry;
                start.elapsed() < self.window && count >= self.max
            }
            None => false,
        }
    }

    /// Records one failure for `key`.
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        let mut entry = self.counts.entry(key.to_string()).or_insert((now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        drop(entry);
        // Keep memory bounded by forgetting finished windows now and then.
        if self.counts.len() > 10_000 {
            let window = self.window;
            self.counts.retain(|_, (start, _)| start.elapsed() < window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let mut b = TokenBucket::new(100.0, 200.0);
        let allowed = (0..300).filter(|_| b.take()).count();
        // The burst plus whatever refilled during the loop (well under 100).
        assert!((200..260).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn keyed_buckets_are_separate_per_key() {
        let b = KeyedBuckets::per_minute(3);
        assert_eq!((0..5).filter(|_| b.take("a")).count(), 3);
        assert!(b.take("b"));
    }

    #[test]
    fn failures_block_after_max_and_reset_after_window() {
        let l = FailureLimiter::new(3, Duration::from_millis(50));
        for _ in 0..3 {
            assert!(!l.is_blocked("u"));
            l.record("u");
        }
        assert!(l.is_blocked("u"));
        assert!(!l.is_blocked("other"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!l.is_blocked("u"));
    }
}
