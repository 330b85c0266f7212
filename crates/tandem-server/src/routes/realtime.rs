//! The realtime endpoint (Supabase Realtime's protocol) and its tokens.

pub mod guard;

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
    access::Identity,
    hub::Outbound,
    protocol::{Body, Vsn},
    socket::{self, Authorizer, Limits, SocketContext},
};
use tandem_sessions::Sessions;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    Accounts, ApiError, Config, Data, Live, cookies,
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

/// Issues a short-lived realtime access token for the logged-in user; it
/// stops working when this login session ends.
#[utoipa::path(post, path = "/api/realtime/token", tag = "realtime",
    responses((status = 200, body = RealtimeToken), (status = 401, body = Problem)))]
pub async fn token(State(live): State<Live>, auth: Authenticated) -> axum::Json<RealtimeToken> {
    let (access_token, expires_at) =
        live.tokens
            .issue_for_session(auth.user_id(), &auth.session.id, TOKEN_TTL);
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

/// `GET /realtime/v1/websocket?apikey=…&vsn=2.0.0`. A browser page from
/// another origin must bring an access token (its cookie is not used); a
/// socket with no credential takes one of a capped number of slots and
/// must join a channel soon.
pub async fn websocket(
    State(config): State<Arc<Config>>,
    State(data): State<Data>,
    State(accounts): State<Accounts>,
    State(live): State<Live>,
    Query(params): Query<SocketParams>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let vsn = Vsn::parse(params.vsn.as_deref())
        .ok_or_else(|| ApiError::BadRequest("Unsupported vsn: use 1.0.0 or 2.0.0.".into()))?;
    let same_origin = guard::origin_allowed(&config, &headers);
    if !same_origin && params.apikey.is_none() {
        metrics::counter!("tandem_realtime_refused_total", "why" => "origin").increment(1);
        return Err(ApiError::Forbidden(
            "WebSockets from other origins need an access token (apikey).",
        ));
    }
    // Another origin's page never rides on this site's session cookie.
    let cookie = match cookies::read(&headers, config.accounts.cookie_secure) {
        Some(token) if same_origin => accounts.sessions.resolve(&token).await?.map(|s| Identity {
            user: s.user_id,
            session: Some(s.id),
        }),
        _ => None,
    };
    let now = live.tokens.now();
    // A token of an ended session is no credential: such a socket is a stranger.
    let token = (params.apikey.as_deref()).and_then(|t| live.tokens.claims(t, now));
    let has_token = match token {
        Some(claims) => {
            let identity = Identity {
                user: claims.user,
                session: claims.session,
            };
            session_live(&accounts.sessions, &identity).await
        }
        None => false,
    };
    let anonymous = if cookie.is_none() && !has_token {
        match live.hub.admit_anonymous() {
            Some(slot) => Some(slot),
            None => {
                metrics::counter!("tandem_realtime_refused_total", "why" => "anonymous_cap")
                    .increment(1);
                return Err(ApiError::Busy(
                    "Too many unauthenticated realtime connections: sign in, or retry later.",
                ));
            }
        }
    } else {
        None
    };
    let guards = &config.realtime.guards;
    let ctx = SocketContext {
        hub: live.hub.clone(),
        vsn,
        cookie,
        apikey: params.apikey,
        signer: live.tokens.clone(),
        authorizer: Arc::new(Rules {
            db: data.db.clone(),
            sessions: accounts.sessions.clone(),
        }),
        presence: live.presence.clone(),
        limits: Limits {
            messages_per_second: config.realtime.messages_per_second,
            presence_meta_bytes: usize::try_from(guards.presence_meta_bytes).unwrap_or(usize::MAX),
            auth_deadline: guards.auth_deadline,
            ..Limits::default()
        },
        reserved_events: guard::SERVER_EVENTS,
        anonymous,
        shutdown: live.shutdown.clone(),
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
/// `Authorization: Bearer`) or the session cookie; the channel rules, the
/// server's reserved event names and the channel's rate apply, plus a
/// budget per user; each message is stamped with its sender.
pub async fn rest_broadcast(
    State(config): State<Arc<Config>>,
    State(data): State<Data>,
    State(accounts): State<Accounts>,
    State(live): State<Live>,
    Query(params): Query<SocketParams>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BroadcastRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    let user = rest_user((&config, &accounts, &live), &params, &headers).await?;
    if req.messages.is_empty() || req.messages.len() > 100 {
        return Err(ApiError::invalid("messages", "Send 1 to 100 messages."));
    }
    let rules = Rules {
        db: data.db.clone(),
        sessions: accounts.sessions.clone(),
    };
    for m in &req.messages {
        if m.topic.is_empty() || m.topic.len() > 246 || m.event.is_empty() || m.event.len() > 255 {
            return Err(ApiError::invalid(
                "messages",
                "Topics are 1–246 bytes, events 1–255.",
            ));
        }
        if guard::SERVER_EVENTS.contains(&m.event.as_str()) {
            return Err(ApiError::invalid(
                "messages",
                "This event name is reserved for the server.",
            ));
        }
        if !rules.may_join(user, &m.topic).await {
            return Err(ApiError::Forbidden(
                "You may not broadcast on this channel.",
            ));
        }
    }
    let count = u32::try_from(req.messages.len()).unwrap_or(u32::MAX);
    if !live.hub.take_user_budget(user, count) {
        return Err(ApiError::RateLimited(Duration::from_secs(1)));
    }
    for m in req.messages {
        let topic = format!("realtime:{}", m.topic);
        let message =
            Outbound::from_sender(&topic, &m.event, Body::Json(m.payload), Some(user), None);
        if !live.hub.publish_limited(&message) {
            return Err(ApiError::RateLimited(Duration::from_secs(1)));
        }
    }
    Ok(axum::http::StatusCode::ACCEPTED)
}

async fn rest_user(
    (config, accounts, live): (&Config, &Accounts, &Live),
    params: &SocketParams,
    headers: &HeaderMap,
) -> Result<Uuid, ApiError> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let apikey = headers.get("apikey").and_then(|v| v.to_str().ok());
    let now = live.tokens.now();
    for token in [bearer, apikey, params.apikey.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(claims) = live.tokens.claims(token, now) {
            let identity = Identity {
                user: claims.user,
                session: claims.session,
            };
            if identity.session.is_some() && !session_live(&accounts.sessions, &identity).await {
                return Err(ApiError::Unauthenticated);
            }
            return Ok(identity.user);
        }
    }
    if let Some(token) = cookies::read(headers, config.accounts.cookie_secure)
        && guard::origin_allowed(config, headers)
        && let Some(session) = accounts.sessions.resolve(&token).await?
    {
        return Ok(session.user_id);
    }
    Err(ApiError::Unauthenticated)
}

/// Channel rules: `user:{id}` is that user's alone, `room:{id}` is for the
/// members of that study session, other topics for any signed-in user.
struct Rules {
    db: Arc<dyn Database>,
    sessions: Sessions,
}

/// Whether the login session of `identity` still exists (and is theirs).
async fn session_live(sessions: &Sessions, identity: &Identity) -> bool {
    let Some(id) = identity.session.as_deref() else {
        return true;
    };
    match sessions.store().get(id).await {
        Ok(session) => session.is_some_and(|s| s.user_id == identity.user),
        Err(e) => {
            tracing::warn!(error = %e, "realtime: session check failed");
            false
        }
    }
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

    async fn session_live(&self, identity: &Identity) -> bool {
        session_live(&self.sessions, identity).await
    }
}
