//! The application state, built once at start-up on the [`Backends`] the
//! configuration names, and the parts handlers take from it.

use std::{ops::Deref, sync::Arc, time::Duration};

use anyhow::Context;
use axum::extract::FromRef;
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
    Accounts, ApiError,
    backends::Backends,
    config::{Config, Deployment},
    replicas::Replicas,
    telemetry,
};

/// Cheap-to-clone handle to the [`App`]: the router's state. Handlers never
/// take it whole; they take the parts below, through [`FromRef`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Everything the HTTP layer and the workers need, as parts a handler takes
/// one by one (`State<Data>`, `State<Accounts>`, ...).
pub struct App {
    /// The configuration it was built from.
    pub config: Arc<Config>,
    /// The database, the cache over it and the read replicas.
    pub data: Data,
    /// Rate limits.
    pub limits: Limits,
    /// Login sessions and passwords.
    pub accounts: Accounts,
    /// Realtime channels, presence and tokens.
    pub live: Live,
    /// Uploads and image variants.
    pub media: Media,
    /// Background jobs: in the database, or BullMQ on Redis.
    pub queue: Arc<dyn QueueBackend>,
    /// The AI provider, if `AI_BASE_URL` is set.
    pub ai: Option<AiClient>,
    /// Analytics ingestion and archiving.
    pub analytics: Analytics,
    /// The web page and its Content-Security-Policy.
    pub page: Page,
    /// The embedded TURN server, when it listens (`serve` only).
    pub turn: Option<Arc<crate::turn::EmbeddedTurn>>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Embedded or distributed (which checks `/readyz` makes).
    pub deployment: Deployment,
    /// The process's shutdown: long-lived connections close, background
    /// tasks stop.
    pub shutdown: Shutdown,
}

/// The database, the query cache over it and the read replicas, on the
/// clock: what reads and writes go through ([`crate::reads`] for cached
/// reads, [`crate::replicas`] for routing reads to replicas).
#[derive(Clone)]
pub struct Data {
    /// The primary: writes, transactions and reads that must be fresh.
    pub db: Arc<dyn Database>,
    /// Query-result cache (in-process, or L1 + Redis L2).
    pub cache: Cache,
    /// Read replicas and the write positions reads wait for, when
    /// `DATABASE_READ_REPLICA_URL` is set.
    pub replicas: Option<Arc<Replicas>>,
    /// Time source (manual in tests).
    pub clock: Arc<dyn Clock>,
}

/// Rate limits: shared by all instances when distributed (logins,
/// sign-ups), and per instance on hot paths, where a Redis round trip per
/// request would cost too much.
#[derive(Clone)]
pub struct Limits {
    shared: Arc<dyn RateLimiter>,
    /// The per-instance limiter.
    pub local: Arc<MemoryLimiter>,
}

impl Limits {
    /// Counts a hit against a shared limit; `Err(RateLimited)` when over it.
    pub async fn check(&self, key: &str, max: u32, window: Duration) -> Result<(), ApiError> {
        match self.shared.hit(key, Limit { max, window }).await? {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after } => {
                metrics::counter!("tandem_rate_limited_total", "limit" => limit_name(key))
                    .increment(1);
                Err(ApiError::RateLimited(retry_after))
            }
        }
    }

    /// Forgets the count of a shared limit (failed logins after a success).
    pub async fn reset(&self, key: &str) -> Result<(), ApiError> {
        Ok(self.shared.reset(key).await?)
    }
}

/// Realtime: this instance's hub, chat batching, presence across
/// instances, token signing, and the shutdown that closes sockets.
#[derive(Clone)]
pub struct Live {
    /// Realtime channels of this instance.
    pub hub: Arc<Hub>,
    /// Batches chat pushes per room (the roadmap's 100 ms batcher).
    pub batcher: Arc<Batcher>,
    /// Presence across instances (and, distributed, the Redis backplane).
    pub presence: Arc<dyn PresenceView>,
    /// Signs realtime access tokens.
    pub tokens: TokenSigner,
    /// Fired when the server stops: sockets close.
    pub shutdown: Shutdown,
}

/// Uploaded originals and their resized variants.
#[derive(Clone)]
pub struct Media {
    /// Resized images for `/cdn-cgi/image/`.
    pub images: Arc<crate::images::Images>,
    /// Uploads and resized variants (a folder under the data dir, or S3).
    pub store: Arc<dyn tandem_store::ObjectStore>,
}

/// Analytics events on their way to the database, and their archive.
#[derive(Clone)]
pub struct Analytics {
    /// Events on their way to the database, in batches.
    pub sink: Arc<crate::analytics::AnalyticsSink>,
    /// Archives expired analytics weeks to `ARCHIVE_BUCKET` or `<data-dir>/archive`.
    pub archiver: tandem_archive::Archiver,
}

/// The web page, its asset URLs under `ASSET_PREFIX`.
#[derive(Clone)]
pub struct Page {
    /// The page.
    pub index: Arc<crate::assets::Asset>,
    /// Its Content-Security-Policy (allows the asset origin).
    pub csp: Arc<str>,
}

/// The parts a handler may take, each cloned from the [`App`].
macro_rules! parts {
    ($($part:ty => $field:ident),* $(,)?) => {$(
        impl FromRef<AppState> for $part {
            fn from_ref(app: &AppState) -> Self {
                app.$field.clone()
            }
        }
    )*};
}

parts!(
    Arc<Config> => config,
    Data => data,
    Limits => limits,
    Accounts => accounts,
    Live => live,
    Media => media,
    Arc<dyn QueueBackend> => queue,
    Analytics => analytics,
    Page => page,
    Option<Arc<crate::turn::EmbeddedTurn>> => turn,
    PrometheusHandle => metrics,
    Deployment => deployment,
);

impl App {
    /// Connects the configured [`Backends`] and builds the services on
    /// them, all stopping with the process's `shutdown`; with `turn`, the
    /// embedded TURN server as configured.
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
        turn: bool,
    ) -> anyhow::Result<Self> {
        // First: metric handles made before the recorder exists record nothing.
        let metrics = telemetry::metrics_handle();
        let hub = Arc::new(crate::routes::realtime::guard::hub(&config));
        let backends = Backends::connect(&config, &clock, &hub, &shutdown).await?;
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
        db.prepare_weeks(
            clock.now(),
            tandem_archive::ArchiveOptions::default().weeks_ahead,
        )
        .await
        .context("preparing analytics partitions")?;
        let turn = match turn {
            true => crate::turn::start(&config, &clock).await?.map(Arc::new),
            false => None,
        };
        let data = Data {
            db: db.clone(),
            cache,
            replicas: replicas.map(Arc::new),
            clock: clock.clone(),
        };
        let limits = Limits {
            shared: limiter,
            local: Arc::new(MemoryLimiter::new(100_000)),
        };
        Ok(Self {
            accounts: Accounts::new(
                Sessions::new(sessions, config.accounts.session_policy(), clock.clone()),
                config.accounts.clone(),
                config.http.trust_proxy,
                (data.clone(), limits.clone(), hub.clone()),
            ),
            limits,
            live: Live {
                batcher: Batcher::new(hub.clone(), config.realtime.batch_window, 100),
                hub,
                presence,
                tokens: realtime_signer(&config, deployment).with_clock(clock.clone()),
                shutdown: shutdown.clone(),
            },
            media: Media {
                images: Arc::new(crate::images::Images::new(&config.images, objects.clone())),
                store: objects,
            },
            analytics: Analytics {
                sink: Arc::new(crate::analytics::AnalyticsSink::start(
                    db.clone(),
                    shutdown.clone(),
                )),
                archiver: archiver_on(&config, db.clone(), archive, clock.clone()),
            },
            page: Page {
                index: Arc::new(crate::assets::index_page(
                    &config.http.asset_prefix,
                    &config.images.sizes,
                )),
                csp: crate::routes::page_security_policy(&config.http.asset_prefix).into(),
            },
            data,
            metrics,
            deployment,
            queue,
            ai: ai_client(&config)?,
            turn,
            shutdown,
            config: Arc::new(config),
        })
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
