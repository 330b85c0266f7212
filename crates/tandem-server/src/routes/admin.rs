//! Operators' view of the job queues (sizes per state, recent failures) and
//! of the analytics archive runs.
//! Only for accounts an operator granted them (`tandem admin grant EMAIL`); everyone else gets
//! 404, as if the endpoint did not exist.

use axum::extract::State;
use serde::Serialize;
use tandem_queue::JobCounts;
use utoipa::ToSchema;

use std::sync::Arc;

use tandem_queue::QueueBackend;

use crate::{ApiError, Data, api::ArchiveRun, error::Problem, extract::Authenticated, jobs};

/// Archive runs shown.
const RECENT_RUNS: i64 = 20;
/// Failures shown per queue.
const RECENT_FAILURES: usize = 20;

/// All queues.
#[derive(Serialize, ToSchema)]
pub struct QueuesOverview {
    /// `database` or `redis`.
    backend: &'static str,
    /// One entry per queue.
    queues: Vec<QueueOverview>,
}

/// One queue.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueOverview {
    /// Queue name.
    name: &'static str,
    /// Jobs per state.
    #[schema(value_type = Object)]
    counts: JobCounts,
    /// The latest jobs that failed for good (no payloads: they are the users').
    recent_failures: Vec<Failure>,
}

/// A failed job, without its data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Job id.
    id: String,
    /// Job type.
    name: String,
    /// Why it failed.
    reason: Option<String>,
    /// Attempts made.
    attempts_made: u32,
    /// When it failed (ms since the epoch).
    finished_on: Option<u64>,
}

/// Queue sizes and recent failures, for operators.
#[utoipa::path(get, path = "/api/admin/queues", tag = "admin",
    responses((status = 200, body = QueuesOverview), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn queues(
    State(data): State<Data>,
    State(queue): State<Arc<dyn QueueBackend>>,
    auth: Authenticated,
) -> Result<axum::Json<QueuesOverview>, ApiError> {
    require_admin(&data, &auth).await?;
    let mut queues = Vec::new();
    for name in jobs::QUEUES {
        let failed = queue.failed(name, RECENT_FAILURES).await?;
        queues.push(QueueOverview {
            name,
            counts: queue.counts(name).await?,
            recent_failures: failed
                .into_iter()
                .map(|j| Failure {
                    id: j.id,
                    name: j.name,
                    reason: j.failed_reason,
                    attempts_made: j.attempts_made,
                    finished_on: j.finished_on,
                })
                .collect(),
        });
    }
    Ok(axum::Json(QueuesOverview {
        backend: queue.kind(),
        queues,
    }))
}

/// Lets only operators through; everyone else gets 404.
pub async fn require_admin(data: &Data, auth: &Authenticated) -> Result<(), ApiError> {
    let user = data.db.user_by_id(auth.user_id()).await?;
    if user.is_some_and(|u| u.admin) {
        Ok(())
    } else {
        Err(ApiError::NotFound("endpoint"))
    }
}

/// The latest archive runs, newest first.
#[utoipa::path(get, path = "/api/admin/archive-runs", tag = "admin",
    responses((status = 200, body = [ArchiveRun]), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn archive_runs(
    State(data): State<Data>,
    auth: Authenticated,
) -> Result<axum::Json<Vec<ArchiveRun>>, ApiError> {
    require_admin(&data, &auth).await?;
    let runs = data.db.archive_runs(RECENT_RUNS).await?;
    Ok(axum::Json(runs.into_iter().map(Into::into).collect()))
}
