//! Tandem's data layer.
//!
//! Handlers talk to [`Database`], a set of small repository traits grouped
//! by domain (`accounts`, `rooms`, `partners`, `jobs`, `analytics`), each
//! module with its traits and their SQL. There is
//! one implementation per engine — [`sqlite::SqliteDatabase`] for the embedded
//! mode and [`postgres::PostgresDatabase`] for the distributed one — each with
//! its own migrations under `migrations/`. [`connect`] picks one from the
//! configured URL, once, at start-up.

pub mod accounts;
pub mod analytics;
mod engine;
pub mod jobs;
pub mod models;
pub mod partners;
pub mod postgres;
pub mod replicas;
pub mod rooms;
mod rows;
pub mod sqlite;

use std::{fmt, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;

pub use accounts::{AuthSessionRepo, UserRepo};
pub use analytics::{
    Activity, AnalyticsRepo, AnalyticsRow, AnalyticsTable, ArchiveObject, ArchiveRun, Json,
    PageView, Purge, StudyVisit, Week,
};
pub use jobs::{JobCountsRecord, JobLease, JobRecord, JobRepo, NewJobRecord, StalledSweep};
pub use models::*;
pub use partners::PartnerRepo;
pub use rooms::{AchievementRepo, ChatRepo, ConfigRepo, RoomRepo};

/// Errors from the data layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint was hit; the payload names what already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be reached or answered with an error; ask
    /// [`DbError::is_unavailable`] and the like what kind.
    #[error("database error: {0}")]
    Engine(#[source] EngineError),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The configured URL names an engine Tandem does not support.
    #[error("unsupported DATABASE_URL scheme (expected postgres:// or sqlite:)")]
    UnsupportedUrl,
}

/// The engine's own error, kept opaque: callers outside this crate see its
/// message and ask [`DbError`] what they need, never the driver's types.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(sqlx::Error);

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        Self::Engine(EngineError(err))
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(Box::new(err))
    }
}

impl DbError {
    /// The driver's error, inside this crate.
    fn engine(&self) -> Option<&sqlx::Error> {
        match self {
            Self::Engine(EngineError(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether the database is unreachable or saturated (answer 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.engine(),
            Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }

    /// Whether the database refused the data itself (SQLSTATE class 22,
    /// data exception, or 23, integrity violation): repeating the same
    /// statement cannot succeed, but the other rows of a batch may.
    pub fn is_bad_data(&self) -> bool {
        match self.engine() {
            Some(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
            Some(sqlx::Error::Encode(_)) => true,
            _ => false,
        }
    }

    /// Whether a hot standby cancelled the statement because replay needed
    /// what it was reading (SQLSTATE 40001, or 40P01 for a buffer-pin
    /// deadlock): the replica is healthy and the read can be repeated
    /// elsewhere.
    pub fn is_recovery_conflict(&self) -> bool {
        self.sqlstate()
            .is_some_and(|code| matches!(code.as_str(), "40001" | "40P01"))
    }

    /// The SQLSTATE the database answered with, if it answered with one.
    pub(crate) fn sqlstate(&self) -> Option<String> {
        match self.engine() {
            Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

/// One database engine with every repository Tandem needs.
#[async_trait]
pub trait Database:
    UserRepo
    + AuthSessionRepo
    + RoomRepo
    + AchievementRepo
    + ChatRepo
    + ConfigRepo
    + JobRepo
    + PartnerRepo
    + AnalyticsRepo
    + fmt::Debug
{
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Applies this engine's pending migrations (safe to run concurrently).
    async fn migrate(&self) -> Result<(), DbError>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), DbError>;
}

/// Connection settings shared by both engines.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens the configured database: PostgreSQL for a `postgres://` URL, an
/// SQLite file for `sqlite:` URLs, and `<data_dir>/tandem.db` when no URL is set.
pub async fn connect(
    url: Option<&str>,
    data_dir: &Path,
    options: &ConnectOptions,
) -> Result<Arc<dyn Database>, DbError> {
    match url {
        None => {
            let path = data_dir.join("tandem.db");
            Ok(Arc::new(
                sqlite::SqliteDatabase::open(&path, options).await?,
            ))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(
            Arc::new(postgres::PostgresDatabase::connect(url, options).await?),
        ),
        Some(url) if url.starts_with("sqlite:") => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            Ok(Arc::new(
                sqlite::SqliteDatabase::open(Path::new(path), options).await?,
            ))
        }
        Some(_) => Err(DbError::UnsupportedUrl),
    }
}

/// Maps a unique-constraint violation to [`DbError::Conflict`].
fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict(what),
        _ => err.into(),
    }
}
