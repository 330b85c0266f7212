//! The embedded backend: jobs are rows in SQLite (or PostgreSQL), claimed
//! with a lease that the worker renews while it runs them.
//!
//! A worker holds one random lease token. Every `stalled_interval / 2` it
//! renews the leases of its active jobs, returns jobs whose lease ran out
//! (their worker died) to waiting, and trims finished jobs to the retention
//! limits. Jobs added in this process wake its workers at once; jobs added by
//! other processes are found by polling every `poll_interval`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use rand::RngCore;
use serde_json::Value;
use tandem_core::{Clock, Shutdown, SystemClock};
use tandem_db::{Database, JobLease, JobRecord, NewJobRecord};
use tokio::{sync::Notify, task::JoinSet};

use crate::{
    JobCounts, JobInfo, JobState, NewJob, Processor, QueueBackend, QueueError, Retention,
    WorkerOptions, backoff_delay,
    job::{Job, Outcome, ProgressSink, attempt},
};

/// Jobs in the database; see the module docs.
pub struct DatabaseQueue {
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl DatabaseQueue {
    /// A queue engine on `db` (which must be migrated), on the system clock.
    pub fn new(db: Arc<dyn Database>, retention: Retention) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
            retention,
            wakers: Mutex::default(),
        }
    }

    /// The same queue on `clock`: delays, backoff, leases and what counts
    /// as due follow it (tests move a manual one instead of waiting).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        wakers.entry(queue.to_owned()).or_default().clone()
    }
}

/// `clock`'s time in Unix milliseconds, as job rows store it.
fn now_ms(clock: &dyn Clock) -> i64 {
    clock.now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn info(record: JobRecord, now: i64) -> JobInfo {
    let state = match record.state.as_str() {
        "active" => JobState::Active,
        "completed" => JobState::Completed,
        "failed" => JobState::Failed,
        _ if record.run_at > now => JobState::Delayed,
        _ => JobState::Waiting,
    };
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    JobInfo {
        data: serde_json::from_str(&record.data).unwrap_or(Value::Null),
        progress: json(record.progress).unwrap_or(Value::from(0)),
        result: json(record.result),
        failed_reason: record.failed_reason,
        attempts_made: record.attempts_made.max(0) as u32,
        created_at: record.created_at.max(0) as u64,
        processed_on: record.processed_on.map(|t| t.max(0) as u64),
        finished_on: record.finished_on.map(|t| t.max(0) as u64),
        id: record.id,
        name: record.name,
        state,
    }
}

#[async_trait]
impl QueueBackend for DatabaseQueue {
    fn kind(&self) -> &'static str {
        "database"
    }

    async fn add(&self, queue: &str, job: NewJob) -> Result<String, QueueError> {
        let now = now_ms(&*self.clock);
        let id = job
            .options
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let record = NewJobRecord {
            queue: queue.to_owned(),
            id: id.clone(),
            name: job.name,
            data: serde_json::to_string(&job.data)?,
            priority: i32::try_from(job.options.priority).unwrap_or(i32::MAX),
            run_at: now + millis(job.options.delay),
            max_attempts: job.options.attempts.clamp(1, 1000) as i32,
            backoff_ms: millis(job.options.backoff),
            created_at: now,
        };
        if self.db.insert_job(&record).await? {
            self.waker(queue).notify_one();
        }
        Ok(id)
    }

    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let now = now_ms(&*self.clock);
        Ok(self.db.job(queue, id).await?.map(|r| info(r, now)))
    }

    async fn counts(&self, queue: &str) -> Result<JobCounts, QueueError> {
        let c = self.db.job_counts(queue, now_ms(&*self.clock)).await?;
        let n = |v: i64| v.max(0) as u64;
        Ok(JobCounts {
            waiting: n(c.waiting),
            active: n(c.active),
            delayed: n(c.delayed),
            completed: n(c.completed),
            failed: n(c.failed),
        })
    }

    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        let now = now_ms(&*self.clock);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let records = self.db.failed_jobs(queue, limit).await?;
        Ok(records.into_iter().map(|r| info(r, now)).collect())
    }

    async fn work(
        &self,
        queue: &str,
        options: WorkerOptions,
        processor: Arc<dyn Processor>,
        shutdown: Shutdown,
    ) -> Result<(), QueueError> {
        let mut token = [0u8; 16];
        rand::rng().fill_bytes(&mut token);
        let worker = Worker {
            db: self.db.clone(),
            clock: self.clock.clone(),
            queue: queue.to_owned(),
            token: token.iter().map(|b| format!("{b:02x}")).collect(),
            retention: self.retention,
            processor,
            lease: millis(options.stalled_interval).max(2),
            options,
        };
        worker.run(self.waker(queue), shutdown).await
    }
}

/// One worker's loop over one queue.
struct Worker {
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    queue: String,
    token: String,
    retention: Retention,
    processor: Arc<dyn Processor>,
    lease: i64,
    options: WorkerOptions,
}

/// How an attempt ended, to be written by the worker loop (completions in
/// batches: one statement for every job that finished meanwhile).
struct Finished {
    id: String,
    attempt: i32,
    attempts_made: u32,
    backoff: Duration,
    outcome: Outcome,
}

impl Worker {
    async fn run(self, waker: Arc<Notify>, shutdown: Shutdown) -> Result<(), QueueError> {
        let this = Arc::new(self);
        let concurrency = this.options.concurrency.max(1);
        // While the queue has a backlog, claim several jobs per statement.
        let claim_batch = (concurrency / 4).clamp(1, 32);
        let mut backlog = false;
        let mut running: JoinSet<Finished> = JoinSet::new();
        let mut upkeep = tokio::time::interval(Duration::from_millis(this.lease as u64 / 2));
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut finished_since_trim = 0usize;
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let free = concurrency - running.len();
            if free > 0 && (free >= claim_batch || !backlog) {
                let jobs = this.claim(free).await;
                backlog = jobs.len() == free;
                for job in jobs {
                    let worker = this.clone();
                    running.spawn(async move { worker.process(job).await });
                }
            }
            if finished_since_trim >= this.retention.completed.max(1) as usize {
                finished_since_trim = 0;
                this.trim().await;
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let mut finished: Vec<Finished> = this.outcome(done).into_iter().collect();
                    while let Some(done) = running.try_join_next() {
                        finished.extend(this.outcome(done));
                    }
                    finished_since_trim += finished.len();
                    this.record(finished).await;
                }
                _ = upkeep.tick() => this.upkeep().await,
                () = waker.notified(), if running.len() < concurrency => backlog = false,
                () = tokio::time::sleep(this.options.poll_interval), if running.len() < concurrency => backlog = false,
            }
        }
        this.hand_back(running).await
    }

    /// A task's result. Processor panics are caught inside the task, so a
    /// task dies only through a bug here; its job then stays leased to this
    /// worker and runs again once the worker stops (released) or dies (stalled).
    fn outcome(&self, done: Result<Finished, tokio::task::JoinError>) -> Option<Finished> {
        done.inspect_err(|error| {
            tracing::error!(queue = %self.queue, %error, "a job task died without an outcome");
        })
        .ok()
    }

    async fn claim(&self, free: usize) -> Vec<JobRecord> {
        let now = now_ms(&*self.clock);
        let limit = i64::try_from(free).unwrap_or(i64::MAX);
        match (self.db)
            .claim_jobs(&self.queue, &self.token, now, now + self.lease, limit)
            .await
        {
            Ok(jobs) => {
                for job in &jobs {
                    let waited = (now - job.run_at).max(0) as f64 / 1000.0;
                    metrics::histogram!("tandem_queue_pickup_seconds", "queue" => self.queue.clone())
                        .record(waited);
                }
                jobs
            }
            Err(error) => {
                tracing::warn!(queue = %self.queue, %error, "claiming jobs failed");
                Vec::new()
            }
        }
    }

    async fn process(self: Arc<Self>, record: JobRecord) -> Finished {
        let sink = Arc::new(LeaseProgress {
            db: self.db.clone(),
            queue: self.queue.clone(),
            id: record.id.clone(),
            token: self.token.clone(),
            attempt: record.attempts_started,
        });
        let data = serde_json::from_str(&record.data).unwrap_or(Value::Null);
        let attempts_made = record.attempts_made.max(0) as u32;
        let job = Job::new(record.id.clone(), record.name, data, attempts_made, sink);
        let max_attempts = record.max_attempts.max(1) as u32;
        let backoff = Duration::from_millis(record.backoff_ms.max(0) as u64);
        let outcome = attempt(&*self.processor, &job, &self.queue, max_attempts, backoff).await;
        Finished {
            id: record.id,
            attempt: record.attempts_started,
            attempts_made,
            backoff,
            outcome,
        }
    }

    /// Writes outcomes: all completions in one statement, failures one by one.
    /// A write that fails leaves the job active; its lease expires and it runs again.
    async fn record(&self, finished: Vec<Finished>) {
        let now = now_ms(&*self.clock);
        let mut completed = Vec::new();
        for f in finished {
            match f.outcome {
                Outcome::Completed(value) => completed.push((f.id, f.attempt, value.to_string())),
                Outcome::Failed { reason, retry } => {
                    let wait = backoff_delay(f.backoff, f.attempts_made + 1);
                    let retry_at = retry.then(|| now + millis(wait));
                    let lease = JobLease {
                        queue: &self.queue,
                        id: &f.id,
                        token: &self.token,
                        attempt: f.attempt,
                    };
                    let written = self.db.fail_job(lease, &reason, now, retry_at).await;
                    self.report_write(written.map(u64::from), 1);
                }
            }
        }
        if !completed.is_empty() {
            let written = (self.db)
                .complete_jobs(&self.queue, &self.token, &completed, now)
                .await;
            self.report_write(written, completed.len() as u64);
        }
    }

    fn report_write(&self, written: Result<u64, tandem_db::DbError>, expected: u64) {
        match written {
            Ok(n) if n == expected => {}
            Ok(n) => tracing::warn!(queue = %self.queue, lost = expected - n,
                "jobs finished after their lease was lost; their outcome was discarded"),
            Err(error) => tracing::warn!(queue = %self.queue, %error,
                "recording job outcomes failed; they run again when their lease expires"),
        }
    }

    /// Renews this worker's leases, recovers stalled jobs, applies retention.
    async fn upkeep(&self) {
        let now = now_ms(&*self.clock);
        if let Err(error) = (self.db)
            .extend_leases(&self.queue, &self.token, now + self.lease)
            .await
        {
            tracing::warn!(queue = %self.queue, %error, "renewing job leases failed");
        }
        let max_stalled = i32::try_from(self.options.max_stalled).unwrap_or(i32::MAX);
        match self.db.recover_stalled(&self.queue, now, max_stalled).await {
            Ok(sweep) if sweep.requeued + sweep.failed > 0 => {
                tracing::warn!(queue = %self.queue, requeued = sweep.requeued,
                    failed = sweep.failed, "recovered stalled jobs");
                metrics::counter!("tandem_queue_stalled_total", "queue" => self.queue.clone())
                    .increment(sweep.requeued + sweep.failed);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(queue = %self.queue, %error, "stalled-job sweep failed"),
        }
        self.trim().await;
    }

    async fn trim(&self) {
        for (state, keep) in [
            ("completed", self.retention.completed),
            ("failed", self.retention.failed),
        ] {
            if let Err(error) = self.db.trim_jobs(&self.queue, state, i64::from(keep)).await {
                tracing::warn!(queue = %self.queue, %error, "trimming finished jobs failed");
            }
        }
    }

    /// Lets running jobs finish within the grace period, then hands the rest back.
    async fn hand_back(&self, mut running: JoinSet<Finished>) -> Result<(), QueueError> {
        let mut finished = Vec::new();
        let drain = async {
            while let Some(done) = running.join_next().await {
                finished.extend(done);
            }
        };
        let _ = tokio::time::timeout(self.options.shutdown_grace, drain).await;
        running.abort_all();
        // Jobs that finished just before the abort still count.
        while let Some(done) = running.join_next().await {
            finished.extend(done);
        }
        self.record(finished).await;
        let returned = (self.db).release_jobs(&self.queue, &self.token).await?;
        if returned > 0 {
            tracing::info!(queue = %self.queue, returned, "handed unfinished jobs back to the queue");
        }
        self.trim().await;
        Ok(())
    }
}

/// Progress writes guarded by the attempt's lease.
struct LeaseProgress {
    db: Arc<dyn Database>,
    queue: String,
    id: String,
    token: String,
    attempt: i32,
}

#[async_trait]
impl ProgressSink for LeaseProgress {
    async fn update(&self, progress: &Value) -> Result<(), QueueError> {
        let lease = JobLease {
            queue: &self.queue,
            id: &self.id,
            token: &self.token,
            attempt: self.attempt,
        };
        self.db
            .set_job_progress(lease, &progress.to_string())
            .await?;
        Ok(())
    }
}
