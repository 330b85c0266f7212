//! "My devices": list and revoke my login sessions.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    Accounts, ApiError,
    error::Problem,
    extract::{ApiPath, Authenticated},
    routes::auth::clear_cookie,
};

/// One logged-in device.
#[derive(Serialize, ToSchema)]
pub struct DeviceSession {
    /// Session id (a hash; not the cookie).
    pub id: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last activity (to the minute).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// Browser at login.
    pub user_agent: Option<String>,
    /// IP address at login.
    pub ip: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// How many sessions were ended.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Count of ended sessions.
    pub revoked: u64,
}

/// My live sessions, newest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth",
    responses((status = 200, body = Vec<DeviceSession>), (status = 401, body = Problem)))]
pub async fn list(
    State(accounts): State<Accounts>,
    auth: Authenticated,
) -> Result<axum::Json<Vec<DeviceSession>>, ApiError> {
    let sessions = accounts.devices(auth.user_id()).await?;
    let current = auth.session.id.as_str();
    Ok(axum::Json(
        sessions
            .into_iter()
            .map(|s| DeviceSession {
                current: s.id == current,
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect(),
    ))
}

/// Logs out every other device.
#[utoipa::path(delete, path = "/api/auth/sessions", tag = "auth",
    responses((status = 200, body = Revoked), (status = 401, body = Problem)))]
pub async fn revoke_others(
    State(accounts): State<Accounts>,
    auth: Authenticated,
) -> Result<axum::Json<Revoked>, ApiError> {
    let revoked = accounts
        .log_out_others(auth.user_id(), &auth.session.id)
        .await?;
    Ok(axum::Json(Revoked { revoked }))
}

/// Logs out one of my devices. Someone else's session id is "not found".
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "Session id from the list")),
    responses((status = 204, description = "Ended"), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke(
    State(accounts): State<Accounts>,
    auth: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let well_formed = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(ApiError::BadRequest(
            "Session ids are 64 lower-case hexadecimal characters.".into(),
        ));
    }
    if !accounts.log_out_device(auth.user_id(), &id).await? {
        return Err(ApiError::NotFound("session"));
    }
    let headers = if id == auth.session.id {
        clear_cookie(&accounts)
    } else {
        HeaderMap::new()
    };
    Ok((StatusCode::NO_CONTENT, headers))
}
