//! Study rooms (`/api/study-sessions`): schedule, browse, join, leave, cancel.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tandem_db::{JoinOutcome, NewRoom};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    Analytics, ApiError, Data, Live,
    api::{self, Member, Room},
    error::Problem,
    extract::{ApiJson, ApiPath, Authenticated},
    reads,
    validate::{self, Errors},
};

/// Most upcoming sessions one student may run at once.
const MAX_UPCOMING_OWNED: i64 = 20;

/// A session to schedule.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateStudySession)]
#[serde(deny_unknown_fields)]
pub struct NewRoomRequest {
    /// 1–100 characters.
    title: String,
    /// 1–60 characters.
    subject: String,
    /// Up to 2000 characters.
    #[serde(default)]
    description: String,
    /// Start (RFC 3339), not in the past, within a year.
    starts_at: DateTime<Utc>,
    /// End (RFC 3339), after the start, at most 12 hours later.
    ends_at: DateTime<Utc>,
    /// 2–50 seats, the owner's included.
    capacity: i32,
}

/// A session with its members.
#[derive(Serialize, ToSchema)]
#[schema(as = StudySessionDetail)]
pub struct RoomDetail {
    /// The session.
    #[serde(flatten)]
    pub session: Room,
    /// Who is in it.
    pub members: Vec<Member>,
}

impl RoomDetail {
    fn new(session: tandem_db::Room, members: Vec<tandem_db::Member>) -> Self {
        Self {
            session: session.into(),
            members: members.into_iter().map(Into::into).collect(),
        }
    }
}

/// Schedules a session; its owner is its first member.
#[utoipa::path(post, path = "/api/study-sessions", tag = "study-sessions", request_body = NewRoomRequest,
    responses((status = 201, body = Room), (status = 401, body = Problem),
        (status = 409, description = "Too many upcoming sessions", body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(data): State<Data>,
    auth: Authenticated,
    ApiJson(req): ApiJson<NewRoomRequest>,
) -> Result<(StatusCode, axum::Json<Room>), ApiError> {
    let now = data.clock.now();
    let mut errors = Errors::default();
    let title = errors.check("title", validate::line(&req.title, 1, 100));
    let subject = errors.check("subject", validate::line(&req.subject, 1, 60));
    let description = errors.check("description", validate::text(&req.description, 2000));
    errors.check("starts_at", schedule_start(req.starts_at, now));
    errors.check("ends_at", schedule_end(req.starts_at, req.ends_at));
    if !(2..=MAX_SEATS).contains(&req.capacity) {
        errors.check::<()>("capacity", Err(format!("Use 2 to {MAX_SEATS} seats.")));
    }
    errors.finish()?;
    let (Some(title), Some(subject), Some(description)) = (title, subject, description) else {
        return Err(ApiError::invalid("title", "missing"));
    };
    let owner = auth.user_id();
    let session = data
        .db
        .create_room(
            &NewRoom {
                id: Uuid::now_v7(),
                owner_id: owner,
                title,
                subject,
                description,
                starts_at: req.starts_at,
                ends_at: req.ends_at,
                capacity: req.capacity,
                created_at: now,
            },
            MAX_UPCOMING_OWNED,
        )
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "You already run {MAX_UPCOMING_OWNED} upcoming sessions; cancel one first."
            ))
        })?;
    reads::room_changed(&data, &[owner]).await;
    Ok((StatusCode::CREATED, axum::Json(session.into())))
}

/// Most seats a session (and so its video call) may have; the TURN
/// server's default per-user quota is sized from it.
pub const MAX_SEATS: i32 = 50;

fn schedule_start(start: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if start < now - Duration::minutes(5) {
        return Err("Choose a start time in the future.".into());
    }
    if start > now + Duration::days(365) {
        return Err("Schedule at most a year ahead.".into());
    }
    Ok(())
}

fn schedule_end(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), String> {
    if end <= start {
        return Err("End after the start.".into());
    }
    if end - start > Duration::hours(12) {
        return Err("Sessions last at most 12 hours.".into());
    }
    Ok(())
}

/// Upcoming sessions anyone can join, soonest first.
#[utoipa::path(get, path = "/api/study-sessions", tag = "study-sessions",
    responses((status = 200, body = Vec<Room>), (status = 401, body = Problem)))]
pub async fn upcoming(
    State(data): State<Data>,
    _auth: Authenticated,
) -> Result<axum::Json<Vec<Room>>, ApiError> {
    Ok(axum::Json(api::rooms(reads::upcoming_rooms(&data).await?)))
}

/// Sessions I run or joined, latest first.
#[utoipa::path(get, path = "/api/study-sessions/mine", tag = "study-sessions",
    responses((status = 200, body = Vec<Room>), (status = 401, body = Problem)))]
pub async fn mine(
    State(data): State<Data>,
    auth: Authenticated,
) -> Result<axum::Json<Vec<Room>>, ApiError> {
    let rooms = reads::my_rooms(&data, auth.user_id()).await?;
    Ok(axum::Json(api::rooms(rooms)))
}

/// One session with its members.
#[utoipa::path(get, path = "/api/study-sessions/{id}", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = RoomDetail), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn detail(
    State(data): State<Data>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    let (session, members) = data
        .read(auth.user_id(), |db| async move {
            Ok((db.room(id).await?, db.members(id).await?))
        })
        .await?;
    let session = session.ok_or(ApiError::NotFound("study session"))?;
    Ok(axum::Json(RoomDetail::new(session, members)))
}

/// Joins a session (idempotent).
#[utoipa::path(post, path = "/api/study-sessions/{id}/join", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 404, body = Problem),
        (status = 409, description = "Full, cancelled or over", body = Problem)))]
pub async fn join(
    State(data): State<Data>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    match data
        .db
        .join_room(id, auth.user_id(), data.clock.now())
        .await?
    {
        JoinOutcome::Joined | JoinOutcome::AlreadyMember => {}
        JoinOutcome::Full => return Err(ApiError::Conflict("This session is full.".into())),
        JoinOutcome::Closed => {
            return Err(ApiError::Conflict(
                "This session was cancelled or is over.".into(),
            ));
        }
        JoinOutcome::NotFound => return Err(ApiError::NotFound("study session")),
    }
    changed(&data, id, &[]).await
}

/// Leaves a session. Owners cancel instead.
#[utoipa::path(post, path = "/api/study-sessions/{id}/leave", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 404, body = Problem),
        (status = 409, description = "Owners cannot leave", body = Problem)))]
pub async fn leave(
    State(data): State<Data>,
    State(live): State<Live>,
    State(analytics): State<Analytics>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    let session = find(&data, id).await?;
    if session.owner_id == auth.user_id() {
        return Err(ApiError::Conflict(
            "Owners cancel a session instead of leaving it.".into(),
        ));
    }
    if session.ends_at <= data.clock.now() {
        return Err(ApiError::Conflict(
            "This session is over; it stays in your history.".into(),
        ));
    }
    let joined_at = data
        .db
        .members(id)
        .await?
        .into_iter()
        .find(|m| m.user_id == auth.user_id())
        .map(|m| m.joined_at);
    if !data.db.leave_room(id, auth.user_id()).await? {
        return Err(ApiError::NotFound("membership"));
    }
    super::realtime::guard::left_room(&live.hub, auth.user_id(), id);
    if let Some(started_at) = joined_at {
        // Time spent in the room, for analytics; a full buffer only loses this row.
        let visit = tandem_db::AnalyticsRow::StudyVisit(tandem_db::StudyVisit {
            id: 0,
            occurred_at: data.clock.now(),
            user_id: auth.user_id(),
            study_session_id: Some(id),
            started_at,
        });
        if analytics.sink.offer(vec![visit]).is_err() {
            tracing::warn!("analytics buffer full; a study visit was not recorded");
        }
    }
    changed(&data, id, &[auth.user_id()]).await
}

/// Cancels a session (owner only).
#[utoipa::path(post, path = "/api/study-sessions/{id}/cancel", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(data): State<Data>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    let session = find(&data, id).await?;
    if session.owner_id != auth.user_id() {
        return Err(ApiError::Forbidden("Only the owner can cancel a session."));
    }
    if session.ends_at <= data.clock.now() {
        return Err(ApiError::Conflict(
            "This session is over and cannot be cancelled.".into(),
        ));
    }
    if !data
        .db
        .cancel_room(id, auth.user_id(), data.clock.now())
        .await?
    {
        return Err(ApiError::Conflict(
            "This session is already cancelled.".into(),
        ));
    }
    changed(&data, id, &[]).await
}

/// Invalidates what the change touched and returns the session's new state.
async fn changed(
    data: &Data,
    id: Uuid,
    former_members: &[Uuid],
) -> Result<axum::Json<RoomDetail>, ApiError> {
    let session = find(data, id).await?;
    let members = data.db.members(id).await?;
    let affected: Vec<Uuid> = members
        .iter()
        .map(|m| m.user_id)
        .chain(former_members.iter().copied())
        .collect();
    reads::room_changed(data, &affected).await;
    Ok(axum::Json(RoomDetail::new(session, members)))
}

async fn find(data: &Data, id: Uuid) -> Result<tandem_db::Room, ApiError> {
    data.db
        .room(id)
        .await?
        .ok_or(ApiError::NotFound("study session"))
}
