//! Tandem's background job queue, with BullMQ's semantics behind one trait.
//!
//! [`QueueBackend`] has two implementations, chosen once at start-up:
//! - [`database::DatabaseQueue`] (embedded mode): jobs are rows in SQLite or
//!   PostgreSQL, claimed with a lease; a worker that dies loses its lease and
//!   its jobs run again.
//! - [`redis::RedisQueue`] (`REDIS_URL`): BullMQ's own data layout and Lua
//!   scripts (through the `bullmq-official` crate), so Node services using
//!   BullMQ, and Bull Board, share queues with Tandem.
//!
//! Both give: add with attempts / exponential backoff / delay / priority /
//! caller-chosen id (deduplication), workers with a concurrency limit,
//! progress, completion and failure with reasons, retention of the last
//! completed and failed jobs, state lookup, counts, stalled-job recovery, and
//! a graceful shutdown that hands unfinished jobs back to the queue.

pub mod database;
mod job;
mod model;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use tandem_core::Shutdown;

pub use job::{Job, JobError, Processor};
pub use model::{
    JobCounts, JobInfo, JobOptions, JobState, NewJob, Retention, WorkerOptions, backoff_delay,
};

/// Errors of the queue itself (not of a job).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database backend failed.
    #[error("queue storage: {0}")]
    Db(#[from] tandem_db::DbError),
    /// The queue engine (BullMQ on Redis) could not be reached or failed.
    #[error("queue engine: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A job's payload or result is not valid JSON.
    #[error("job data: {0}")]
    Json(#[from] serde_json::Error),
}

impl QueueError {
    /// Whether the queue's storage is unreachable or saturated (answer 503,
    /// not 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(db) => db.is_unavailable(),
            Self::Unavailable(_) => true,
            Self::Json(_) => false,
        }
    }
}

impl From<bullmq::Error> for QueueError {
    fn from(err: bullmq::Error) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

/// One queue engine; every method names the queue it works on.
#[async_trait]
pub trait QueueBackend: Send + Sync {
    /// `"database"` or `"redis"`, for logs and the admin page.
    fn kind(&self) -> &'static str;
    /// Adds a job and returns its id. Adding an id that is still in the queue
    /// (waiting, active or kept by retention) returns that id and adds nothing.
    async fn add(&self, queue: &str, job: NewJob) -> Result<String, QueueError>;
    /// A job's state, progress and outcome.
    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobInfo>, QueueError>;
    /// Jobs per state.
    async fn counts(&self, queue: &str) -> Result<JobCounts, QueueError>;
    /// The most recent jobs that failed for good, newest first.
    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>, QueueError>;
    /// Processes jobs of `queue` until `shutdown` fires, then waits up to
    /// [`WorkerOptions::shutdown_grace`] for running jobs and hands the rest
    /// back to the queue before returning.
    async fn work(
        &self,
        queue: &str,
        options: WorkerOptions,
        processor: Arc<dyn Processor>,
        shutdown: Shutdown,
    ) -> Result<(), QueueError>;
}
