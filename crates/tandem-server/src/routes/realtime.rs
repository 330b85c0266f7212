//! The realtime endpoint (Supabase Realtime's protocol) and its tokens.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{
    extract::{Query, State, WebSocketUpgrade},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tandem_db::Database;
use tandem_realtime::{
    hub::Outbound,
    protocol::{Body, Vsn},
    socket::{self, Authorizer, Limits, SocketContext},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    ApiError, AppState, cookies,
    error::Problem,
    extract::{ApiJson, Authenticated},
};

/// How long a realtime access token lives; clients refresh it with `access_token` pushes.
const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// Largest frame a client may send.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A realtime access token.
#[derive(Serialize, ToSchema)]
pub struct RealtimeToken {
    /// Pass as `access_token` (join payload, `setAuth`) or as the `apikey` parameter.
    pub access_token: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// Issues a short-lived realtime access token for the logged-in user.
#[utoipa::path(post, path = "/api/realtime/token", tag = "realtime",
    responses((status = 200, body = RealtimeToken), (status = 401, body = Problem)))]
pub async fn token(State(app): State<AppState>, auth: Authenticated) -> axum::Json<RealtimeToken> {
    let (access_token, expires_at) = app.realtime_tokens.issue(auth.user_id(), TOKEN_TTL);
    axum::Json(RealtimeToken {
        access_token,
        expires_at,
    })
}

/// Query parameters of the WebSocket endpoint.
#[derive(Deserialize)]
pub struct SocketParams {
    apikey: Option<String>,
    vsn: Option<String>,
}

/// `GET /realtime/v1/websocket?apikey=…&vsn=2.0.0`.
pub async fn websocket(
    State(app): State<AppState>,
    Query(params): Query<SocketParams>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let vsn = Vsn::parse(params.vsn.as_deref()).ok_or(ApiError::BadRequest {
        status: axum::http::StatusCode::BAD_REQUEST,
        detail: "Unsupported vsn: use 1.0.0 or 2.0.0.".into(),
    })?;
    let cookie_user = match cookies::read(&headers, app.config.cookie_secure) {
        Some(token) => app.sessions.resolve(&token).await?.map(|s| s.user_id),
        None => None,
    };
    let ctx = SocketContext {
        hub: app.realtime.clone(),
        vsn,
        cookie_user,
        apikey: params.apikey,
        signer: app.realtime_tokens.clone(),
        authorizer: Arc::new(Rules { db: app.db.clone() }),
        presence: app.realtime_presence.clone(),
        limits: Limits {
            messages_per_second: app.config.realtime_messages_per_second,
            ..Limits::default()
        },
        shutdown: app.shutdown.clone(),
    };
    // Small socket buffers: memory per connection is what lets one machine
    // hold tens of thousands (tungstenite's defaults are 128 KiB each). The
    // read chunk is zeroed on every read attempt, so it is kept small too:
    // client frames are small, larger ones just take more reads.
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| socket::serve(socket, ctx))
        .into_response())
}

/// Messages for `POST /realtime/v1/api/broadcast`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// Up to 100 messages.
    messages: Vec<BroadcastMessage>,
}

/// One server-side broadcast.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastMessage {
    /// Topic without the `realtime:` prefix.
    topic: String,
    /// Event name.
    event: String,
    /// Payload.
    payload: serde_json::Value,
    /// Accepted for compatibility; the same rules apply either way.
    #[serde(default, rename = "private")]
    _private: bool,
}

/// Broadcasts from a server (or a client that is not joined), as Supabase's
/// REST endpoint: authenticated by an access token (`apikey` or
/// `Authorization: Bearer`) or the session cookie; the channel rules apply.
pub async fn rest_broadcast(
    State(app): State<AppState>,
    Query(params): Query<SocketParams>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BroadcastRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    let user = rest_user(&app, &params, &headers).await?;
    if req.messages.is_empty() || req.messages.len() > 100 {
        return Err(ApiError::invalid("messages", "Send 1 to 100 messages."));
    }
    let rules = Rules { db: app.db.clone() };
    for m in &req.messages {
        if m.topic.is_empty() || m.topic.len() > 246 || m.event.is_empty() || m.event.len() > 255 {
            return Err(ApiError::invalid(
                "messages",
                "Topics are 1–246 bytes, events 1–255.",
            ));
        }
        if !rules.may_join(user, &m.topic).await {
            return Err(ApiError::Forbidden(
                "You may not broadcast on this channel.",
            ));
        }
    }
    for m in req.messages {
        let topic = format!("realtime:{}", m.topic);
        app.realtime.publish(&Outbound::broadcast(
            &topic,
            &m.event,
            Body::Json(m.payload),
            None,
        ));
    }
    Ok(axum::http::StatusCode::ACCEPTED)
}

async fn rest_user(
    app: &AppState,
    params: &SocketParams,
    headers: &HeaderMap,
) -> Result<Uuid, ApiError> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let apikey = headers.get("apikey").and_then(|v| v.to_str().ok());
    let now = tandem_realtime::token::unix_now();
    for token in [bearer, apikey, params.apikey.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some((user, _)) = app.realtime_tokens.verify(token, now) {
            return Ok(user);
        }
    }
    if let Some(token) = cookies::read(headers, app.config.cookie_secure)
        && let Some(session) = app.sessions.resolve(&token).await?
    {
        return Ok(session.user_id);
    }
    Err(ApiError::Unauthenticated)
}

/// Channel rules: `user:{id}` is that user's alone, `room:{id}` is for the
/// members of that study session, other topics for any signed-in user.
struct Rules {
    db: Arc<dyn Database>,
}

#[async_trait]
impl Authorizer for Rules {
    async fn may_join(&self, user: Uuid, topic: &str) -> bool {
        if let Some(id) = topic.strip_prefix("user:") {
            return Uuid::parse_str(id).is_ok_and(|id| id == user);
        }
        if let Some(id) = topic.strip_prefix("room:") {
            let Ok(room) = Uuid::parse_str(id) else {
                return false;
            };
            return match self.db.members(room).await {
                Ok(members) => members.iter().any(|m| m.user_id == user),
                Err(e) => {
                    tracing::warn!(error = %e, "realtime: membership check failed");
                    false
                }
            };
        }
        true
    }
}
