//! The database: PostgreSQL or the embedded SQLite, its pool, its read
//! replicas and migrations.

use std::time::Duration;

use tandem_core::SecretString;
use tandem_db::{ConnectOptions, replicas::ReplicaPolicy};

use super::{ConfigError, Env};

/// The database's settings.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: `postgres://…` for PostgreSQL; unset → SQLite in the data dir.
    pub url: Option<SecretString>,
    /// `DATABASE_READ_REPLICA_URL`: comma-separated `postgres://` URLs of
    /// streaming replicas (with a PostgreSQL `DATABASE_URL`).
    pub replica_urls: Vec<SecretString>,
    /// `TANDEM_REPLICA_MAX_LAG`: a replica further behind (while behind) serves no reads.
    pub replica_max_lag: Duration,
    /// `TANDEM_REPLICA_MAX_LAG_BYTES`: a replica this many WAL bytes behind serves no reads.
    pub replica_max_lag_bytes: u64,
    /// `DATABASE_MAX_CONNECTIONS`: pool size per instance.
    pub max_connections: u32,
    /// `TANDEM_AUTO_MIGRATE`: apply migrations when `serve` starts.
    pub auto_migrate: bool,
}

impl DatabaseSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let replicas = ReplicaPolicy::default();
        Ok(Self {
            url: env.secret("DATABASE_URL"),
            replica_urls: env
                .items("DATABASE_READ_REPLICA_URL")
                .into_iter()
                .map(|u| {
                    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
                        Ok(SecretString::from(u))
                    } else {
                        Err(env.error(
                            "DATABASE_READ_REPLICA_URL",
                            "(a URL, not shown)",
                            "expected postgres:// URLs",
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
            replica_max_lag: env.duration("TANDEM_REPLICA_MAX_LAG", replicas.max_lag)?,
            replica_max_lag_bytes: env.parse(
                "TANDEM_REPLICA_MAX_LAG_BYTES",
                replicas.max_lag_bytes,
                "expected bytes",
            )?,
            max_connections: env.count(
                "DATABASE_MAX_CONNECTIONS",
                ConnectOptions::default().max_connections,
            )?,
            auto_migrate: env.flag("TANDEM_AUTO_MIGRATE", true)?,
        })
    }
}
