//! WebRTC's ICE servers (STUN, external TURN and its credentials) and the
//! embedded TURN server's listener, relays, quotas and timeouts.

use std::{
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    time::Duration,
};

use tandem_core::SecretString;
use tandem_turn::server::policy::Cidr;

use super::{ConfigError, Env};

/// The ICE servers browsers are given.
#[derive(Debug, Clone)]
pub struct IceSettings {
    /// `STUN_SERVER_URLS`: comma-separated `stun:` URLs handed to browsers.
    pub stun_urls: Vec<String>,
    /// `TURN_SERVER_URL`: comma-separated `turn:`/`turns:` URLs of external TURN servers.
    pub turn_urls: Vec<String>,
    /// `TURN_SECRET`: coturn's `static-auth-secret`; browsers get short-lived
    /// credentials derived from it (the TURN REST API scheme).
    pub turn_secret: Option<SecretString>,
    /// `TURN_USERNAME` / `TURN_PASSWORD`: fixed credentials, only for managed
    /// providers that cannot verify ephemeral ones (never the default).
    pub turn_static: Option<(String, SecretString)>,
    /// `TURN_CREDENTIAL_TTL`: lifetime of ephemeral TURN credentials.
    pub credential_ttl: Duration,
}

impl IceSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            stun_urls: env.urls("STUN_SERVER_URLS", &["stun:"])?,
            turn_urls: env.urls("TURN_SERVER_URL", &["turn:", "turns:"])?,
            turn_secret: env.secret("TURN_SECRET"),
            turn_static: env.get("TURN_USERNAME").zip(env.secret("TURN_PASSWORD")),
            credential_ttl: env.duration("TURN_CREDENTIAL_TTL", Duration::from_secs(4 * 3600))?,
        })
    }
}

/// The embedded TURN server.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// `TANDEM_TURN_LISTEN`: UDP and TCP address of the embedded TURN server,
    /// which `serve` starts when `TURN_SERVER_URL` is unset (`off`: none).
    pub listen: Option<SocketAddr>,
    /// `TANDEM_TURN_HOST`: host name put in the embedded server's `turn:`
    /// URLs (unset: the host the browser reached Tandem at).
    pub host: Option<String>,
    /// `TANDEM_TURN_RELAY_IP`: address relays bind to and advertise
    /// (unset: the listen address, or the machine's outbound interface).
    pub relay_ip: Option<IpAddr>,
    /// `TANDEM_TURN_RELAY_PORTS`: relay port range, `low-high`.
    pub relay_ports: RangeInclusive<u16>,
    /// `TANDEM_TURN_ALLOW_PEERS`: comma-separated networks relays may reach
    /// although they are private, loopback, link-local or otherwise special.
    pub allow_peers: Vec<Cidr>,
    /// `TANDEM_TURN_REALM`: the long-term credential realm.
    pub realm: String,
    /// `TANDEM_TURN_USER_QUOTA`: allocations (and EVEN-PORT reservations)
    /// one user may hold (0: no cap; default sized for a full call, see
    /// [`crate::turn::DEFAULT_USER_QUOTA`]).
    pub user_quota: u32,
    /// `TANDEM_TURN_TOTAL_QUOTA`: allocations the server holds at most (0: no cap).
    pub total_quota: u32,
    /// `TANDEM_TURN_TCP_AUTH_TIMEOUT`: a TCP client that has not
    /// authenticated this long after connecting is disconnected.
    pub tcp_auth_timeout: Duration,
    /// `TANDEM_TURN_TCP_IDLE_TIMEOUT`: a TCP connection without an
    /// allocation is closed after this long without a complete message.
    pub tcp_idle_timeout: Duration,
    /// `TANDEM_TURN_TCP_MAX_PER_IP`: TCP connections one client IP may hold (0: no cap).
    pub tcp_max_per_ip: u32,
    /// `TANDEM_TURN_TCP_MAX_CONNECTIONS`: TCP connections the TURN server holds at most.
    pub tcp_max_connections: u32,
    /// `TANDEM_TURN_MAX_BYTES_PER_SEC`: relay bandwidth of one allocation
    /// (0: unlimited).
    pub bytes_per_sec: u64,
}

impl TurnSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: match env.get("TANDEM_TURN_LISTEN").as_deref().map(str::trim) {
                Some("off") => None,
                _ => Some(env.parse(
                    "TANDEM_TURN_LISTEN",
                    SocketAddr::from(([0, 0, 0, 0], 3478)),
                    "expected host:port, or off",
                )?),
            },
            host: env.get("TANDEM_TURN_HOST"),
            relay_ip: env.optional("TANDEM_TURN_RELAY_IP", "expected an IP address")?,
            relay_ports: env.port_range("TANDEM_TURN_RELAY_PORTS", 49152..=65535)?,
            allow_peers: env
                .items("TANDEM_TURN_ALLOW_PEERS")
                .into_iter()
                .map(|c| {
                    c.parse().map_err(|_| {
                        env.error(
                            "TANDEM_TURN_ALLOW_PEERS",
                            &c,
                            "expected networks like 127.0.0.1/32,10.0.0.0/8",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            realm: env.text("TANDEM_TURN_REALM", "tandem"),
            user_quota: env.parse(
                "TANDEM_TURN_USER_QUOTA",
                crate::turn::DEFAULT_USER_QUOTA,
                "expected a number of allocations (0: no cap)",
            )?,
            total_quota: env.parse(
                "TANDEM_TURN_TOTAL_QUOTA",
                1000,
                "expected a number of allocations (0: no cap)",
            )?,
            tcp_auth_timeout: env
                .duration("TANDEM_TURN_TCP_AUTH_TIMEOUT", Duration::from_secs(10))?,
            tcp_idle_timeout: env
                .duration("TANDEM_TURN_TCP_IDLE_TIMEOUT", Duration::from_secs(30))?,
            tcp_max_per_ip: env.parse(
                "TANDEM_TURN_TCP_MAX_PER_IP",
                128,
                "expected a number of connections (0: no cap)",
            )?,
            tcp_max_connections: env.count("TANDEM_TURN_TCP_MAX_CONNECTIONS", 2000)?,
            bytes_per_sec: env.parse(
                "TANDEM_TURN_MAX_BYTES_PER_SEC",
                1_250_000,
                "expected bytes per second (0: unlimited)",
            )?,
        })
    }
}
