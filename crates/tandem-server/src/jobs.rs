//! Background jobs: the roadmap's queues, their processors, and how HTTP
//! handlers enqueue jobs and look them up for their owners.
//!
//! Every job Tandem adds carries its owner as `data.userId` and a UUIDv7 id,
//! so one status endpoint can search every queue (BullMQ's own numeric ids
//! repeat across queues) and answer only the job's owner.

pub mod ai;
pub mod matching;

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use tandem_core::Shutdown;
use tandem_queue::{JobInfo, JobOptions, NewJob, Processor, QueueBackend, WorkerOptions};
use uuid::Uuid;

use crate::{ApiError, AppState};

/// AI work: `chat-completion`, `progress-analysis`, `engagement-prediction`.
pub const AI_TASKS: &str = "ai-tasks";
/// Partner matching.
pub const PARTNER_MATCHING: &str = "partner-matching";
/// Every queue Tandem runs, for status lookups, metrics and the admin page.
pub const QUEUES: [&str; 2] = [AI_TASKS, PARTNER_MATCHING];

/// Runs the workers of every queue until `shutdown`, with the roadmap's
/// concurrency (AI 5, matching 3). A worker that cannot start (Redis down)
/// is retried every few seconds.
pub async fn run_workers(app: AppState, shutdown: Shutdown) {
    let workers: [(&str, usize, Arc<dyn Processor>); 2] = [
        (
            AI_TASKS,
            5,
            Arc::new(ai::AiTasks::new(app.data.clone(), app.ai.clone())),
        ),
        (
            PARTNER_MATCHING,
            3,
            Arc::new(matching::Matching::new(
                app.data.clone(),
                app.live.hub.clone(),
            )),
        ),
    ];
    let runs = workers.into_iter().map(|(queue, concurrency, processor)| {
        let options = WorkerOptions {
            concurrency,
            stalled_interval: app.config.queue.stalled_interval,
            ..WorkerOptions::default()
        };
        run_worker(app.clone(), queue, options, processor, shutdown.clone())
    });
    futures_util::future::join_all(runs).await;
}

async fn run_worker(
    app: AppState,
    queue: &'static str,
    options: WorkerOptions,
    processor: Arc<dyn Processor>,
    shutdown: Shutdown,
) {
    loop {
        let work = app
            .queue
            .work(queue, options.clone(), processor.clone(), shutdown.clone());
        match work.await {
            Ok(()) => return,
            Err(error) => tracing::warn!(queue, %error, "queue worker stopped; restarting"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = shutdown.wait() => return,
        }
    }
}

/// Adds a job owned by `user_id` (stored as `data.userId`) and returns its id.
pub async fn enqueue(
    queue_backend: &dyn QueueBackend,
    queue: &str,
    name: &str,
    user_id: Uuid,
    mut data: serde_json::Map<String, Value>,
) -> Result<String, ApiError> {
    data.insert("userId".into(), Value::String(user_id.to_string()));
    let job = NewJob {
        options: JobOptions {
            id: Some(Uuid::now_v7().to_string()),
            ..JobOptions::default()
        },
        ..NewJob::new(name, Value::Object(data))
    };
    Ok(queue_backend.add(queue, job).await?)
}

/// The job `id` in whichever queue holds it, if `user_id` owns it. A job of
/// someone else is reported exactly like a missing one.
pub async fn owned_job(
    queue_backend: &dyn QueueBackend,
    user_id: Uuid,
    id: &str,
) -> Result<Option<(&'static str, JobInfo)>, ApiError> {
    let owner = user_id.to_string();
    for queue in QUEUES {
        if let Some(job) = queue_backend.job(queue, id).await? {
            let owned = job.data.get("userId").and_then(Value::as_str) == Some(owner.as_str());
            return Ok(owned.then_some((queue, job)));
        }
    }
    Ok(None)
}

/// The job's owner, as the processors read it.
pub fn owner(data: &Value) -> Result<Uuid, tandem_queue::JobError> {
    data.get("userId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| tandem_queue::JobError::fatal("job has no valid userId"))
}
