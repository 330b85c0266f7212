//! The embedded TURN server, started by `serve` when no external TURN
//! server is configured: browsers get ephemeral credentials for it from
//! `GET /api/webrtc/ice-servers`, so the one-machine default has relay video.

use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;
use tandem_core::{Clock, ExposeSecret, SecretString};
use tandem_turn::server::{TurnConfig, TurnServer, detect_relay_ip};

use crate::Config;
use crate::rooms::MAX_SEATS;

/// The transports of the embedded server's `turn:` URLs, each a TURN URL
/// handed to browsers.
pub const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// Allocations one user may hold by default: in a relay-only mesh call each
/// participant has a peer connection to every other seat of the largest
/// room, and each peer connection allocates once per TURN URL.
pub const DEFAULT_USER_QUOTA: u32 = TRANSPORTS.len() as u32 * (MAX_SEATS.unsigned_abs() - 1);

/// A running embedded TURN server and the secret its credentials use.
#[derive(Debug)]
pub struct EmbeddedTurn {
    /// The server (stops when dropped).
    pub server: TurnServer,
    /// `TURN_SECRET`, or a random one when unset (one instance only).
    pub secret: SecretString,
}

/// Starts the embedded server unless `TURN_SERVER_URL` names external ones
/// or `TANDEM_TURN_LISTEN=off`.
/// Credentials are checked against `clock`, the clock that mints them.
pub async fn start(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Option<EmbeddedTurn>> {
    let Some(listen) = config.turn.listen else {
        return Ok(None);
    };
    if !config.ice.turn_urls.is_empty() {
        return Ok(None);
    }
    let secret = config.ice.turn_secret.clone().unwrap_or_else(|| {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SecretString::from(key.iter().map(|b| format!("{b:02x}")).collect::<String>())
    });
    let relay_ip = config.turn.relay_ip.unwrap_or_else(|| {
        if listen.ip().is_unspecified() {
            detect_relay_ip()
        } else {
            listen.ip()
        }
    });
    let turn = TurnConfig {
        listen,
        relay_ip,
        relay_ports: config.turn.relay_ports.clone(),
        realm: config.turn.realm.clone(),
        allow_peers: config.turn.allow_peers.clone(),
        user_quota: config.turn.user_quota as usize,
        total_quota: config.turn.total_quota as usize,
        bytes_per_sec: config.turn.bytes_per_sec,
        tcp_auth_timeout: config.turn.tcp_auth_timeout,
        tcp_idle_timeout: config.turn.tcp_idle_timeout,
        tcp_max_per_ip: config.turn.tcp_max_per_ip as usize,
        tcp_max_connections: config.turn.tcp_max_connections as usize,
        clock: clock.clone(),
        ..TurnConfig::new(secret.expose_secret().as_bytes().to_vec())
    };
    let server = TurnServer::start(turn).await.with_context(|| {
        format!(
            "starting the embedded TURN server on {listen} (TANDEM_TURN_LISTEN; off disables it)"
        )
    })?;
    Ok(Some(EmbeddedTurn { server, secret }))
}
