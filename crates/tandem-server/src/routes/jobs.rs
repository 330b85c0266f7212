//! Job status for polling clients: `GET /api/jobs/{jobId}/status`.

use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

use tandem_queue::{JobState, QueueBackend};
use utoipa::ToSchema;

use crate::{
    ApiError,
    error::Problem,
    extract::{ApiPath, Authenticated},
    jobs,
};

/// Where a job is and how it ended.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Job id.
    pub job_id: String,
    /// Queue that holds it.
    pub queue: &'static str,
    /// `waiting`, `delayed`, `active`, `completed` or `failed`.
    #[schema(value_type = String)]
    pub state: JobState,
    /// Last reported progress (0–100, or an object).
    #[schema(value_type = serde_json::Value)]
    pub progress: Value,
    /// The job's result, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    /// Why it failed, once failed (or why the last attempt failed, while retrying).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job's state, progress and outcome. Only its owner may see it; other
/// users get 404, as if it did not exist.
#[utoipa::path(get, path = "/api/jobs/{job_id}/status", tag = "jobs",
    params(("job_id" = String, Path, description = "The id returned when the job was queued")),
    responses((status = 200, body = JobStatus), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn status(
    State(queue): State<Arc<dyn QueueBackend>>,
    auth: Authenticated,
    ApiPath(job_id): ApiPath<String>,
) -> Result<axum::Json<JobStatus>, ApiError> {
    let plausible = !job_id.is_empty()
        && job_id.len() <= 64
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !plausible {
        return Err(ApiError::NotFound("job"));
    }
    let (queue, job) = jobs::owned_job(queue.as_ref(), auth.user_id(), &job_id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let failed = job.state == JobState::Failed;
    Ok(axum::Json(JobStatus {
        job_id: job.id,
        queue,
        state: job.state,
        progress: job.progress,
        result: job.result,
        error: job
            .failed_reason
            .filter(|_| failed || job.attempts_made > 0),
    }))
}
