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
    protocol::Vsn,
    socket::{self, Authorizer, Limits, SocketContext},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ApiError, AppState, cookies, error::Problem, extract::Authenticated};

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
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| socket::serve(socket, ctx))
        .into_response())
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
