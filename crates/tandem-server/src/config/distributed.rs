//! Redis, which makes Tandem distributed, and the query cache that may use
//! a Redis of its own.

use std::time::Duration;

use tandem_cache::CacheConfig;
use tandem_core::SecretString;

use super::{ConfigError, Env};

/// Where Redis is and how Tandem's keys are named in it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`: enables the distributed mode (sessions, rate limits,
    /// realtime and jobs in Redis).
    pub url: Option<SecretString>,
    /// `TANDEM_REDIS_PREFIX`: prefix of every Redis key, so deployments can share a Redis.
    pub prefix: String,
}

impl RedisSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.secret("REDIS_URL"),
            prefix: env.text("TANDEM_REDIS_PREFIX", "tandem:"),
        })
    }
}

/// The query cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `TANDEM_CACHE_REDIS_URL`: a separate Redis for the query cache (defaults to `REDIS_URL`).
    pub redis_url: Option<SecretString>,
    /// `TANDEM_CACHE_L1_TTL`: longest life of an in-process copy in the distributed mode.
    pub l1_ttl: Duration,
    /// `TANDEM_CACHE_L1_MAX_MB`: memory budget of the in-process cache.
    pub l1_max_mb: u64,
}

impl CacheSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let engine = CacheConfig::default();
        Ok(Self {
            redis_url: env
                .secret("TANDEM_CACHE_REDIS_URL")
                .or_else(|| env.secret("REDIS_URL")),
            l1_ttl: env.duration("TANDEM_CACHE_L1_TTL", engine.l1_ttl)?,
            l1_max_mb: env.count("TANDEM_CACHE_L1_MAX_MB", engine.l1_max_bytes >> 20)?,
        })
    }
}
