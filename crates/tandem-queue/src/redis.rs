//! The distributed backend: BullMQ's data layout and Lua scripts on Redis,
//! through BullMQ's official Rust port (`bullmq-official`), so Node services
//! using BullMQ and Bull Board see the same queues.
//!
//! What this wrapper adds to the port (see the issue notes for the measured
//! defects of 1.4.4):
//! - stalled jobs run again within 1.5× the configured stalled interval S:
//!   the lock lasts S and the port's stalled check ticks every S/2 (with the
//!   port's defaults a killed worker's jobs came back after ~3×: its check
//!   skips every other tick, see `work`);
//! - the worker's event channel is unbounded, so a task always drains it
//!   (stalled jobs and worker errors become metrics and logs);
//! - shutdown stops fetching, lets running jobs finish within the grace
//!   period, then hands the rest back to the wait list (BullMQ's
//!   `moveJobFromActiveToWait`) instead of leaving them to the stalled check;
//! - the idle fetch blocks for at most one second, so closing is quick.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use bullmq::{
    self, JobOptions as BullJobOptions, QueueOptions, WorkerOptions as BullWorkerOptions,
    options::RedisConnectionOptions,
    types::BackoffStrategy,
    types::RemoveOnFinish,
    worker::{CancellationToken, WorkerEvent},
};
use serde_json::Value;
use tandem_core::Shutdown;
use tokio::sync::{Mutex, watch};

use crate::{
    JobCounts, JobInfo, JobState, NewJob, Processor, QueueBackend, QueueError, Retention,
    WorkerOptions,
    job::{Job, Outcome, ProgressSink, attempt},
};

/// BullMQ queues on one Redis server.
pub struct RedisQueue {
    connection: RedisConnectionOptions,
    prefix: String,
    retention: Retention,
    queues: Mutex<HashMap<String, Arc<bullmq::Queue>>>,
}

impl RedisQueue {
    /// Queues under `prefix` (BullMQ's default is `bull`) on the server at `url`.
    pub fn new(url: &str, prefix: &str, retention: Retention) -> Self {
        let connection = RedisConnectionOptions {
            url: url.to_owned(),
            ..RedisConnectionOptions::default()
        };
        Self {
            connection,
            prefix: prefix.to_owned(),
            retention,
            queues: Mutex::default(),
        }
    }

    async fn queue(&self, name: &str) -> Result<Arc<bullmq::Queue>, QueueError> {
        let mut queues = self.queues.lock().await;
        if let Some(queue) = queues.get(name) {
            return Ok(queue.clone());
        }
        let options = QueueOptions::new()
            .connection(self.connection.clone())
            .prefix(self.prefix.clone());
        let queue = Arc::new(bullmq::Queue::with_options(name, options).await?);
        queues.insert(name.to_owned(), queue.clone());
        Ok(queue)
    }
}

fn info(job: &bullmq::Job, state: bullmq::JobState) -> JobInfo {
    let state = match state {
        bullmq::JobState::Active => JobState::Active,
        bullmq::JobState::Delayed => JobState::Delayed,
        bullmq::JobState::Completed => JobState::Completed,
        bullmq::JobState::Failed => JobState::Failed,
        _ => JobState::Waiting,
    };
    let progress = match job.progress() {
        // BullMQ stores numbers as JSON numbers; keep whole ones whole.
        bullmq::JobProgress::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Value::from(*n as i64)
        }
        bullmq::JobProgress::Number(n) => Value::from(*n),
        bullmq::JobProgress::Object(v) => v.clone(),
    };
    let finished = matches!(state, JobState::Completed);
    JobInfo {
        id: job.id().to_owned(),
        name: job.name().to_owned(),
        data: job.data().clone(),
        state,
        progress,
        result: finished.then(|| serde_json::from_str(job.returnvalue()).unwrap_or(Value::Null)),
        failed_reason: Some(job.failed_reason().to_owned()).filter(|r| !r.is_empty()),
        attempts_made: job.attempts_made(),
        created_at: job.timestamp(),
        processed_on: job.processed_on(),
        finished_on: job.finished_on(),
    }
}

#[async_trait]
impl QueueBackend for RedisQueue {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn add(&self, queue: &str, job: NewJob) -> Result<String, QueueError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let o = &job.options;
        let options = BullJobOptions {
            job_id: o.id.clone(),
            attempts: Some(o.attempts.max(1)),
            backoff: Some(BackoffStrategy::Exponential(millis(o.backoff))),
            delay: (!o.delay.is_zero()).then(|| millis(o.delay)),
            priority: (o.priority > 0).then_some(o.priority),
            remove_on_complete: Some(RemoveOnFinish::Count(self.retention.completed as usize)),
            remove_on_fail: Some(RemoveOnFinish::Count(self.retention.failed as usize)),
            ..BullJobOptions::default()
        };
        let queue = self.queue(queue).await?;
        let added = queue.add(&job.name, job.data).options(options).await?;
        Ok(added.id().to_owned())
    }

    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let queue = self.queue(queue).await?;
        // State first: a job finishing between the two reads then shows as
        // still running (poll again), never as finished without its outcome.
        let state = queue.get_job_state(id).await?;
        let Some(job) = queue.get_job(id).await? else {
            return Ok(None);
        };
        Ok(Some(info(&job, state)))
    }

    async fn counts(&self, queue: &str) -> Result<JobCounts, QueueError> {
        let c = self.queue(queue).await?.get_job_counts().await?;
        Ok(JobCounts {
            waiting: c.waiting + c.prioritized + c.paused + c.waiting_children,
            active: c.active,
            delayed: c.delayed,
            completed: c.completed,
            failed: c.failed,
        })
    }

    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        let end = i64::try_from(limit).unwrap_or(i64::MAX) - 1;
        let jobs = self.queue(queue).await?.get_failed(0, end).await?;
        Ok(jobs
            .iter()
            .map(|j| info(j, bullmq::JobState::Failed))
            .collect())
    }

    async fn work(
        &self,
        queue: &str,
        options: WorkerOptions,
        processor: Arc<dyn Processor>,
        shutdown: Shutdown,
    ) -> Result<(), QueueError> {
        let interval = u64::try_from(options.stalled_interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(2);
        let bull_options = BullWorkerOptions {
            connection: self.connection.clone(),
            prefix: self.prefix.clone(),
            concurrency: options.concurrency.max(1),
            // The port's check sets a throttle key that lives exactly one
            // check interval, so the tick after a check finds it still there
            // and skips: with ticks every S/2 the check really runs every S.
            // A killed worker's lock (S) has expired by the second check after
            // the kill, so its jobs are back within 1.5 S (measured 1.51 S).
            lock_duration: interval,
            stalled_interval: interval / 2,
            max_stalled_count: options.max_stalled,
            drain_delay: 1,
            ..BullWorkerOptions::default()
        };
        let (hand_back, handing_back) = watch::channel(false);
        let process = processor_fn(queue, processor, handing_back);
        let worker = Arc::new(bullmq::Worker::with_options(queue, process, bull_options).await?);
        let events = tokio::spawn(drain_events(worker.clone(), queue.to_owned()));

        shutdown.wait().await;
        worker.pause();
        let deadline = tokio::time::Instant::now() + options.shutdown_grace;
        while worker.active_count().await > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hand_back.send_replace(true);
        let closed = worker.close(2_000).await;
        events.abort();
        Ok(closed?)
    }
}

/// Adapts a [`Processor`] to the port's processor closure.
fn processor_fn(
    queue: &str,
    processor: Arc<dyn Processor>,
    handing_back: watch::Receiver<bool>,
) -> impl Fn(
    bullmq::Job,
    CancellationToken,
) -> futures_util::future::BoxFuture<'static, Result<Value, bullmq::Error>>
+ Send
+ Sync
+ 'static {
    let queue = queue.to_owned();
    move |job: bullmq::Job, _cancel: CancellationToken| {
        let processor = processor.clone();
        let queue = queue.clone();
        let mut handing_back = handing_back.clone();
        Box::pin(async move {
            let max_attempts = job.opts().attempts.unwrap_or(1).max(1);
            let backoff = match job.opts().backoff {
                Some(BackoffStrategy::Exponential(ms) | BackoffStrategy::Fixed(ms)) => ms,
                _ => 0,
            };
            let ours = Job::new(
                job.id().to_owned(),
                job.name().to_owned(),
                job.data().clone(),
                job.attempts_made(),
                Arc::new(BullProgress(Mutex::new(job))),
            );
            tokio::select! {
                outcome = attempt(&*processor, &ours, &queue, max_attempts, Duration::from_millis(backoff)) => match outcome {
                    Outcome::Completed(value) => Ok(value),
                    Outcome::Failed { reason, retry: true } => Err(bullmq::Error::ProcessingError(reason)),
                    Outcome::Failed { reason, retry: false } => Err(bullmq::Error::Unrecoverable(reason)),
                },
                // BullMQ moves a job whose processor reports a rate limit back to waiting.
                _ = handing_back.wait_for(|h| *h) => Err(bullmq::Error::RateLimited { delay_ms: 0 }),
            }
        })
    }
}

/// Reads the worker's (unbounded) event channel so it never grows.
async fn drain_events(worker: Arc<bullmq::Worker>, queue: String) {
    while let Some(event) = worker.next_event().await {
        match event {
            WorkerEvent::Stalled { job_id } => {
                tracing::warn!(%queue, job = %job_id, "stalled job returned to the queue");
                metrics::counter!("tandem_queue_stalled_total", "queue" => queue.clone())
                    .increment(1);
            }
            WorkerEvent::Error(error) => tracing::warn!(%queue, %error, "queue worker error"),
            _ => {}
        }
    }
}

/// Progress through the port's `updateProgress` script.
struct BullProgress(Mutex<bullmq::Job>);

#[async_trait]
impl ProgressSink for BullProgress {
    async fn update(&self, progress: &Value) -> Result<(), QueueError> {
        let progress = bullmq::JobProgress::Object(progress.clone());
        self.0.lock().await.update_progress(progress).await?;
        Ok(())
    }
}
