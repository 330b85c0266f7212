//! Storage of the embedded job queue (`tandem-queue`'s database backend).
//!
//! The queue's semantics (backoff, retention policy, leases) live in
//! `tandem-queue`; this module only holds the rows and the SQL, once for both
//! engines. Times are milliseconds since the Unix epoch; every write that
//! finishes a job checks the lease token and the attempt it was claimed for,
//! so a worker whose lease expired cannot overwrite the next worker's result.

use async_trait::async_trait;

use crate::DbError;

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJobRecord {
    /// Queue name.
    pub queue: String,
    /// Job id, unique within the queue (a caller-chosen id deduplicates).
    pub id: String,
    /// Job name (the job type).
    pub name: String,
    /// JSON payload.
    pub data: String,
    /// 0 = none (served first); otherwise 1 is the highest priority.
    pub priority: i32,
    /// Not runnable before this time.
    pub run_at: i64,
    /// Attempts before the job fails for good.
    pub max_attempts: i32,
    /// Base of the exponential backoff between attempts.
    pub backoff_ms: i64,
    /// Creation time.
    pub created_at: i64,
}

/// A stored job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// JSON payload.
    pub data: String,
    /// `waiting`, `active`, `completed` or `failed`.
    pub state: String,
    /// Priority (0 = none).
    pub priority: i32,
    /// Earliest time it may run.
    pub run_at: i64,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Backoff base.
    pub backoff_ms: i64,
    /// Attempts that ended in failure.
    pub attempts_made: i32,
    /// Times a worker claimed it (the claim's number is part of its lease).
    pub attempts_started: i32,
    /// Times its worker died while it was active.
    pub stalled_count: i32,
    /// Last reported progress (JSON).
    pub progress: Option<String>,
    /// Return value (JSON) once completed.
    pub result: Option<String>,
    /// Why the last attempt failed.
    pub failed_reason: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// When the last attempt started.
    pub processed_on: Option<i64>,
    /// When it completed or failed for good.
    pub finished_on: Option<i64>,
}

/// Number of jobs per state in one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCountsRecord {
    /// Runnable now.
    pub waiting: i64,
    /// Waiting for their run time (delay or retry backoff).
    pub delayed: i64,
    /// Being processed.
    pub active: i64,
    /// Completed (within retention).
    pub completed: i64,
    /// Failed for good (within retention).
    pub failed: i64,
}

/// Identifies one claimed attempt of a job: the worker's lease token and the
/// claim number. Writes with a stale lease change nothing.
#[derive(Debug, Clone, Copy)]
pub struct JobLease<'a> {
    /// Queue name.
    pub queue: &'a str,
    /// Job id.
    pub id: &'a str,
    /// The claiming worker's token.
    pub token: &'a str,
    /// `attempts_started` as returned by the claim.
    pub attempt: i32,
}

/// What the stalled-job sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StalledSweep {
    /// Jobs returned to waiting.
    pub requeued: u64,
    /// Jobs failed because they stalled too often.
    pub failed: u64,
}

/// Durable queue storage.
#[async_trait]
pub trait JobRepo: Send + Sync {
    /// Inserts a job; false (and nothing changes) if the id is already in the queue.
    async fn insert_job(&self, job: &NewJobRecord) -> Result<bool, DbError>;
    /// Leases up to `limit` runnable jobs to `token` until `lease_until`,
    /// highest priority first, then oldest run time.
    async fn claim_jobs(
        &self,
        queue: &str,
        token: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<JobRecord>, DbError>;
    /// Extends the leases of every active job held by `token`.
    async fn extend_leases(
        &self,
        queue: &str,
        token: &str,
        lease_until: i64,
    ) -> Result<u64, DbError>;
    /// Marks attempts held by `token` completed, each `(id, attempt, JSON
    /// result)`, in one statement. Returns how many still held their lease.
    async fn complete_jobs(
        &self,
        queue: &str,
        token: &str,
        done: &[(String, i32, String)],
        now: i64,
    ) -> Result<u64, DbError>;
    /// Records a failed attempt: back to waiting until `retry_at`, or failed
    /// for good when `retry_at` is `None`. False if the lease was lost.
    async fn fail_job(
        &self,
        lease: JobLease<'_>,
        reason: &str,
        now: i64,
        retry_at: Option<i64>,
    ) -> Result<bool, DbError>;
    /// Hands every active job of `token` back to waiting without using up an attempt.
    /// They keep their place: their original run time puts them first.
    async fn release_jobs(&self, queue: &str, token: &str) -> Result<u64, DbError>;
    /// Stores progress (JSON) for an attempt. False if the lease was lost.
    async fn set_job_progress(&self, lease: JobLease<'_>, progress: &str) -> Result<bool, DbError>;
    /// Returns active jobs whose lease ran out to waiting (at the front, as
    /// BullMQ does), or fails those that stalled more than `max_stalled` times.
    async fn recover_stalled(
        &self,
        queue: &str,
        now: i64,
        max_stalled: i32,
    ) -> Result<StalledSweep, DbError>;
    /// Deletes the oldest jobs in `state` (`completed`/`failed`) beyond the newest `keep`.
    async fn trim_jobs(&self, queue: &str, state: &str, keep: i64) -> Result<u64, DbError>;
    /// One job.
    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobRecord>, DbError>;
    /// Jobs per state.
    async fn job_counts(&self, queue: &str, now: i64) -> Result<JobCountsRecord, DbError>;
    /// The most recently failed jobs, newest first.
    async fn failed_jobs(&self, queue: &str, limit: i64) -> Result<Vec<JobRecord>, DbError>;
    /// The earliest run time of a waiting job, to sleep until delayed jobs are due.
    async fn next_run_at(&self, queue: &str) -> Result<Option<i64>, DbError>;
}

/// Implements [`JobRepo`] for a struct with a `pool` field; `$lock` is the
/// row-locking clause of the claim's subquery (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL, so concurrent workers never wait on each other's rows; empty
/// on SQLite, whose single writer serializes claims anyway).
macro_rules! impl_job_repo {
    ($db:ty, $lock:literal) => {
        const JOB_COLUMNS: &str = "id, name, data, state, priority, run_at, max_attempts, \
             backoff_ms, attempts_made, attempts_started, stalled_count, progress, result, \
             failed_reason, created_at, processed_on, finished_on";
        const LEASED: &str =
            "queue = $1 AND id = $2 AND lease_token = $3 AND attempts_started = $4 AND state = 'active'";

        #[async_trait::async_trait]
        impl $crate::jobs::JobRepo for $db {
            async fn insert_job(
                &self,
                job: &$crate::jobs::NewJobRecord,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query(
                    "INSERT INTO jobs (queue, id, name, data, state, priority, run_at, \
                     max_attempts, backoff_ms, created_at) \
                     VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $7, $8, $9) \
                     ON CONFLICT (queue, id) DO NOTHING",
                )
                .bind(&job.queue)
                .bind(&job.id)
                .bind(&job.name)
                .bind(&job.data)
                .bind(job.priority)
                .bind(job.run_at)
                .bind(job.max_attempts)
                .bind(job.backoff_ms)
                .bind(job.created_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_jobs(
                &self,
                queue: &str,
                token: &str,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> Result<Vec<$crate::jobs::JobRecord>, $crate::DbError> {
                let sql = format!(
                    "UPDATE jobs SET state = 'active', lease_token = $2, lease_until = $4, \
                     processed_on = $3, attempts_started = attempts_started + 1 \
                     WHERE seq IN (SELECT seq FROM jobs WHERE queue = $1 AND state = 'waiting' \
                     AND run_at <= $3 ORDER BY priority, run_at, seq LIMIT $5 {}) \
                     RETURNING {JOB_COLUMNS}",
                    $lock
                );
                let mut jobs: Vec<$crate::jobs::JobRecord> = sqlx::query_as(&sql)
                    .bind(queue)
                    .bind(token)
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                // RETURNING has no defined order; hand jobs out in queue order.
                jobs.sort_by_key(|j| (j.priority, j.run_at));
                Ok(jobs)
            }

            async fn extend_leases(
                &self,
                queue: &str,
                token: &str,
                lease_until: i64,
            ) -> Result<u64, $crate::DbError> {
                let done = sqlx::query(
                    "UPDATE jobs SET lease_until = $3 \
                     WHERE queue = $1 AND state = 'active' AND lease_token = $2",
                )
                .bind(queue)
                .bind(token)
                .bind(lease_until)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn complete_jobs(
                &self,
                queue: &str,
                token: &str,
                done: &[(String, i32, String)],
                now: i64,
            ) -> Result<u64, $crate::DbError> {
                if done.is_empty() {
                    return Ok(0);
                }
                // VALUES columns are named column1.. on both engines.
                let rows: Vec<String> = (0..done.len())
                    .map(|i| format!("(${}, ${}, ${})", 4 + 3 * i, 5 + 3 * i, 6 + 3 * i))
                    .collect();
                let sql = format!(
                    "UPDATE jobs SET state = 'completed', result = v.column3, finished_on = $3, \
                     lease_token = NULL, lease_until = NULL FROM (VALUES {}) AS v \
                     WHERE jobs.queue = $1 AND jobs.lease_token = $2 AND jobs.state = 'active' \
                     AND jobs.id = v.column1 AND jobs.attempts_started = v.column2",
                    rows.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(queue).bind(token).bind(now);
                for (id, attempt, result) in done {
                    query = query.bind(id).bind(*attempt).bind(result);
                }
                Ok(query.execute(&self.pool).await?.rows_affected())
            }

            async fn fail_job(
                &self,
                lease: $crate::jobs::JobLease<'_>,
                reason: &str,
                now: i64,
                retry_at: Option<i64>,
            ) -> Result<bool, $crate::DbError> {
                let sql = format!(
                    "UPDATE jobs SET attempts_made = attempts_made + 1, failed_reason = $5, \
                     lease_token = NULL, lease_until = NULL, \
                     state = CASE WHEN $7 IS NULL THEN 'failed' ELSE 'waiting' END, \
                     run_at = COALESCE($7, run_at), \
                     finished_on = CASE WHEN $7 IS NULL THEN $6 ELSE NULL END \
                     WHERE {LEASED}"
                );
                let done = sqlx::query(&sql)
                    .bind(lease.queue)
                    .bind(lease.id)
                    .bind(lease.token)
                    .bind(lease.attempt)
                    .bind(reason)
                    .bind(now)
                    .bind(retry_at)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_jobs(
                &self,
                queue: &str,
                token: &str,
            ) -> Result<u64, $crate::DbError> {
                let done = sqlx::query(
                    "UPDATE jobs SET state = 'waiting', lease_token = NULL, lease_until = NULL \
                     WHERE queue = $1 AND state = 'active' AND lease_token = $2",
                )
                .bind(queue)
                .bind(token)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn set_job_progress(
                &self,
                lease: $crate::jobs::JobLease<'_>,
                progress: &str,
            ) -> Result<bool, $crate::DbError> {
                let sql = format!("UPDATE jobs SET progress = $5 WHERE {LEASED}");
                let done = sqlx::query(&sql)
                    .bind(lease.queue)
                    .bind(lease.id)
                    .bind(lease.token)
                    .bind(lease.attempt)
                    .bind(progress)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recover_stalled(
                &self,
                queue: &str,
                now: i64,
                max_stalled: i32,
            ) -> Result<$crate::jobs::StalledSweep, $crate::DbError> {
                let states: Vec<(String,)> = sqlx::query_as(
                    "UPDATE jobs SET stalled_count = stalled_count + 1, \
                     lease_token = NULL, lease_until = NULL, \
                     state = CASE WHEN stalled_count >= $3 THEN 'failed' ELSE 'waiting' END, \
                     finished_on = CASE WHEN stalled_count >= $3 THEN $2 ELSE NULL END, \
                     failed_reason = CASE WHEN stalled_count >= $3 \
                         THEN 'job stalled more than allowable limit' ELSE failed_reason END \
                     WHERE queue = $1 AND state = 'active' AND lease_until < $2 \
                     RETURNING state",
                )
                .bind(queue)
                .bind(now)
                .bind(max_stalled)
                .fetch_all(&self.pool)
                .await?;
                let failed = states.iter().filter(|(s,)| s == "failed").count() as u64;
                Ok($crate::jobs::StalledSweep {
                    requeued: states.len() as u64 - failed,
                    failed,
                })
            }

            async fn trim_jobs(
                &self,
                queue: &str,
                state: &str,
                keep: i64,
            ) -> Result<u64, $crate::DbError> {
                let done = sqlx::query(
                    "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs \
                     WHERE queue = $1 AND state = $2 \
                     ORDER BY finished_on DESC, seq DESC LIMIT 10000 OFFSET $3)",
                )
                .bind(queue)
                .bind(state)
                .bind(keep)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn job(
                &self,
                queue: &str,
                id: &str,
            ) -> Result<Option<$crate::jobs::JobRecord>, $crate::DbError> {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE queue = $1 AND id = $2");
                Ok(sqlx::query_as(&sql)
                    .bind(queue)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn job_counts(
                &self,
                queue: &str,
                now: i64,
            ) -> Result<$crate::jobs::JobCountsRecord, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT \
                     COALESCE(SUM(CASE WHEN state = 'waiting' AND run_at <= $2 THEN 1 ELSE 0 END), 0) AS waiting, \
                     COALESCE(SUM(CASE WHEN state = 'waiting' AND run_at > $2 THEN 1 ELSE 0 END), 0) AS delayed, \
                     COALESCE(SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END), 0) AS active, \
                     COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0) AS completed, \
                     COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed \
                     FROM jobs WHERE queue = $1",
                )
                .bind(queue)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn failed_jobs(
                &self,
                queue: &str,
                limit: i64,
            ) -> Result<Vec<$crate::jobs::JobRecord>, $crate::DbError> {
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE queue = $1 AND state = 'failed' \
                     ORDER BY finished_on DESC, seq DESC LIMIT $2"
                );
                Ok(sqlx::query_as(&sql)
                    .bind(queue)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn next_run_at(&self, queue: &str) -> Result<Option<i64>, $crate::DbError> {
                let row: (Option<i64>,) = sqlx::query_as(
                    "SELECT MIN(run_at) FROM jobs WHERE queue = $1 AND state = 'waiting'",
                )
                .bind(queue)
                .fetch_one(&self.pool)
                .await?;
                Ok(row.0)
            }
        }
    };
}

pub(crate) use impl_job_repo;
