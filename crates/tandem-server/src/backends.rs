//! The one place that names engines. [`Backends::connect`] turns validated
//! configuration into every engine-backed service, each behind its trait:
//!
//! | service        | embedded                  | distributed                      |
//! |----------------|---------------------------|----------------------------------|
//! | database       | SQLite                    | PostgreSQL (+ read replicas)     |
//! | login sessions | the database              | Redis                            |
//! | shared limits  | in process                | Redis                            |
//! | cache          | in process                | in process + Redis L2 (optional) |
//! | presence       | this instance's           | Redis backplane                  |
//! | job queue      | the database              | BullMQ on Redis                  |
//! | objects        | `<data-dir>/objects`      | S3 bucket (optional)             |
//! | archive        | `<data-dir>/archive`      | S3 bucket (optional)             |
//! | write marks    | in process                | Redis                            |
//!
//! Everything else in the server sees only the traits.

mod write_marks;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tandem_cache::{Cache, CacheConfig};
use tandem_core::{Clock, ExposeSecret, Shutdown};
use tandem_db::{
    ConnectOptions, Database,
    replicas::{ReplicaPolicy, ReplicaSet},
};
use tandem_queue::{QueueBackend, Retention, database::DatabaseQueue, redis::RedisQueue};
use tandem_ratelimit::{MemoryLimiter, RateLimiter, RedisLimiter};
use tandem_realtime::{
    backplane::RedisBackplane,
    hub::Hub,
    socket::{LocalPresence, PresenceView},
};
use tandem_sessions::{DbSessionStore, RedisSessionStore, SessionStore};
use tandem_store::ObjectStore;

use crate::{
    config::{Config, Deployment},
    replicas::Replicas,
    write_marks::{LocalWriteMarks, WriteMarks},
};

/// Every engine-backed service of one instance.
pub struct Backends {
    /// Embedded or distributed.
    pub deployment: Deployment,
    /// The primary database.
    pub db: Arc<dyn Database>,
    /// Where login sessions live.
    pub sessions: Arc<dyn SessionStore>,
    /// Limits shared by every instance.
    pub limiter: Arc<dyn RateLimiter>,
    /// The query-result cache.
    pub cache: Cache,
    /// Presence across instances.
    pub presence: Arc<dyn PresenceView>,
    /// Background jobs.
    pub queue: Arc<dyn QueueBackend>,
    /// Uploads and resized variants.
    pub objects: Arc<dyn ObjectStore>,
    /// Archived analytics.
    pub archive: Arc<dyn ObjectStore>,
    /// Read replicas, when configured.
    pub replicas: Option<Replicas>,
}

impl Backends {
    /// Connects what `config` names (migrating the database if asked);
    /// `hub` is joined to the other instances' when distributed, and the
    /// replica health checks run until `shutdown`.
    pub async fn connect(
        config: &Config,
        clock: &Arc<dyn Clock>,
        hub: &Arc<Hub>,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Self> {
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
            Some(url) => {
                let url = url.expose_secret();
                let client = redis::Client::open(url).context("parsing REDIS_URL")?;
                let conn = connect_redis(&client, Duration::from_secs(5))
                    .await
                    .context("connecting to Redis (REDIS_URL)")?;
                Some((client, conn, url))
            }
            None => None,
        };
        let prefix = &config.redis.prefix;
        let marks: Arc<dyn WriteMarks> = {
            let ttl = config.database.replica_max_lag + Duration::from_secs(5);
            match &redis {
                Some((_, conn, _)) => {
                    Arc::new(write_marks::RedisWriteMarks::new(conn.clone(), prefix, ttl))
                }
                None => Arc::new(LocalWriteMarks::new(clock.clone(), ttl)),
            }
        };
        let replicas = connect_replicas(config, &db, &options, marks, shutdown).await?;
        type Shared = (
            Arc<dyn SessionStore>,
            Arc<dyn RateLimiter>,
            Arc<dyn PresenceView>,
            Arc<dyn QueueBackend>,
        );
        let (sessions, limiter, presence, queue): Shared = match redis {
            Some((client, conn, url)) => (
                Arc::new(RedisSessionStore::new(conn.clone(), prefix)),
                Arc::new(RedisLimiter::new(conn.clone(), prefix)),
                RedisBackplane::start(client, conn, prefix, hub.clone()),
                Arc::new(RedisQueue::new(
                    url,
                    &config.queue.prefix,
                    Retention::default(),
                )),
            ),
            None => (
                Arc::new(DbSessionStore::new(db.clone())),
                Arc::new(MemoryLimiter::new(100_000)),
                Arc::new(LocalPresence),
                // On wall time, as BullMQ and the AI provider's Retry-After
                // are: the two queue engines stay interchangeable.
                Arc::new(DatabaseQueue::new(db.clone(), Retention::default())),
            ),
        };
        let backends = Self {
            deployment,
            db,
            sessions,
            limiter,
            cache: build_cache(config).await?,
            presence,
            queue,
            objects: object_store(&config.storage.uploads_bucket, config, "objects")
                .context("configuring the uploads bucket (UPLOADS_BUCKET, AWS_*)")?,
            archive: archive_store(config)?,
            replicas,
        };
        backends.log();
        Ok(backends)
    }

    /// One line for the deployment, one per subsystem with its engine.
    fn log(&self) {
        tracing::info!(mode = self.deployment.name(), "deployment");
        let realtime = match self.deployment {
            Deployment::Embedded => "local",
            Deployment::Distributed => "redis",
        };
        for (subsystem, engine) in [
            ("database", self.db.backend()),
            ("sessions", self.sessions.backend()),
            ("cache", self.cache.backend()),
            ("queue", self.queue.kind()),
            ("objects", self.objects.kind()),
            ("archive", self.archive.kind()),
            ("realtime", realtime),
        ] {
            tracing::info!(subsystem, engine, "backend selected");
        }
        if let Some(replicas) = &self.replicas {
            tracing::info!(set = ?replicas.set, "reading from replicas with read-your-writes");
        }
    }
}

/// The archive's store: `ARCHIVE_BUCKET` on S3, or `<data-dir>/archive`.
pub fn archive_store(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    object_store(&config.archive.bucket, config, "archive")
        .context("configuring the archive bucket (ARCHIVE_BUCKET, AWS_*)")
}

/// A managed connection: reconnects by itself; `timeout` bounds both the
/// connect and every reply.
async fn connect_redis(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    ConnectionManager::new_with_config(client.clone(), config).await
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
    let conn = connect_redis(&client, Duration::from_millis(500))
        .await
        .context("connecting to the cache's Redis")?;
    Ok(Cache::distributed(client, conn, &config.redis.prefix, tuning).await)
}

/// An object store: `bucket` on S3 if set, else `<data-dir>/<folder>`.
fn object_store(
    bucket: &Option<String>,
    config: &Config,
    folder: &str,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
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
    marks: Arc<dyn WriteMarks>,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<Replicas>> {
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
    Ok(Some(Replicas { set, marks }))
}
