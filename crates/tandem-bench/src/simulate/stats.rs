//! Latencies and errors per action, kept per second for the plots.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::model::Action;

/// One request's outcome.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Milliseconds since the recorder started.
    at_ms: u64,
    /// Latency in microseconds.
    micros: u64,
    ok: bool,
    /// Whether it succeeded (or failed) only after a retry.
    retried: bool,
}

/// Collects samples from every session.
pub struct Recorder {
    start: Instant,
    samples: Mutex<Vec<(Action, Sample)>>,
}

/// Summary of one action over a window.
#[derive(Debug, Clone, Serialize)]
pub struct ActionStats {
    /// The action.
    pub action: Action,
    /// Requests.
    pub count: u64,
    /// Failed requests (non-2xx, transport errors, timeouts), after retries.
    pub errors: u64,
    /// Requests that needed a retry (an instance or Redis was away).
    pub retried: u64,
    /// Requests per second.
    pub per_second: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// One second of one action, for the latency-over-time plot.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Seconds since the run started.
    pub second: u64,
    /// The action.
    pub action: Action,
    /// Requests in that second.
    pub count: u64,
    /// Errors in that second.
    pub errors: u64,
    /// Its 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

impl Recorder {
    /// An empty recorder; its clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            samples: Mutex::new(Vec::with_capacity(1 << 16)),
        }
    }

    /// Time since the recorder started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records an action that began at `began` (its latency includes retries).
    pub fn record(&self, action: Action, began: Instant, ok: bool, retried: bool) {
        let sample = Sample {
            at_ms: began.saturating_duration_since(self.start).as_millis() as u64,
            micros: began.elapsed().as_micros() as u64,
            ok,
            retried,
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((action, sample));
    }

    /// Per-action summaries of the samples that began in `[from, to)`.
    pub fn summary(&self, from: Duration, to: Duration) -> Vec<ActionStats> {
        let (from, to) = (from.as_millis() as u64, to.as_millis() as u64);
        let seconds = ((to - from) as f64 / 1000.0).max(1e-9);
        let mut by_action: BTreeMap<Action, Vec<Sample>> = BTreeMap::new();
        for (action, s) in self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if (from..to).contains(&s.at_ms) {
                by_action.entry(*action).or_default().push(*s);
            }
        }
        by_action
            .into_iter()
            .map(|(action, samples)| {
                let mut micros: Vec<u64> = samples.iter().map(|s| s.micros).collect();
                micros.sort_unstable();
                ActionStats {
                    action,
                    count: samples.len() as u64,
                    errors: samples.iter().filter(|s| !s.ok).count() as u64,
                    retried: samples.iter().filter(|s| s.retried).count() as u64,
                    per_second: samples.len() as f64 / seconds,
                    p50_ms: percentile(&micros, 0.50),
                    p95_ms: percentile(&micros, 0.95),
                    p99_ms: percentile(&micros, 0.99),
                }
            })
            .collect()
    }

    /// After `from` and before `to`: (user-visible errors, retried requests,
    /// when the last of either began).
    pub fn disturbance(&self, from: Duration, to: Duration) -> (u64, u64, Option<Duration>) {
        let (from, to) = (from.as_millis() as u64, to.as_millis() as u64);
        let (mut errors, mut retried, mut last) = (0, 0, None);
        for (_, s) in self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if (from..to).contains(&s.at_ms) && (!s.ok || s.retried) {
                errors += u64::from(!s.ok);
                retried += u64::from(s.retried);
                last = last.max(Some(Duration::from_millis(s.at_ms)));
            }
        }
        (errors, retried, last)
    }

    /// Per-second, per-action counts and p99s, for the plots.
    pub fn timeline(&self) -> Vec<Tick> {
        let mut buckets: BTreeMap<(u64, Action), Vec<Sample>> = BTreeMap::new();
        for (action, s) in self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            buckets
                .entry((s.at_ms / 1000, *action))
                .or_default()
                .push(*s);
        }
        buckets
            .into_iter()
            .map(|((second, action), samples)| {
                let mut micros: Vec<u64> = samples.iter().map(|s| s.micros).collect();
                micros.sort_unstable();
                Tick {
                    second,
                    action,
                    count: samples.len() as u64,
                    errors: samples.iter().filter(|s| !s.ok).count() as u64,
                    p99_ms: percentile(&micros, 0.99),
                }
            })
            .collect()
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v[..1], 0.99), 1.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
