//! What a run measures: the window broadcasts count in, and the latency
//! histogram every client records into.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// The measured window, by send time: a delivery counts when its broadcast
/// was sent inside it, wherever it arrives, so nothing in flight at either
/// edge is lost or counted twice.
pub(super) struct Window {
    from_us: AtomicU64,
    to_us: AtomicU64,
    /// Broadcasts sent inside the window.
    pub(super) sent: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            from_us: AtomicU64::new(u64::MAX),
            to_us: AtomicU64::new(u64::MAX),
            sent: AtomicU64::new(0),
        }
    }
}

impl Window {
    pub(super) fn open(&self) {
        self.from_us.store(now_micros(), Ordering::Relaxed);
    }

    /// Closes the window; returns its length in seconds.
    pub(super) fn close(&self) -> f64 {
        let to = now_micros();
        self.to_us.store(to, Ordering::Relaxed);
        to.saturating_sub(self.from_us.load(Ordering::Relaxed)) as f64 / 1e6
    }

    pub(super) fn contains(&self, sent_us: u64) -> bool {
        (self.from_us.load(Ordering::Relaxed)..self.to_us.load(Ordering::Relaxed))
            .contains(&sent_us)
    }
}

/// Microseconds since the Unix epoch: the send time broadcasts carry.
pub(super) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latencies in µs, lock-free: 10 µs buckets up to 10 ms, then 1 ms
/// buckets up to 1 s, then 100 ms buckets up to 10 s.
pub(super) struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..2091).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    fn bucket(us: u64) -> usize {
        let i = match us {
            0..10_000 => us / 10,
            10_000..1_000_000 => 1_000 + (us - 10_000) / 1_000,
            _ => 1_990 + (us - 1_000_000) / 100_000,
        };
        (i as usize).min(2090)
    }

    /// Upper bound of bucket `i`, in ms.
    fn upper_ms(i: usize) -> f64 {
        let us = match i as u64 {
            i @ 0..1_000 => (i + 1) * 10,
            i @ 1_000..1_990 => 10_000 + (i - 999) * 1_000,
            i => 1_000_000 + (i - 1_989) * 100_000,
        };
        us as f64 / 1000.0
    }

    pub(super) fn record(&self, us: u64) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The smallest bucket bound at or above quantile `q` (0..=1), in ms.
    pub(super) fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::upper_ms(i);
            }
        }
        Self::upper_ms(self.buckets.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn histogram_quantiles_are_bucket_bounds() {
        let h = Histogram::default();
        for us in [5, 15, 25, 35, 12_345, 2_500_000] {
            h.record(us);
        }
        assert_eq!(h.count(), 6);
        assert_eq!(h.quantile(0.5), 0.03);
        assert_eq!(h.quantile(0.8), 13.0);
        assert_eq!(h.quantile(1.0), 2600.0);
    }
}
