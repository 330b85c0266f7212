//! ICE servers for WebRTC calls in study rooms: STUN, and TURN with
//! short-lived credentials in the TURN REST API scheme (coturn's
//! `use-auth-secret`), so no browser ever holds a long-lived relay password.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::IntoResponse,
};
use serde::Serialize;
use tandem_core::ExposeSecret;
use utoipa::ToSchema;

use crate::{ApiError, AppState, error::Problem, extract::Authenticated};

/// One ICE server, as `RTCPeerConnection` takes it.
#[derive(Serialize, ToSchema)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    urls: Vec<String>,
    /// TURN username (`"<expiry>:<userId>"` for ephemeral credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

/// What to pass as `iceServers`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IceServers {
    /// STUN and TURN servers.
    ice_servers: Vec<IceServer>,
    /// Seconds the TURN credentials stay valid; fetch new ones before then.
    ttl: u64,
}

/// ICE servers with TURN credentials for the signed-in user.
#[utoipa::path(get, path = "/api/webrtc/ice-servers", tag = "webrtc",
    responses((status = 200, body = IceServers), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn ice_servers(
    State(app): State<AppState>,
    auth: Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    let user = auth.user_id();
    app.check_limit(&format!("ice:{user}"), 60, Duration::from_secs(60))
        .await?;
    let config = &app.config;
    let mut servers = Vec::new();
    if !config.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    let ttl = config.turn_credential_ttl.as_secs();
    let credentials = match (&config.turn_secret, &config.turn_static) {
        (Some(secret), _) => {
            let expires = u64::try_from(app.clock.now().timestamp()).unwrap_or(0) + ttl;
            let minted = tandem_turn::credentials::mint(
                secret.expose_secret().as_bytes(),
                &user.to_string(),
                expires,
            );
            Some((minted.username, minted.password))
        }
        (None, Some((username, password))) => {
            Some((username.clone(), password.expose_secret().to_owned()))
        }
        (None, None) => None,
    };
    if let (false, Some((username, credential))) = (config.turn_urls.is_empty(), credentials) {
        servers.push(IceServer {
            urls: config.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    let body = IceServers {
        ice_servers: servers,
        ttl,
    };
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, axum::Json(body)))
}
