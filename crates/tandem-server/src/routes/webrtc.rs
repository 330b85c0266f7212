//! ICE servers for WebRTC calls in study rooms: STUN, and TURN with
//! short-lived credentials in the TURN REST API scheme (coturn's
//! `use-auth-secret`), so no browser ever holds a long-lived relay password.
//! The TURN servers are the external ones configured, or else the embedded
//! one, addressed by the host name the browser used to reach Tandem.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::IntoResponse,
};
use serde::Serialize;
use tandem_core::ExposeSecret;
use utoipa::ToSchema;

use crate::{
    ApiError, Config, Data, Limits, error::Problem, extract::Authenticated, turn::EmbeddedTurn,
};

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
    State(config): State<Arc<Config>>,
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(turn): State<Option<Arc<EmbeddedTurn>>>,
    auth: Authenticated,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let user = auth.user_id();
    limits
        .check(&format!("ice:{user}"), 60, Duration::from_secs(60))
        .await?;
    let mut stun_urls = config.ice.stun_urls.clone();
    let mut turn_urls = config.ice.turn_urls.clone();
    let mut secret = config.ice.turn_secret.as_ref();
    if let Some(embedded) = &turn {
        let host = config
            .turn
            .host
            .clone()
            .or_else(|| request_host(&headers))
            .unwrap_or_else(|| embedded.server.udp_addr().ip().to_string());
        let port = embedded.server.udp_addr().port();
        if stun_urls.is_empty() {
            stun_urls.push(format!("stun:{host}:{port}"));
        }
        turn_urls = crate::turn::TRANSPORTS
            .iter()
            .map(|t| format!("turn:{host}:{port}?transport={t}"))
            .collect();
        secret = Some(&embedded.secret);
    }
    let mut servers = Vec::new();
    if !stun_urls.is_empty() {
        servers.push(IceServer {
            urls: stun_urls,
            username: None,
            credential: None,
        });
    }
    let ttl = config.ice.credential_ttl.as_secs();
    let credentials = match (secret, &config.ice.turn_static) {
        (Some(secret), _) => {
            let expires = u64::try_from(data.clock.now().timestamp()).unwrap_or(0) + ttl;
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
    if let (false, Some((username, credential))) = (turn_urls.is_empty(), credentials) {
        servers.push(IceServer {
            urls: turn_urls,
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

/// The host part of the request's `Host` header, if it is a plain host
/// name or IP literal (anything else is not put into a URL).
fn request_host(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::HOST)?.to_str().ok()?;
    let host = if let Some(rest) = value.strip_prefix('[') {
        format!("[{}]", rest.split_once(']')?.0)
    } else {
        value.split(':').next()?.to_owned()
    };
    let plain = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    (plain && !host.is_empty() && host.len() <= 253).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).expect("header"));
        request_host(&headers)
    }

    #[test]
    fn host_header_gives_the_turn_host() {
        assert_eq!(
            host("study.example.org").as_deref(),
            Some("study.example.org")
        );
        assert_eq!(host("127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host("evil.org/path?x"), None);
        assert_eq!(host("a b"), None);
        assert_eq!(host(""), None);
    }
}
