//! Typed configuration, read once at start-up from the environment (and a
//! `.env` file, loaded by the binary), one section per subsystem: each
//! section parses and checks its own variables in its own file, and takes
//! its defaults from the engine it configures where that has one. Every
//! variable is listed, with its default, in `.env.example`.

use std::path::PathBuf;

mod accounts;
mod database;
mod distributed;
mod env;
mod http;
mod images;
mod jobs;
mod realtime;
mod storage;
mod turn;

pub use accounts::AccountSettings;
pub use database::DatabaseSettings;
pub use distributed::{CacheSettings, RedisSettings};
use env::Env;
pub use env::parse_duration;
pub use http::{HttpSettings, TelemetrySettings};
pub use images::ImageSettings;
pub use jobs::{AiSettings, QueueSettings};
pub use realtime::{RealtimeGuards, RealtimeSettings};
pub use storage::{ArchiveSettings, AwsSettings, StorageSettings};
pub use turn::{IceSettings, TurnSettings};

/// Everything Tandem can be told, by subsystem. Secrets are
/// [`tandem_core::SecretString`]s: `Debug` prints `[REDACTED]`, so logging
/// the config never leaks them.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TANDEM_DATA_DIR`: the embedded mode's files (SQLite database, uploads, archives).
    pub data_dir: PathBuf,
    /// The HTTP listener.
    pub http: HttpSettings,
    /// Logs and metrics.
    pub telemetry: TelemetrySettings,
    /// SQLite or PostgreSQL, and read replicas.
    pub database: DatabaseSettings,
    /// Redis, for the distributed mode.
    pub redis: RedisSettings,
    /// The query cache.
    pub cache: CacheSettings,
    /// Login sessions, sign-in and sign-up limits.
    pub accounts: AccountSettings,
    /// The realtime endpoint.
    pub realtime: RealtimeSettings,
    /// Uploads and S3.
    pub storage: StorageSettings,
    /// Uploads' processing and `/cdn-cgi/image/` variants.
    pub images: ImageSettings,
    /// Archiving old analytics.
    pub archive: ArchiveSettings,
    /// Background jobs.
    pub queue: QueueSettings,
    /// The AI provider.
    pub ai: AiSettings,
    /// STUN and TURN servers handed to browsers.
    pub ice: IceSettings,
    /// The embedded TURN server.
    pub turn: TurnSettings,
}

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem} (got {value:?})")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    problem: &'static str,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        if env.get("TANDEM_ADMIN_EMAILS").is_some() {
            // Admin used to go to whoever signed up with a listed address.
            return Err(env.error(
                "TANDEM_ADMIN_EMAILS",
                "(set)",
                "no longer read: grant the admin pages to an existing account with `tandem admin grant EMAIL`",
            ));
        }
        Ok(Self {
            data_dir: env.text("TANDEM_DATA_DIR", "./data").into(),
            http: HttpSettings::from_env(&env)?,
            telemetry: TelemetrySettings::from_env(&env)?,
            database: DatabaseSettings::from_env(&env)?,
            redis: RedisSettings::from_env(&env)?,
            cache: CacheSettings::from_env(&env)?,
            accounts: AccountSettings::from_env(&env)?,
            realtime: RealtimeSettings::from_env(&env)?,
            storage: StorageSettings::from_env(&env)?,
            images: ImageSettings::from_env(&env)?,
            archive: ArchiveSettings::from_env(&env)?,
            queue: QueueSettings::from_env(&env)?,
            ai: AiSettings::from_env(&env)?,
            ice: IceSettings::from_env(&env)?,
            turn: TurnSettings::from_env(&env)?,
        })
    }

    /// The deployment these settings describe, or why it is not one
    /// Tandem supports: the embedded mode (SQLite, everything in-process)
    /// or the distributed one (PostgreSQL and Redis together), each with
    /// its optional extras (replicas, S3, a cache Redis, external TURN, an
    /// AI provider).
    pub fn deployment(&self) -> Result<Deployment, UnsupportedDeployment> {
        use tandem_core::ExposeSecret;
        let postgres = self
            .database
            .url
            .as_ref()
            .is_some_and(|u| u.expose_secret().starts_with("postgres"));
        match (postgres, self.redis.url.is_some()) {
            (true, true) => Ok(Deployment::Distributed),
            (false, false) if !self.database.replica_urls.is_empty() => Err(UnsupportedDeployment(
                "DATABASE_READ_REPLICA_URL needs a primary: set DATABASE_URL=postgres://… \
                     and REDIS_URL (the distributed mode)",
            )),
            (false, false) => Ok(Deployment::Embedded),
            (true, false) => Err(UnsupportedDeployment(
                "DATABASE_URL is PostgreSQL but REDIS_URL is unset: the distributed mode keeps \
                 sessions, rate limits, realtime and jobs in Redis so that instances share them. \
                 Set REDIS_URL, or unset DATABASE_URL for the embedded mode (SQLite)",
            )),
            (false, true) => Err(UnsupportedDeployment(
                "REDIS_URL is set but DATABASE_URL is not PostgreSQL: instances sharing a Redis \
                 must share a database. Set DATABASE_URL=postgres://…, or unset REDIS_URL for \
                 the embedded mode",
            )),
        }
    }
}

/// A supported way to run Tandem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// One process: SQLite, in-process cache, limits, realtime and queue.
    Embedded,
    /// Stateless instances over PostgreSQL and Redis.
    Distributed,
}

impl Deployment {
    /// `embedded` or `distributed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Distributed => "distributed",
        }
    }
}

/// Settings that mix the two deployments; says what to set.
#[derive(Debug, thiserror::Error)]
#[error("unsupported configuration: {0}")]
pub struct UnsupportedDeployment(&'static str);

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::HashMap, collections::HashSet, time::Duration};

    use tandem_core::ExposeSecret;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_configuration_means_embedded_defaults() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:8080");
        assert!(c.database.url.is_none());
        assert_eq!(c.deployment().expect("supported"), Deployment::Embedded);
        assert!(c.accounts.cookie_secure);
        assert_eq!(
            c.accounts.session_absolute_timeout,
            Duration::from_secs(30 * 86_400)
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[("REDIS_URL", "redis://:hunter2@host:6379")]).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.redis.url.as_ref().map(|s| s.expose_secret().to_owned()),
            Some("redis://:hunter2@host:6379".to_owned())
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("TANDEM_COOKIE_SECURE", "maybe")]).expect_err("must fail");
        assert!(err.to_string().contains("TANDEM_COOKIE_SECURE"));
        assert!(config(&[("TANDEM_SESSION_IDLE_TIMEOUT", "soon")]).is_err());
        assert!(config(&[("TANDEM_LOGIN_MAX_PER_IP", "0")]).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5w"), None);
    }

    #[test]
    fn embedded_turn_settings() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.turn.listen, Some("0.0.0.0:3478".parse().expect("addr")));
        assert_eq!(c.turn.relay_ports, 49152..=65535);
        assert!(c.turn.allow_peers.is_empty());
        let c = config(&[
            ("TANDEM_TURN_LISTEN", "off"),
            ("TANDEM_TURN_RELAY_PORTS", "50000-50100"),
            ("TANDEM_TURN_ALLOW_PEERS", "127.0.0.1/32, 10.0.0.0/8"),
            ("TANDEM_TURN_RELAY_IP", "203.0.113.5"),
        ])
        .expect("valid");
        assert_eq!(c.turn.listen, None);
        assert_eq!(c.turn.relay_ports, 50000..=50100);
        assert_eq!(c.turn.allow_peers.len(), 2);
        assert_eq!(c.turn.relay_ip, Some("203.0.113.5".parse().expect("ip")));
        for (name, bad) in [
            ("TANDEM_TURN_LISTEN", "3478"),
            ("TANDEM_TURN_RELAY_PORTS", "60000-50000"),
            ("TANDEM_TURN_RELAY_PORTS", "0-10"),
            ("TANDEM_TURN_ALLOW_PEERS", "10.0.0.0/40"),
            ("TANDEM_TURN_RELAY_IP", "turn.example.org"),
            ("TANDEM_TURN_USER_QUOTA", "-1"),
            ("TANDEM_TURN_TCP_AUTH_TIMEOUT", "0"),
            ("TANDEM_TURN_TCP_MAX_CONNECTIONS", "0"),
        ] {
            let err = config(&[(name, bad)]).expect_err(bad);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn turn_quotas_fit_a_full_call_and_zero_means_no_cap() {
        let c = config(&[]).expect("defaults");
        // Every other seat of the largest room, once per TURN URL.
        assert_eq!(c.turn.user_quota, 2 * (50 - 1));
        assert_eq!(c.turn.tcp_auth_timeout, Duration::from_secs(10));
        assert_eq!(c.turn.tcp_max_per_ip, 128);
        let c = config(&[
            ("TANDEM_TURN_USER_QUOTA", "0"),
            ("TANDEM_TURN_TOTAL_QUOTA", "0"),
            ("TANDEM_TURN_TCP_MAX_PER_IP", "0"),
            ("TANDEM_TURN_TCP_IDLE_TIMEOUT", "2m"),
        ])
        .expect("0 is documented as no cap");
        assert_eq!((c.turn.user_quota, c.turn.total_quota), (0, 0));
        assert_eq!(c.turn.tcp_idle_timeout, Duration::from_secs(120));
    }

    #[test]
    fn replica_settings() {
        let c = config(&[]).expect("defaults");
        assert!(c.database.replica_urls.is_empty());
        assert_eq!(c.database.replica_max_lag, Duration::from_secs(30));
        let c = config(&[(
            "DATABASE_READ_REPLICA_URL",
            "postgres://a@r1:5432/t, postgresql://a@r2/t",
        )])
        .expect("valid");
        assert_eq!(c.database.replica_urls.len(), 2);
        let err = config(&[("DATABASE_READ_REPLICA_URL", "mysql://secret@r1/t")])
            .expect_err("not postgres");
        assert!(
            err.to_string().contains("DATABASE_READ_REPLICA_URL"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("secret"),
            "never echo a URL: {err}"
        );
    }

    const ENV_EXAMPLE: &str = include_str!("../../../.env.example");

    /// `.env.example` is the reference: every variable read is listed there,
    /// and every value it sets (uncommented) is the default.
    #[test]
    fn env_example_lists_every_variable_with_its_default() {
        let read = RefCell::new(HashSet::new());
        let defaults = Config::from_lookup(|name| {
            read.borrow_mut().insert(name.to_owned());
            None
        })
        .expect("defaults");
        for name in read.borrow().iter() {
            let listed = ENV_EXAMPLE.lines().any(|line| {
                let line = line.trim_start_matches(['#', ' ']);
                line.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('=') || rest.starts_with(' '))
            });
            assert!(
                listed || name == "TANDEM_ADMIN_EMAILS",
                "{name} is not in .env.example"
            );
        }
        let example: HashMap<String, String> = ENV_EXAMPLE
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
            .collect();
        let documented = Config::from_lookup(|k| example.get(k).cloned()).expect("example");
        assert_eq!(format!("{documented:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn mixed_deployments_fail_with_what_to_set() {
        let pg = ("DATABASE_URL", "postgres://u@db/t");
        let redis = ("REDIS_URL", "redis://r:6379");
        let mode = |vars: &[(&str, &str)]| config(vars).expect("parses").deployment();
        assert_eq!(mode(&[pg, redis]).expect("ok"), Deployment::Distributed);
        let sqlite = ("DATABASE_URL", "sqlite:/tmp/t.db");
        for (vars, says) in [
            (&[pg][..], "Set REDIS_URL"),
            (&[redis][..], "Set DATABASE_URL=postgres"),
            (&[sqlite, redis][..], "Set DATABASE_URL=postgres"),
            (
                &[("DATABASE_READ_REPLICA_URL", "postgres://u@r/t")][..],
                "needs a primary",
            ),
        ] {
            let err = mode(vars).expect_err("unsupported").to_string();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("u@db"), "never echo a URL: {err}");
        }
    }
}
