//! Analytics ingestion (`POST /api/analytics/events`) and the archive's cron
//! trigger (`GET /api/cron/archive-analytics`).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tandem_archive::{ArchiveError, Quiet, Trigger};
use tandem_core::ExposeSecret;
use tandem_db::{Activity, AnalyticsRow, PageView};
use tandem_ratelimit::{Decision, Limit};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    Accounts, Analytics, ApiError, Config, Data, Limits,
    error::Problem,
    extract::{ApiJson, MaybeToken},
};

/// Events per request at most.
const MAX_EVENTS: usize = 50;
/// Longest path or referrer kept.
const MAX_URL: usize = 512;
/// Largest `detail` object, serialized.
const MAX_DETAIL: usize = 2048;
/// Requests per visitor per minute (per instance).
const PER_VISITOR_PER_MINUTE: u32 = 60;

/// A batch of events from one browser.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventBatch {
    /// The browser's anonymous id (a UUID it keeps in local storage).
    visitor_id: Uuid,
    /// 1 to 50 events.
    events: Vec<Event>,
}

/// One event.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Event {
    /// A page was shown.
    PageView {
        /// Its path (`/rooms/…`); the query string and fragment are dropped.
        path: String,
        /// `document.referrer`, if any.
        #[serde(default)]
        referrer: Option<String>,
    },
    /// Something else the visitor did.
    Activity {
        /// What (`search`, `profile.view`): 1–64 of `a-z 0-9 . _ : -`.
        kind: String,
        /// A small JSON object (2 KiB at most).
        #[serde(default)]
        #[schema(value_type = Object)]
        detail: Option<serde_json::Value>,
    },
}

/// How many events were accepted.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Events queued for the database.
    accepted: usize,
}

/// Records page views and activity, signed in or not. Events are stamped
/// with the server's clock and written in batches shortly after.
#[utoipa::path(post, path = "/api/analytics/events", tag = "analytics",
    request_body = EventBatch,
    responses((status = 202, body = Accepted), (status = 400, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn ingest(
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(accounts): State<Accounts>,
    State(analytics): State<Analytics>,
    MaybeToken(token): MaybeToken,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    if batch.events.is_empty() || batch.events.len() > MAX_EVENTS {
        return Err(ApiError::invalid("events", "Send 1 to 50 events."));
    }
    // Per visitor here; per client IP, the API-wide budget applies.
    let limit = Limit {
        max: PER_VISITOR_PER_MINUTE,
        window: Duration::from_secs(60),
    };
    let key = format!("analytics:{}", batch.visitor_id);
    if let Decision::Limited { retry_after } = limits.local.hit_now(&key, limit) {
        return Err(ApiError::RateLimited(retry_after));
    }
    let user_id = match token {
        Some(token) => accounts.sessions.resolve(&token).await?.map(|s| s.user_id),
        None => None,
    };
    let now = data.clock.now();
    let mut rows = Vec::with_capacity(batch.events.len());
    for (i, event) in batch.events.into_iter().enumerate() {
        rows.push(match event {
            Event::PageView { path, referrer } => AnalyticsRow::PageView(PageView {
                id: 0,
                occurred_at: now,
                visitor_id: batch.visitor_id,
                user_id,
                path: page_path(&path).ok_or_else(|| {
                    ApiError::invalid(
                        &format!("events[{i}].path"),
                        "Expected a path like /rooms (512 characters at most).",
                    )
                })?,
                referrer: match referrer.filter(|r| !r.is_empty()) {
                    Some(r) if r.chars().any(char::is_control) => {
                        return Err(ApiError::invalid(
                            &format!("events[{i}].referrer"),
                            "Expected a URL without control characters.",
                        ));
                    }
                    r => r.map(|r| r.chars().take(MAX_URL).collect()),
                },
            }),
            Event::Activity { kind, detail } => {
                let kind_ok = (1..=64).contains(&kind.len())
                    && kind.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b".:_-".contains(&b)
                    });
                if !kind_ok {
                    return Err(ApiError::invalid(
                        &format!("events[{i}].kind"),
                        "Expected 1-64 of a-z 0-9 . _ : -",
                    ));
                }
                let detail = detail.unwrap_or_else(|| serde_json::json!({}));
                if !detail.is_object() || detail.to_string().len() > MAX_DETAIL || has_nul(&detail)
                {
                    return Err(ApiError::invalid(
                        &format!("events[{i}].detail"),
                        "Expected a JSON object of 2 KiB at most, without NUL characters.",
                    ));
                }
                AnalyticsRow::Activity(Activity {
                    id: 0,
                    occurred_at: now,
                    visitor_id: batch.visitor_id,
                    user_id,
                    kind,
                    detail: tandem_db::Json(detail),
                })
            }
        });
    }
    let accepted = rows.len();
    analytics.sink.offer(rows).map_err(|_| {
        metrics::counter!("tandem_analytics_rejected_total").increment(accepted as u64);
        ApiError::Unavailable("the analytics buffer is full".into())
    })?;
    metrics::counter!("tandem_analytics_events_total").increment(accepted as u64);
    Ok((StatusCode::ACCEPTED, axum::Json(Accepted { accepted })))
}

/// Whether any key or string in `value` holds a NUL, which PostgreSQL's
/// `jsonb` refuses (and would fail the whole insert).
fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The path part of `raw`, if it is a plausible page path.
fn page_path(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let plain =
        path.starts_with('/') && path.len() <= MAX_URL && !path.chars().any(char::is_control);
    plain.then(|| path.to_owned())
}

/// A started archive run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// The run's id (see `/api/admin/archive-runs`).
    run_id: Uuid,
}

/// Starts an archive run, for an outside scheduler (Vercel-style cron).
/// Needs `Authorization: Bearer <CRON_SECRET>`; without a configured secret
/// the endpoint does not exist. Answers at once; the run goes on in the
/// background. 409 while another run (anywhere) is in progress.
#[utoipa::path(get, path = "/api/cron/archive-analytics", tag = "analytics",
    responses((status = 202, body = RunStarted), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cron_archive(
    State(config): State<Arc<Config>>,
    State(analytics): State<Analytics>,
    headers: HeaderMap,
) -> Result<(StatusCode, axum::Json<RunStarted>), ApiError> {
    let Some(secret) = &config.archive.cron_secret else {
        return Err(ApiError::NotFound("endpoint"));
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests compared in constant time: neither how much of a guess was
    // right nor the secret's length shows in the timing.
    let offered = Sha256::digest(offered.as_bytes());
    let expected = Sha256::digest(secret.expose_secret().as_bytes());
    if !bool::from(offered.as_slice().ct_eq(expected.as_slice())) {
        return Err(ApiError::Unauthenticated);
    }
    let run = match analytics.archiver.begin(Trigger::Cron, false).await {
        Ok(run) => run,
        Err(ArchiveError::Busy | ArchiveError::SlotTaken) => {
            return Err(ApiError::Conflict(
                "An archive run is already in progress.".into(),
            ));
        }
        Err(e) => return Err(ApiError::Internal(e.into())),
    };
    let run_id = run.id();
    tokio::spawn(async move {
        run.execute(&Quiet).await;
    });
    Ok((StatusCode::ACCEPTED, axum::Json(RunStarted { run_id })))
}
