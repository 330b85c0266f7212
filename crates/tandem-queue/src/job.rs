//! The job a processor receives, and how one attempt is run and measured.

use std::{
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures_util::FutureExt;
use serde_json::Value;

use crate::QueueError;

/// Processes the jobs of one queue.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// Runs one attempt. `Ok` completes the job with that result.
    async fn process(&self, job: &Job) -> Result<Value, JobError>;
}

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Kept as the job's failure reason; shown to its owner.
    pub message: String,
    /// False for errors that will fail again the same way (bad input, a 4xx
    /// from a provider): the job fails at once instead of using its attempts.
    pub retryable: bool,
    /// The earliest useful retry the failing service asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl JobError {
    /// A transient failure (timeout, 5xx, 429): retried with backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    /// Asks the queue not to retry before `wait` has passed.
    pub fn after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// A permanent failure: the job fails without further attempts.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a backend stores progress for the attempt in hand.
#[async_trait]
pub(crate) trait ProgressSink: Send + Sync {
    async fn update(&self, progress: &Value) -> Result<(), QueueError>;
}

/// One attempt of a job, as handed to a [`Processor`].
pub struct Job {
    /// Job id.
    pub id: String,
    /// Job type.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Attempts that failed before this one.
    pub attempts_made: u32,
    progress: Arc<dyn ProgressSink>,
}

impl Job {
    pub(crate) fn new(
        id: String,
        name: String,
        data: Value,
        attempts_made: u32,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        Self {
            id,
            name,
            data,
            attempts_made,
            progress,
        }
    }

    /// Reports progress (a number 0–100 or any JSON), visible in the job's status.
    pub async fn progress(&self, progress: Value) -> Result<(), QueueError> {
        self.progress.update(&progress).await
    }
}

/// How an attempt ended.
pub(crate) enum Outcome {
    /// Completed with this result.
    Completed(Value),
    /// Failed; `retry` says whether attempts remain and the error allows one.
    Failed { reason: String, retry: bool },
}

/// Longest a `Retry-After` holds a worker slot.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Runs one attempt, turning a panic into a failure, and records
/// `tandem_queue_jobs_total` and `tandem_queue_job_duration_seconds`.
///
/// A retryable failure that asks for a longer wait than the job's backoff
/// (`Retry-After` of a rate-limited provider) keeps its slot for the
/// difference (up to a minute) before it is reported, on either backend:
/// the worker stops calling the provider meanwhile, and the retry comes no
/// earlier than asked.
pub(crate) async fn attempt(
    processor: &dyn Processor,
    job: &Job,
    queue: &str,
    max_attempts: u32,
    backoff: Duration,
) -> Outcome {
    let started = Instant::now();
    let result = AssertUnwindSafe(processor.process(job))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(JobError::retryable("job processor panicked")));
    let outcome = match result {
        Ok(value) => Outcome::Completed(value),
        Err(error) => {
            let retry = error.retryable && job.attempts_made + 1 < max_attempts;
            let backoff = crate::backoff_delay(backoff, job.attempts_made + 1);
            if let Some(wait) = error.retry_after.filter(|w| retry && *w > backoff) {
                tokio::time::sleep((wait - backoff).min(MAX_RETRY_AFTER)).await;
            }
            Outcome::Failed {
                retry,
                reason: error.message,
            }
        }
    };
    let label = match &outcome {
        Outcome::Completed(_) => "completed",
        Outcome::Failed { retry: true, .. } => "retried",
        Outcome::Failed { retry: false, .. } => "failed",
    };
    let queue = queue.to_owned();
    metrics::counter!("tandem_queue_jobs_total", "queue" => queue.clone(), "outcome" => label)
        .increment(1);
    metrics::histogram!("tandem_queue_job_duration_seconds", "queue" => queue)
        .record(started.elapsed().as_secs_f64());
    outcome
}
