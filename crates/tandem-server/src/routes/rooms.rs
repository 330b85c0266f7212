//! Study rooms (`/api/study-sessions`): schedule, browse, join, leave, cancel.

//! The rules live in the rooms service ([`crate::rooms`]); these handlers
//! translate HTTP to its calls and rows to the API's types.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    ApiError,
    api::{self, Member, Room},
    error::Problem,
    extract::{ApiJson, ApiPath, Authenticated},
    rooms::{Rooms, Schedule, WithMembers},
};

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

impl From<WithMembers> for RoomDetail {
    fn from((room, members): WithMembers) -> Self {
        Self {
            session: room.into(),
            members: members.into_iter().map(Into::into).collect(),
        }
    }
}

/// Schedules a session; its owner is its first member.
#[utoipa::path(post, path = "/api/study-sessions", tag = "study-sessions", request_body = NewRoomRequest,
    responses((status = 201, body = Room), (status = 401, body = Problem),
        (status = 409, description = "Too many upcoming sessions", body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(rooms): State<Rooms>,
    auth: Authenticated,
    ApiJson(req): ApiJson<NewRoomRequest>,
) -> Result<(StatusCode, axum::Json<Room>), ApiError> {
    let asked = Schedule {
        title: req.title,
        subject: req.subject,
        description: req.description,
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        capacity: req.capacity,
    };
    let room = rooms.schedule(auth.user_id(), asked).await?;
    Ok((StatusCode::CREATED, axum::Json(room.into())))
}

/// Upcoming sessions anyone can join, soonest first.
#[utoipa::path(get, path = "/api/study-sessions", tag = "study-sessions",
    responses((status = 200, body = Vec<Room>), (status = 401, body = Problem)))]
pub async fn upcoming(
    State(rooms): State<Rooms>,
    _auth: Authenticated,
) -> Result<axum::Json<Vec<Room>>, ApiError> {
    Ok(axum::Json(api::rooms(rooms.upcoming().await?)))
}

/// Sessions I run or joined, latest first.
#[utoipa::path(get, path = "/api/study-sessions/mine", tag = "study-sessions",
    responses((status = 200, body = Vec<Room>), (status = 401, body = Problem)))]
pub async fn mine(
    State(rooms): State<Rooms>,
    auth: Authenticated,
) -> Result<axum::Json<Vec<Room>>, ApiError> {
    Ok(axum::Json(api::rooms(rooms.of(auth.user_id()).await?)))
}

/// One session with its members.
#[utoipa::path(get, path = "/api/study-sessions/{id}", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = RoomDetail), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn detail(
    State(rooms): State<Rooms>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    Ok(axum::Json(rooms.detail(auth.user_id(), id).await?.into()))
}

/// Joins a session (idempotent).
#[utoipa::path(post, path = "/api/study-sessions/{id}/join", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 404, body = Problem),
        (status = 409, description = "Full, cancelled or over", body = Problem)))]
pub async fn join(
    State(rooms): State<Rooms>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    Ok(axum::Json(rooms.join(id, auth.user_id()).await?.into()))
}

/// Leaves a session. Owners cancel instead.
#[utoipa::path(post, path = "/api/study-sessions/{id}/leave", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 404, body = Problem),
        (status = 409, description = "Owners cannot leave", body = Problem)))]
pub async fn leave(
    State(rooms): State<Rooms>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    Ok(axum::Json(rooms.leave(id, auth.user_id()).await?.into()))
}

/// Cancels a session (owner only).
#[utoipa::path(post, path = "/api/study-sessions/{id}/cancel", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 401, body = Problem), (status = 200, body = RoomDetail), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(rooms): State<Rooms>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RoomDetail>, ApiError> {
    Ok(axum::Json(rooms.cancel(id, auth.user_id()).await?.into()))
}
