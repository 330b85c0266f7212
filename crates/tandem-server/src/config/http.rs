//! The HTTP listener: where it listens, how many connections and how large
//! a body it takes, where client addresses come from, and the page's asset
//! origin.

use std::{net::SocketAddr, time::Duration};

use super::{ConfigError, Env};
use crate::connections::ConnectionLimits;

/// The HTTP listener's settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `TANDEM_ADDR`: where `serve` listens.
    pub addr: SocketAddr,
    /// `TANDEM_MAX_CONNECTIONS`, `TANDEM_MAX_CONNECTIONS_PER_IP`,
    /// `TANDEM_HTTP_HEADER_TIMEOUT`: bounds of the listener.
    pub connections: ConnectionLimits,
    /// `TANDEM_MAX_BODY_BYTES`: largest accepted request body.
    pub max_body_bytes: usize,
    /// `TANDEM_TRUST_PROXY`: take the client IP from `X-Forwarded-For` (right-most entry).
    pub trust_proxy: bool,
    /// `TANDEM_API_MAX_PER_MINUTE`: API requests per client IP per minute, per instance.
    pub api_max_per_minute: u32,
    /// `ASSET_PREFIX`: origin (and path) the page loads its assets from, e.g.
    /// a CDN in front of this server (`https://cdn.example.org`); empty: same origin.
    pub asset_prefix: String,
}

impl HttpSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let trust_proxy = env.flag("TANDEM_TRUST_PROXY", false)?;
        Ok(Self {
            addr: env.parse(
                "TANDEM_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "expected host:port",
            )?,
            connections: ConnectionLimits {
                max: env.count("TANDEM_MAX_CONNECTIONS", 10_000)?,
                // Behind a trusted proxy every connection comes from it;
                // the proxy caps clients (nginx `limit_conn`).
                per_ip: match env.parse(
                    "TANDEM_MAX_CONNECTIONS_PER_IP",
                    256usize,
                    "expected a number (0: no per-IP cap)",
                )? {
                    0 => None,
                    _ if trust_proxy => None,
                    n => Some(n),
                },
                header_timeout: env
                    .duration("TANDEM_HTTP_HEADER_TIMEOUT", Duration::from_secs(10))?,
                drain_timeout: Duration::from_secs(10),
            },
            max_body_bytes: env.parse("TANDEM_MAX_BODY_BYTES", 65_536, "expected bytes")?,
            trust_proxy,
            api_max_per_minute: env.count("TANDEM_API_MAX_PER_MINUTE", 1200)?,
            asset_prefix: asset_prefix(env)?,
        })
    }
}

/// `ASSET_PREFIX`, without a trailing slash; an http(s) URL of plain
/// characters (it goes into the page and its Content-Security-Policy).
fn asset_prefix(env: &Env<'_>) -> Result<String, ConfigError> {
    let Some(prefix) = env.get("ASSET_PREFIX") else {
        return Ok(String::new());
    };
    let prefix = prefix.trim().trim_end_matches('/').to_owned();
    let plain = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/%".contains(c));
    let scheme = prefix.starts_with("https://") || prefix.starts_with("http://");
    if !(plain && scheme && prefix.len() > "https://".len()) {
        return Err(env.error(
            "ASSET_PREFIX",
            &prefix,
            "expected an http(s) URL like https://cdn.example.org",
        ));
    }
    Ok(prefix)
}

/// Logs and metrics.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `TANDEM_LOG_FORMAT`: `pretty` or `json`.
    pub log_json: bool,
    /// `TANDEM_METRICS_ADDR`: where Prometheus `/metrics` is served, on a
    /// listener of its own (unset: not served; never on the public port).
    pub metrics_addr: Option<SocketAddr>,
}

impl TelemetrySettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            log_json: match env.get("TANDEM_LOG_FORMAT").as_deref() {
                None | Some("pretty") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(env.error("TANDEM_LOG_FORMAT", other, "expected pretty or json"));
                }
            },
            metrics_addr: env.optional("TANDEM_METRICS_ADDR", "expected host:port")?,
        })
    }
}
