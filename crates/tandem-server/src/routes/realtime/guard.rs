//! The realtime endpoint's defences that need the server: the hub's bounds
//! from configuration, the `Origin` check of WebSocket upgrades, the server's
//! own event names, and the revocations the rest of the API announces when
//! a session or a membership ends.

use axum::http::{HeaderMap, header};
use tandem_realtime::{access::Revocation, hub::Hub, presence::PresenceLimits};
use uuid::Uuid;

use crate::Config;

/// Broadcast events only the server sends: chat (`messages`, which the web
/// app trusts as stored messages) and job notices. Clients may not send them.
pub const SERVER_EVENTS: &[&str] = &["messages", "matching-complete"];

/// This instance's realtime hub, with the configured bounds.
pub fn hub(config: &Config) -> Hub {
    let guards = &config.realtime.guards;
    let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    Hub::new(1024)
        .with_channel_rate(config.realtime.channel_messages_per_second)
        .with_user_rate(guards.user_broadcasts_per_second)
        .with_anonymous_cap(size(guards.max_anonymous))
        .with_presence_limits(PresenceLimits {
            per_topic: size(guards.presence_per_topic),
            per_key: size(guards.presence_per_user),
        })
}

/// Whether a WebSocket upgrade comes from a page allowed to use the
/// session cookie: no `Origin` (not a browser), the server's own origin
/// (the `Host` it was reached at), or one of `TANDEM_ALLOWED_ORIGINS`.
pub fn origin_allowed(config: &Config, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if config.realtime.guards.allowed_origins.contains(&origin) {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let forwarded = config
        .http
        .trust_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten();
    [forwarded, headers.get(header::HOST)]
        .into_iter()
        .flatten()
        .filter_map(|h| h.to_str().ok())
        .any(|host| host.eq_ignore_ascii_case(authority))
}

/// Login sessions of `user` ended: `only` that one, else all but `keep`.
/// Sockets relying on them close, on every instance.
pub fn sessions_ended(hub: &Hub, user: Uuid, only: Option<&str>, keep: Option<&str>) {
    hub.revoke(Revocation::Sessions {
        user,
        only: only.map(str::to_owned),
        keep: keep.map(str::to_owned),
    });
}

/// `user` is no longer a member of study session `room`: their sockets
/// leave its channel, on every instance.
pub fn left_room(hub: &Hub, user: Uuid, room: Uuid) {
    hub.revoke(Revocation::Topic {
        user,
        topic: format!("realtime:room:{room}"),
    });
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    #[test]
    fn only_own_and_listed_origins_pass() {
        let mut config = Config::from_lookup(|_| None).expect("config");
        config.realtime.guards.allowed_origins = vec!["https://app.example.org".into()];
        let ok = |origin, host| origin_allowed(&config, &headers(origin, host));
        assert!(ok(None, "tandem.example.org"));
        assert!(ok(Some("https://tandem.example.org"), "tandem.example.org"));
        assert!(ok(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"));
        assert!(ok(Some("https://app.example.org/"), "tandem.example.org"));
        assert!(!ok(Some("https://evil.example"), "tandem.example.org"));
        assert!(!ok(Some("null"), "tandem.example.org"));
        assert!(!ok(
            Some("https://tandem.example.org.evil"),
            "tandem.example.org"
        ));
    }
}
