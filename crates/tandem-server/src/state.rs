//! The application state every handler receives, built once at start-up
//! on the [`Backends`] the configuration names.

use std::{ops::Deref, sync::Arc, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use rand::RngCore;
use tandem_ai::{AiClient, AiConfig};
use tandem_cache::Cache;
use tandem_core::{Clock, ExposeSecret, Shutdown};
use tandem_db::Database;
use tandem_queue::QueueBackend;
use tandem_ratelimit::{Decision, Limit, MemoryLimiter, RateLimiter};
use tandem_realtime::{batch::Batcher, hub::Hub, socket::PresenceView, token::TokenSigner};
use tandem_sessions::Sessions;

use crate::{
    ApiError,
    backends::Backends,
    config::{Config, Deployment},
    passwords::Passwords,
    replicas::Replicas,
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
    pub replicas: Option<Replicas>,
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
    /// Connects the configured [`Backends`] and builds the services on them.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let realtime = Arc::new(crate::routes::realtime::guard::hub(&config));
        let backends = Backends::connect(&config, &clock, &realtime, &shutdown).await?;
        let Backends {
            deployment,
            db,
            sessions,
            limiter,
            cache,
            presence,
            queue,
            objects,
            archive,
            replicas,
        } = backends;
        let archiver = archiver_on(&config, db.clone(), archive, clock.clone());
        db.prepare_weeks(
            clock.now(),
            tandem_archive::ArchiveOptions::default().weeks_ahead,
        )
        .await
        .context("preparing analytics partitions")?;
        let chat_batcher = Batcher::new(realtime.clone(), config.realtime.batch_window, 100);
        Ok(Self {
            sessions: Sessions::new(sessions, config.accounts.session_policy(), clock.clone()),
            limiter,
            local_limiter: MemoryLimiter::new(100_000),
            passwords: Passwords::new(),
            cache,
            realtime,
            chat_batcher,
            realtime_presence: presence,
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
    let store = crate::backends::archive_store(config)?;
    Ok(archiver_on(config, db, store, clock))
}

fn archiver_on(
    config: &Config,
    db: Arc<dyn Database>,
    store: Arc<dyn tandem_store::ObjectStore>,
    clock: Arc<dyn Clock>,
) -> tandem_archive::Archiver {
    tandem_archive::Archiver::new(
        db,
        store,
        clock,
        tandem_archive::ArchiveOptions {
            after: chrono::Duration::days(config.archive.after_days.into()),
            ..tandem_archive::ArchiveOptions::default()
        },
    )
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
