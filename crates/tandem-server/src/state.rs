//! The application state every handler receives, built once at start-up.
//! This is where each subsystem's backend is chosen from the configuration.

use std::{ops::Deref, sync::Arc, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use rand::RngCore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tandem_ai::{AiClient, AiConfig};
use tandem_cache::{Cache, CacheConfig};
use tandem_core::{Clock, ExposeSecret, Shutdown};
use tandem_db::{
    ConnectOptions, Database,
    replicas::{ReplicaPolicy, ReplicaSet},
};
use tandem_queue::{QueueBackend, Retention, database::DatabaseQueue, redis::RedisQueue};
use tandem_ratelimit::{Decision, Limit, MemoryLimiter, RateLimiter, RedisLimiter};
use tandem_realtime::{
    backplane::RedisBackplane,
    batch::Batcher,
    hub::Hub,
    socket::{LocalPresence, PresenceView},
    token::TokenSigner,
};
use tandem_sessions::{DbSessionStore, RedisSessionStore, SessionStore, Sessions};

use crate::{
    ApiError,
    config::{Config, Deployment},
    passwords::Passwords,
    replicas::WriteMarks,
    telemetry,
};

/// Cheap-to-clone handle to the [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Everything the HTTP layer needs, each subsystem behind its trait.
pub struct App {
    /// The configuration it was built from.
    pub config: Config,
    /// Users, profiles and (embedded mode) sessions.
    pub db: Arc<dyn Database>,
    /// Login sessions, in the database or in Redis.
    pub sessions: Sessions,
    /// Limits shared by all instances when Redis is configured (logins, sign-ups).
    pub limiter: Arc<dyn RateLimiter>,
    /// Per-instance limits on hot paths, where a Redis round trip per request would cost too much.
    pub local_limiter: MemoryLimiter,
    /// Argon2id hashing, off the async threads.
    pub passwords: Passwords,
    /// Time source (manual in tests).
    pub clock: Arc<dyn Clock>,
    /// Query-result cache (in-process, or L1 + Redis L2).
    pub cache: Cache,
    /// Realtime channels of this instance.
    pub realtime: Arc<Hub>,
    /// Batches chat pushes per room (the roadmap's 100 ms batcher).
    pub chat_batcher: Arc<Batcher>,
    /// Presence across instances (and, distributed, the Redis backplane).
    pub realtime_presence: Arc<dyn PresenceView>,
    /// Signs realtime access tokens.
    pub realtime_tokens: TokenSigner,
    /// Fired when the server stops: long-lived connections close.
    pub shutdown: Shutdown,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Embedded or distributed (which checks `/readyz` makes).
    pub deployment: Deployment,
    /// Background jobs: in the database, or BullMQ on Redis.
    pub queue: Arc<dyn QueueBackend>,
    /// The AI provider, if `AI_BASE_URL` is set.
    pub ai: Option<AiClient>,
    /// Read replicas and the write positions reads wait for, when
    /// `DATABASE_READ_REPLICA_URL` is set.
    pub replicas: Option<(Arc<ReplicaSet>, WriteMarks)>,
    /// Uploads and resized variants (a folder under the data dir).
    pub store: Arc<dyn tandem_store::ObjectStore>,
    /// Resized images for `/cdn-cgi/image/`.
    pub images: crate::images::Images,
    /// The web page, its asset URLs under `ASSET_PREFIX`.
    pub index_page: crate::assets::Asset,
    /// The page's Content-Security-Policy (allows the asset origin).
    pub index_csp: String,
    /// Analytics events on their way to the database, in batches.
    pub analytics: crate::analytics::AnalyticsSink,
    /// Archives expired analytics weeks to `ARCHIVE_BUCKET` or `<data-dir>/archive`.
    pub archiver: tandem_archive::Archiver,
    /// The embedded TURN server (started by [`crate::Server::bind`] only).
    pub turn: Option<crate::turn::EmbeddedTurn>,
}

impl App {
    /// Connects to the configured backends: SQLite or PostgreSQL, and Redis if set.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let deployment = config.deployment()?;
        let options = ConnectOptions {
            max_connections: config.database.max_connections,
            ..ConnectOptions::default()
        };
        let url = config.database.url.as_ref().map(|u| u.expose_secret());
        let db = tandem_db::connect(url, &config.data_dir, &options)
            .await
            .context("connecting to the database (DATABASE_URL)")?;
        if config.database.auto_migrate {
            db.migrate().await.context("applying database migrations")?;
        }
        let redis = match &config.redis.url {
            Some(url) => Some(connect_redis(url.expose_secret()).await?),
            None => None,
        };
        let shutdown = Shutdown::new();
        let objects = object_store(&config.storage.uploads_bucket, &config, "objects")
            .context("configuring the uploads bucket (UPLOADS_BUCKET, AWS_*)")?;
        let archiver = archiver(&config, db.clone(), clock.clone())?;
        db.prepare_weeks(
            clock.now(),
            tandem_archive::ArchiveOptions::default().weeks_ahead,
        )
        .await
        .context("preparing analytics partitions")?;
        let replicas = connect_replicas(&config, &db, &options, redis.as_ref(), &shutdown).await?;
        let policy = config.accounts.session_policy();
        let (store, limiter): (Arc<dyn SessionStore>, Arc<dyn RateLimiter>) = match &redis {
            Some(conn) => (
                Arc::new(RedisSessionStore::new(conn.clone(), &config.redis.prefix)),
                Arc::new(RedisLimiter::new(conn.clone(), &config.redis.prefix)),
            ),
            None => (
                Arc::new(DbSessionStore::new(db.clone())),
                Arc::new(MemoryLimiter::new(100_000)),
            ),
        };
        let cache = build_cache(&config).await?;
        let realtime = Arc::new(crate::routes::realtime::guard::hub(&config));
        let chat_batcher = Batcher::new(realtime.clone(), config.realtime.batch_window, 100);
        let realtime_presence: Arc<dyn PresenceView> = match (&config.redis.url, &redis) {
            (Some(url), Some(conn)) => {
                let client =
                    redis::Client::open(url.expose_secret()).context("parsing REDIS_URL")?;
                RedisBackplane::start(client, conn.clone(), &config.redis.prefix, realtime.clone())
            }
            _ => Arc::new(LocalPresence),
        };
        let queue: Arc<dyn QueueBackend> = match &config.redis.url {
            Some(url) => Arc::new(RedisQueue::new(
                url.expose_secret(),
                &config.queue.prefix,
                Retention::default(),
            )),
            None => Arc::new(DatabaseQueue::new(db.clone(), Retention::default())),
        };
        tracing::info!(mode = deployment.name(), "deployment");
        for (subsystem, engine) in [
            ("database", db.backend()),
            ("sessions", store.backend()),
            ("cache", cache.backend()),
            ("queue", queue.kind()),
            ("objects", objects.kind()),
            ("realtime", if redis.is_some() { "redis" } else { "local" }),
        ] {
            tracing::info!(subsystem, engine, "backend selected");
        }
        Ok(Self {
            sessions: Sessions::new(store, policy, clock.clone()),
            limiter,
            local_limiter: MemoryLimiter::new(100_000),
            passwords: Passwords::new(),
            cache,
            realtime,
            chat_batcher,
            realtime_presence,
            realtime_tokens: realtime_signer(&config, deployment),
            metrics: telemetry::metrics_handle(),
            clock,
            deployment,
            queue,
            ai: ai_client(&config)?,
            replicas,
            images: crate::images::Images::new(&config.images, objects.clone()),
            store: objects,
            index_page: crate::assets::index_page(&config.http.asset_prefix),
            index_csp: crate::routes::page_security_policy(&config.http.asset_prefix),
            analytics: crate::analytics::AnalyticsSink::start(db.clone(), shutdown.clone()),
            archiver,
            shutdown,
            db,
            turn: None,
            config,
        })
    }

    /// Counts a hit against a shared limit; `Err(RateLimited)` when over it.
    pub async fn check_limit(&self, key: &str, max: u32, window: Duration) -> Result<(), ApiError> {
        match self.limiter.hit(key, Limit { max, window }).await? {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after } => {
                metrics::counter!("tandem_rate_limited_total", "limit" => limit_name(key))
                    .increment(1);
                Err(ApiError::RateLimited(retry_after))
            }
        }
    }
}

/// A limit key's metric label: its leading name (a literal in the code,
/// like `login` or `ice`) and the kind of subject, never the subject itself
/// (an IP, a user id, an e-mail digest), so labels stay a closed set.
fn limit_name(key: &str) -> String {
    let mut parts = key.split(':');
    let name = parts.next().unwrap_or_default();
    match parts.next() {
        Some(kind @ ("ip" | "account" | "user")) => format!("{name}:{kind}"),
        _ => name.to_owned(),
    }
}

/// The analytics archiver: to `ARCHIVE_BUCKET` on S3, or to
/// `<data-dir>/archive`, for rows older than `ARCHIVE_AFTER_DAYS`.
pub fn archiver(
    config: &Config,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<tandem_archive::Archiver> {
    let store = object_store(&config.archive.bucket, config, "archive")
        .context("configuring the archive bucket (ARCHIVE_BUCKET, AWS_*)")?;
    Ok(tandem_archive::Archiver::new(
        db,
        store,
        clock,
        tandem_archive::ArchiveOptions {
            after: chrono::Duration::days(config.archive.after_days.into()),
            ..tandem_archive::ArchiveOptions::default()
        },
    ))
}

/// An object store: `bucket` on S3 if set, else `<data-dir>/<folder>`.
fn object_store(
    bucket: &Option<String>,
    config: &Config,
    folder: &str,
) -> anyhow::Result<Arc<dyn tandem_store::ObjectStore>> {
    Ok(match bucket {
        Some(bucket) => Arc::new(tandem_store::S3Store::new(&tandem_store::S3Config {
            bucket: bucket.clone(),
            region: config.storage.aws.region.clone(),
            endpoint: config.storage.aws.endpoint_url.clone(),
            access_key_id: config.storage.aws.access_key_id.clone(),
            secret_access_key: config
                .storage
                .aws
                .secret_access_key
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        })?),
        None => Arc::new(tandem_store::LocalStore::new(config.data_dir.join(folder))),
    })
}

/// The replica set, if `DATABASE_READ_REPLICA_URL` is set, with its health
/// check running until `shutdown`.
async fn connect_replicas(
    config: &Config,
    primary: &Arc<dyn Database>,
    options: &ConnectOptions,
    redis: Option<&ConnectionManager>,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<(Arc<ReplicaSet>, WriteMarks)>> {
    if config.database.replica_urls.is_empty() {
        return Ok(None);
    }
    let Some(url) = config
        .database
        .url
        .as_ref()
        .map(|u| u.expose_secret())
        .filter(|u| u.starts_with("postgres"))
    else {
        anyhow::bail!("DATABASE_READ_REPLICA_URL needs a postgres:// DATABASE_URL (the primary)");
    };
    let urls: Vec<String> = config
        .database
        .replica_urls
        .iter()
        .map(|u| u.expose_secret().to_owned())
        .collect();
    let policy = ReplicaPolicy {
        max_lag: config.database.replica_max_lag,
        max_lag_bytes: config.database.replica_max_lag_bytes,
        ..ReplicaPolicy::default()
    };
    let set = Arc::new(
        ReplicaSet::connect(primary.clone(), url, &urls, options, policy)
            .await
            .context("connecting to the read replicas (DATABASE_READ_REPLICA_URL)")?,
    );
    let checks = set.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.wait() => {}
            () = checks.run_health_checks() => {}
        }
    });
    let marks = WriteMarks::new(
        redis.map(|conn| (conn.clone(), config.redis.prefix.clone())),
        config.database.replica_max_lag + Duration::from_secs(5),
    );
    tracing::info!(
        replicas = urls.len(),
        "reading from replicas with read-your-writes"
    );
    Ok(Some((set, marks)))
}

async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("parsing REDIS_URL")?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(5))
        .set_response_timeout(Duration::from_secs(5));
    ConnectionManager::new_with_config(client, config)
        .await
        .context("connecting to Redis (REDIS_URL)")
}

/// The cache: in-process only, or with a Redis L2. The cache's connection
/// has short timeouts: a slow Redis must cost a cache miss, not a request.
async fn build_cache(config: &Config) -> anyhow::Result<Cache> {
    let tuning = CacheConfig {
        l1_ttl: config.cache.l1_ttl,
        l1_max_bytes: config.cache.l1_max_mb.saturating_mul(1 << 20),
        ..CacheConfig::default()
    };
    let Some(url) = &config.cache.redis_url else {
        return Ok(Cache::embedded(tuning));
    };
    let client =
        redis::Client::open(url.expose_secret()).context("parsing TANDEM_CACHE_REDIS_URL")?;
    let timeouts = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_millis(500))
        .set_response_timeout(Duration::from_millis(500));
    let conn = ConnectionManager::new_with_config(client.clone(), timeouts)
        .await
        .context("connecting to the cache's Redis")?;
    Ok(Cache::distributed(client, conn, &config.redis.prefix, tuning).await)
}

/// The realtime token key: configured, or random for this process (fine for
/// one instance; several instances must share `TANDEM_REALTIME_SECRET`).
fn realtime_signer(config: &Config, deployment: Deployment) -> TokenSigner {
    match &config.realtime.secret {
        Some(secret) => TokenSigner::new(secret.expose_secret().as_bytes()),
        None => {
            if deployment == Deployment::Distributed {
                tracing::warn!(
                    "TANDEM_REALTIME_SECRET is unset: realtime tokens only work on the instance that issued them"
                );
            }
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            TokenSigner::new(&key)
        }
    }
}

/// The configured AI provider; a bad setting stops start-up with its reason.
fn ai_client(config: &Config) -> anyhow::Result<Option<AiClient>> {
    let Some(base_url) = &config.ai.base_url else {
        return Ok(None);
    };
    let mut ai =
        AiConfig::new(base_url.clone(), config.ai.model.clone()).with_timeout(config.ai.timeout);
    if let Some(key) = &config.ai.api_key {
        ai = ai.with_api_key(key.clone());
    }
    Ok(Some(AiClient::new(ai).context("AI_BASE_URL")?))
}
