//! What goes into a queue and what comes out of it.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job type (BullMQ's job name), e.g. `progress-analysis`.
    pub name: String,
    /// JSON payload.
    pub data: Value,
    /// Attempts, backoff, delay, priority, id.
    pub options: JobOptions,
}

impl NewJob {
    /// A job with the default options.
    pub fn new(name: impl Into<String>, data: Value) -> Self {
        Self {
            name: name.into(),
            data,
            options: JobOptions::default(),
        }
    }
}

/// Per-job options, as in BullMQ.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// A caller-chosen id; adding it again while the job exists adds nothing.
    pub id: Option<String>,
    /// Attempts before the job fails for good (at least 1).
    pub attempts: u32,
    /// Base of the exponential backoff: attempt n waits `backoff * 2^(n-1)`.
    pub backoff: Duration,
    /// Not runnable before this delay has passed.
    pub delay: Duration,
    /// 0 = no priority (served first, in order); otherwise 1 is the highest.
    pub priority: u32,
}

impl Default for JobOptions {
    /// The roadmap's defaults: 3 attempts, exponential backoff from 1 s.
    fn default() -> Self {
        Self {
            id: None,
            attempts: 3,
            backoff: Duration::from_secs(1),
            delay: Duration::ZERO,
            priority: 0,
        }
    }
}

/// The wait before retrying after the `failed_attempts`-th failure
/// (BullMQ's exponential backoff: `base * 2^(failed_attempts - 1)`).
pub fn backoff_delay(base: Duration, failed_attempts: u32) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(20);
    base.saturating_mul(1 << exponent)
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Runnable, waiting for a worker.
    Waiting,
    /// Waiting for its delay or retry backoff to pass.
    Delayed,
    /// Being processed.
    Active,
    /// Done; the result is kept (within retention).
    Completed,
    /// Failed for good; the reason is kept (within retention).
    Failed,
}

/// A job as seen from outside: for status endpoints and the admin page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// Job type.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Current state.
    pub state: JobState,
    /// Last reported progress (`0` if none).
    pub progress: Value,
    /// Return value, once completed.
    pub result: Option<Value>,
    /// Why the last attempt failed.
    pub failed_reason: Option<String>,
    /// Attempts that failed so far.
    pub attempts_made: u32,
    /// Creation time (ms since the epoch).
    pub created_at: u64,
    /// When the last attempt started.
    pub processed_on: Option<u64>,
    /// When it completed or failed for good.
    pub finished_on: Option<u64>,
}

/// Jobs per state in one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Runnable now.
    pub waiting: u64,
    /// Being processed.
    pub active: u64,
    /// Waiting for a delay or backoff.
    pub delayed: u64,
    /// Completed, within retention.
    pub completed: u64,
    /// Failed for good, within retention.
    pub failed: u64,
}

/// How many finished jobs a queue keeps (the roadmap: 100 completed, 50 failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Completed jobs kept.
    pub completed: u32,
    /// Failed jobs kept.
    pub failed: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed: 100,
            failed: 50,
        }
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs processed at once.
    pub concurrency: usize,
    /// A job whose worker stops renewing its lease for this long is "stalled"
    /// and runs again; recovery happens within 1.5× this interval.
    pub stalled_interval: Duration,
    /// Times a job may stall before it fails instead of running again.
    pub max_stalled: u32,
    /// How often the database backend looks for jobs added by other
    /// processes (jobs added in-process wake the worker at once).
    pub poll_interval: Duration,
    /// At shutdown, how long running jobs may finish before they are handed back.
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            stalled_interval: Duration::from_secs(30),
            max_stalled: 1,
            poll_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=4).map(|n| backoff_delay(base, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
    }
}
