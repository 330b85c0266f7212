//! Token buckets, for per-connection, per-channel and per-user message rates.

use std::{collections::HashMap, hash::Hash, sync::Mutex};

use tokio::time::Instant;

/// `rate` messages per second, in bursts of at most `rate`.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            tokens: rate,
            rate,
            at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_n(1)
    }

    /// Takes `n` tokens if there are that many (else none).
    pub fn take_n(&mut self, n: u32) -> bool {
        self.refill();
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
    }

    /// Whether it has refilled completely (forgetting it loses nothing).
    fn is_full(&self) -> bool {
        self.tokens + self.at.elapsed().as_secs_f64() * self.rate >= self.rate
    }
}

/// One [`Bucket`] per key, made on first use; full buckets are forgotten
/// when many keys pile up, so memory follows the keys active in the last
/// second, not every key ever seen.
#[derive(Debug)]
pub struct Budgets<K> {
    rate: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Keys kept before full buckets are swept.
const SWEEP_AT: usize = 4096;

impl<K: Hash + Eq> Budgets<K> {
    /// `rate` per second for each key.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` tokens of `key`'s budget if it has them.
    pub fn take_n(&self, key: K, n: u32) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| !b.is_full());
        }
        let rate = self.rate;
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(rate))
            .take_n(n)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_key_has_its_own_budget_that_refills() {
        let budgets = Budgets::new(10);
        assert!(budgets.take_n("a", 8));
        assert!(!budgets.take_n("a", 3), "all or nothing");
        assert!(budgets.take_n("a", 2));
        assert!(budgets.take_n("b", 10));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(budgets.take_n("a", 5));
        assert!(!budgets.take_n("a", 1));
    }
}
