use std::{collections::HashMap, sync::Mutex, time::Instant};

use async_trait::async_trait;

use crate::{Decision, Limit, LimitError, RateLimiter, decide};

/// Counts in this process. Memory is bounded: when the table is full, windows
/// that have ended are dropped first, then the oldest windows.
#[derive(Debug)]
pub struct MemoryLimiter {
    windows: Mutex<HashMap<String, Window>>,
    capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u64,
    ends: Instant,
}

impl MemoryLimiter {
    /// A limiter tracking at most `capacity` keys at once.
    pub fn new(capacity: usize) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Counts a hit synchronously (usable from non-async middleware).
    pub fn hit_now(&self, key: &str, limit: Limit) -> Decision {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(key) && windows.len() >= self.capacity {
            evict(&mut windows, now, self.capacity);
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            count: 0,
            ends: now + limit.window,
        });
        if window.ends <= now {
            *window = Window {
                count: 0,
                ends: now + limit.window,
            };
        }
        window.count += 1;
        decide(window.count, limit, window.ends - now)
    }
}

fn evict(windows: &mut HashMap<String, Window>, now: Instant, capacity: usize) {
    windows.retain(|_, w| w.ends > now);
    if windows.len() * 10 >= 9 * capacity {
        // Still (nearly) full of live windows: drop the half ending soonest.
        let mut ends: Vec<Instant> = windows.values().map(|w| w.ends).collect();
        ends.sort_unstable();
        let cutoff = ends[ends.len() / 2];
        windows.retain(|_, w| w.ends > cutoff);
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: &str, limit: Limit) -> Result<Decision, LimitError> {
        Ok(self.hit_now(key, limit))
    }

    async fn reset(&self, key: &str) -> Result<(), LimitError> {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMIT: Limit = Limit {
        max: 3,
        window: Duration::from_secs(60),
    };

    #[test]
    fn allows_up_to_the_limit_then_refuses() {
        let limiter = MemoryLimiter::new(100);
        for _ in 0..3 {
            assert_eq!(limiter.hit_now("k", LIMIT), Decision::Allowed);
        }
        assert!(matches!(
            limiter.hit_now("k", LIMIT),
            Decision::Limited { .. }
        ));
        assert_eq!(limiter.hit_now("other", LIMIT), Decision::Allowed);
    }

    #[test]
    fn a_new_window_starts_fresh() {
        let limiter = MemoryLimiter::new(100);
        let short = Limit {
            max: 1,
            window: Duration::ZERO,
        };
        assert_eq!(limiter.hit_now("k", short), Decision::Allowed);
        assert_eq!(limiter.hit_now("k", short), Decision::Allowed);
    }

    #[test]
    fn table_stays_bounded() {
        let limiter = MemoryLimiter::new(50);
        for i in 0..10_000 {
            limiter.hit_now(&format!("k{i}"), LIMIT);
        }
        let len = limiter.windows.lock().map(|w| w.len()).unwrap_or(0);
        assert!(len <= 50, "table grew to {len}");
    }

    #[tokio::test]
    async fn reset_forgets_the_count() {
        let limiter = MemoryLimiter::new(100);
        for _ in 0..4 {
            limiter.hit("k", LIMIT).await.ok();
        }
        limiter.reset("k").await.ok();
        assert_eq!(limiter.hit("k", LIMIT).await.ok(), Some(Decision::Allowed));
    }
}
