//! Study partners: matching (queued, cached), partnering and blocking. The
//! rules live in the partners service ([`crate::partners`]).

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use tandem_matching::{MAX_LIMIT, Preferences};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    ApiError,
    error::Problem,
    extract::{ApiJson, ApiPath, Authenticated},
    jobs::matching::Suggestion,
    partners::{Partners, Relation, Search},
};

/// What to search for; everything is optional.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchingRequest {
    /// Accepted for compatibility with the roadmap's client; must be your own id.
    user_id: Option<Uuid>,
    /// Search options.
    #[serde(default)]
    preferences: PreferencesInput,
}

/// Search options.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreferencesInput {
    /// Search these subjects instead of your profile's (up to 20, 60 characters each).
    subjects: Option<Vec<String>>,
    /// Leave out students sharing fewer free hours a week (0–168).
    min_overlap_hours: Option<f32>,
    /// Number of suggestions, 1–50 (default 10).
    limit: Option<usize>,
}

/// Matches, or the job computing them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchingResponse {
    /// `completed` (matches included) or `processing` (poll the job or wait
    /// for `matching-complete` on realtime channel `user:{yourId}`).
    status: &'static str,
    /// Suggestions, best first, when completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<Vec<Suggestion>>,
    /// Job to poll at `/api/jobs/{jobId}/status`, when processing.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
}

fn preferences(input: PreferencesInput) -> Result<Preferences, ApiError> {
    if let Some(subjects) = &input.subjects
        && (subjects.len() > 20 || subjects.iter().any(|s| s.chars().count() > 60))
    {
        return Err(ApiError::invalid(
            "preferences.subjects",
            "Up to 20 subjects of up to 60 characters.",
        ));
    }
    let hours = input.min_overlap_hours.unwrap_or(0.0);
    if !(0.0..=168.0).contains(&hours) {
        return Err(ApiError::invalid(
            "preferences.minOverlapHours",
            "Between 0 and 168 hours.",
        ));
    }
    let limit = input.limit.unwrap_or(tandem_matching::DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "preferences.limit",
            format!("Between 1 and {MAX_LIMIT}."),
        ));
    }
    Ok(Preferences {
        subjects: input.subjects,
        min_overlap_hours: hours,
        limit,
    })
}

/// Finds study partners: cached matches at once (200), otherwise queues a
/// matching job (202) whose completion is announced on realtime.
#[utoipa::path(post, path = "/api/partners/matching", tag = "partners", request_body = MatchingRequest,
    responses((status = 200, body = MatchingResponse), (status = 202, body = MatchingResponse),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
              (status = 429, body = Problem)))]
pub async fn matching(
    State(partners): State<Partners>,
    auth: Authenticated,
    ApiJson(request): ApiJson<MatchingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let me = auth.user_id();
    if request.user_id.is_some_and(|id| id != me) {
        return Err(ApiError::Forbidden(
            "You can only search partners for yourself.",
        ));
    }
    let preferences = preferences(request.preferences)?;
    Ok(match partners.search(me, preferences).await? {
        Search::Found(matches) => {
            let body = MatchingResponse {
                status: "completed",
                matches: Some(matches),
                job_id: None,
            };
            (StatusCode::OK, axum::Json(body))
        }
        Search::Queued(job_id) => {
            let body = MatchingResponse {
                status: "processing",
                matches: None,
                job_id: Some(job_id),
            };
            (StatusCode::ACCEPTED, axum::Json(body))
        }
    })
}

/// Adds a study partner; they are no longer suggested to you (or you to them).
#[utoipa::path(post, path = "/api/partners/{id}", tag = "partners",
    params(("id" = Uuid, Path, description = "The other student")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add(
    State(partners): State<Partners>,
    auth: Authenticated,
    ApiPath(other): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let relation = Relation::Partner;
    partners.relate(auth.user_id(), other, relation).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Blocks a student: never suggested either way, and any partnership ends.
#[utoipa::path(post, path = "/api/partners/{id}/block", tag = "partners",
    params(("id" = Uuid, Path, description = "The student to block")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn block(
    State(partners): State<Partners>,
    auth: Authenticated,
    ApiPath(other): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let relation = Relation::Blocked;
    partners.relate(auth.user_id(), other, relation).await?;
    Ok(StatusCode::NO_CONTENT)
}
