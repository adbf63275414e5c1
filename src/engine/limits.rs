//! Rate limits: a token bucket per socket, and a failure counter per user or
//! client address that stops brute-forcing invite keys.

use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::Mutex;
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

/// Counts failures per key and blocks a key once it has `max` of them in
/// the current and the previous window together, i.e. in the last one to
/// two windows. Counts live in two generations that rotate every window:
/// forgetting old keys is dropping a whole generation, so memory holds at
/// most two windows' worth of failing keys and no call ever scans them.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    generations: Mutex<Generations>,
}

struct Generations {
    /// When `current` began.
    started: Instant,
    current: HashMap<String, u32>,
    previous: HashMap<String, u32>,
}

impl Generations {
    /// Moves time on to `now`: the generations that ended are dropped.
    fn rotate(&mut self, now: Instant, window: Duration) {
        let elapsed = now.duration_since(self.started);
        if elapsed < window {
            return;
        }
        if elapsed < window * 2 {
            self.previous = std::mem::take(&mut self.current);
            self.started += window;
        } else {
            self.previous.clear();
            self.current.clear();
            self.started = now;
        }
    }

    fn count(&self, key: &str) -> (u32, u32) {
        let get = |m: &HashMap<String, u32>| m.get(key).copied().unwrap_or(0);
        (get(&self.previous), get(&self.current))
    }
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max,
            window,
            generations: Mutex::new(Generations {
                started: Instant::now(),
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
        }
    }

    fn generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.rotate(Instant::now(), self.window);
        g
    }

    /// True while `key` has used up its failures.
    pub fn is_blocked(&self, key: &str) -> bool {
        self.retry_after(key).is_some()
    }

    /// How long `key` stays blocked; `None` when it is not.
    pub fn retry_after(&self, key: &str) -> Option<Duration> {
        let g = self.generations();
        let (previous, current) = g.count(key);
        if previous + current < self.max {
            return None;
        }
        let to_rotation = self.window.saturating_sub(g.started.elapsed());
        // Past the next rotation the current count alone still blocks.
        Some(if current >= self.max {
            to_rotation + self.window
        } else {
            to_rotation
        })
    }

    /// Records one failure for `key`.
    pub fn record(&self, key: &str) {
        let mut g = self.generations();
        match g.current.get_mut(key) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                g.current.insert(key.to_string(), 1);
            }
        }
    }

    /// Keys remembered (both generations), for tests and metrics.
    pub fn len(&self) -> usize {
        let g = self.generations();
        g.previous.len() + g.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn failures_block_after_max_and_clear_within_two_windows() {
        let window = Duration::from_millis(50);
        let l = FailureLimiter::new(3, window);
        for _ in 0..3 {
            assert!(!l.is_blocked("u"));
            l.record("u");
        }
        assert!(l.is_blocked("u"));
        let wait = l.retry_after("u").unwrap();
        assert!(wait > window && wait <= window * 2, "{wait:?}");
        assert!(!l.is_blocked("other"));
        std::thread::sleep(window * 2 + Duration::from_millis(10));
        assert!(!l.is_blocked("u"));
    }

    #[test]
    fn failures_in_the_previous_window_still_count() {
        let window = Duration::from_millis(200);
        let l = FailureLimiter::new(3, window);
        l.record("u");
        l.record("u");
        let mut g = l.generations();
        let now = g.started + window;
        g.rotate(now, window);
        drop(g);
        l.record("u");
        assert!(l.is_blocked("u"), "two before the rotation, one after");
    }

    #[test]
    fn old_keys_are_forgotten_a_generation_at_a_time() {
        let window = Duration::from_secs(3600);
        let l = FailureLimiter::new(20, window);
        for i in 0..50_000 {
            l.record(&format!("k{i}"));
        }
        assert_eq!(
            l.len(),
            50_000,
            "nothing is scanned or dropped within a window"
        );
        let mut g = l.generations();
        let later = g.started + window;
        g.rotate(later, window);
        assert_eq!((g.previous.len(), g.current.len()), (50_000, 0));
        let later = g.started + window;
        g.rotate(later, window);
        assert_eq!((g.previous.len(), g.current.len()), (0, 0));
    }
}
