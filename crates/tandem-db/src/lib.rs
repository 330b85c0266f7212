//! Tandem's data layer.
//!
//! Handlers talk to [`Database`], a set of small repository traits. There is
//! one implementation per engine — [`sqlite::SqliteDatabase`] for the embedded
//! mode and [`postgres::PostgresDatabase`] for the distributed one — each with
//! its own migrations under `migrations/`. [`connect`] picks one from the
//! configured URL, once, at start-up.

pub mod analytics;
pub mod jobs;
pub mod models;
pub mod partners;
pub mod postgres;
pub mod replicas;
mod rows;
mod shared;
mod shared_rooms;
pub mod sqlite;

use std::{fmt, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use analytics::{
    Activity, AnalyticsRepo, AnalyticsRow, AnalyticsTable, ArchiveObject, ArchiveRun, Json,
    PageView, Purge, StudyVisit, Week,
};
pub use jobs::{JobCountsRecord, JobLease, JobRecord, JobRepo, NewJobRecord, StalledSweep};
pub use models::*;
pub use partners::PartnerRepo;

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

/// Accounts and study profiles.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Inserts a user and an empty profile. [`DbError::Conflict`] if the e-mail is taken.
    async fn create_user(&self, user: &NewUser) -> Result<User, DbError>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, DbError>;
    /// Login data for a normalized e-mail.
    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, DbError>;
    /// Login data for a user id (password change, account deletion).
    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, DbError>;
    /// Grants (`true`) or takes back the admin pages for the account with
    /// this normalized e-mail; false if there is no such account.
    async fn set_admin(&self, email: &str, admin: bool) -> Result<bool, DbError>;
    /// The e-mail addresses of the accounts with the admin pages.
    async fn admins(&self) -> Result<Vec<String>, DbError>;
    /// Replaces the password hash.
    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbError>;
    /// Deletes the account and everything that cascades from it. False if absent.
    async fn delete_user(&self, id: Uuid) -> Result<bool, DbError>;
    /// A user with their study profile.
    async fn profile(&self, id: Uuid) -> Result<Option<(User, Profile)>, DbError>;
    /// Applies a partial update atomically and returns the new state.
    async fn update_profile(
        &self,
        id: Uuid,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, Profile)>, DbError>;
}

/// Login sessions, for deployments without Redis.
#[async_trait]
pub trait AuthSessionRepo: Send + Sync {
    /// Stores a new session.
    async fn insert_session(&self, session: &AuthSession) -> Result<(), DbError>;
    /// Loads a session by its (hashed) id.
    async fn session(&self, id: &str) -> Result<Option<AuthSession>, DbError>;
    /// Records activity for the idle timeout.
    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), DbError>;
    /// Deletes one session of `user_id`; false if there was no such session.
    async fn delete_session(&self, user_id: Uuid, id: &str) -> Result<bool, DbError>;
    /// Every stored session of a user, newest first.
    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<AuthSession>, DbError>;
    /// Deletes all of a user's sessions except `keep`; returns how many went.
    async fn delete_sessions_for_user(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
    ) -> Result<u64, DbError>;
    /// Purges sessions past their absolute expiry or idle since `idle_before`.
    async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, DbError>;
}

/// Study sessions (rooms) and their members.
#[async_trait]
pub trait RoomRepo: Send + Sync {
    /// Creates a session with its owner as first member, unless the owner
    /// already runs `max_upcoming` scheduled sessions not over at the
    /// session's `created_at` (then `None`). Checked and inserted under a
    /// lock on the owner, so concurrent requests cannot pass the limit.
    async fn create_room(
        &self,
        session: &NewRoom,
        max_upcoming: i64,
    ) -> Result<Option<Room>, DbError>;
    /// One session.
    async fn room(&self, id: Uuid) -> Result<Option<Room>, DbError>;
    /// Scheduled sessions not yet over, soonest first.
    async fn upcoming_rooms(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Room>, DbError>;
    /// Sessions `user_id` belongs to (any state), latest start first.
    async fn rooms_of(&self, user_id: Uuid, limit: i64) -> Result<Vec<Room>, DbError>;
    /// Members of a session, earliest first.
    async fn members(&self, id: Uuid) -> Result<Vec<Member>, DbError>;
    /// Joins atomically: never beyond capacity, never a closed session.
    async fn join_room(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<JoinOutcome, DbError>;
    /// Leaves (owners cannot leave, they cancel); false if not a member.
    async fn leave_room(&self, id: Uuid, user_id: Uuid) -> Result<bool, DbError>;
    /// Cancels a scheduled session of `owner_id`; false otherwise.
    async fn cancel_room(
        &self,
        id: Uuid,
        owner_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError>;
}

/// The achievement catalog and who earned what.
#[async_trait]
pub trait AchievementRepo: Send + Sync {
    /// The whole catalog.
    async fn achievements(&self) -> Result<Vec<Achievement>, DbError>;
    /// `(achievement id, earned at)` for a user.
    async fn earned_achievements(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DbError>;
    /// Awards once; false if already earned.
    async fn award(
        &self,
        user_id: Uuid,
        achievement_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DbError>;
}

/// Chat messages of study sessions.
#[async_trait]
pub trait ChatRepo: Send + Sync {
    /// Stores a message; returns it with the author's name.
    async fn insert_message(
        &self,
        id: Uuid,
        session_id: Uuid,
        user_id: Uuid,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<ChatMessage, DbError>;
    /// Up to `limit` messages older than `before` (newest first).
    async fn messages(
        &self,
        session_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ChatMessage>, DbError>;
}

/// Public app configuration.
#[async_trait]
pub trait ConfigRepo: Send + Sync {
    /// The JSON value stored under `key`.
    async fn config_value(&self, key: &str) -> Result<Option<serde_json::Value>, DbError>;
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
