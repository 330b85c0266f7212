//! Login sessions (roadmap Tier 2 §1).
//!
//! [`SessionStore`] is where sessions live: [`DbSessionStore`] in the
//! database for a single machine, [`RedisSessionStore`] in Redis so every
//! instance sees every login. [`Sessions`] adds the rules on top, the same
//! for both stores: CSPRNG tokens, hashed ids, idle and absolute timeouts.

mod db_store;
mod redis_store;
mod service;
mod token;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tandem_db::AuthSession;
use uuid::Uuid;

pub use db_store::DbSessionStore;
pub use redis_store::RedisSessionStore;
pub use service::{SessionPolicy, Sessions};
pub use token::SessionToken;

/// Errors from a session store. Callers ask [`StoreError::is_unavailable`];
/// no engine's error type leaves this crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] tandem_db::DbError),
    /// The session engine (Redis) could not be reached or failed.
    #[error("session store: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be decoded.
    #[error("corrupt session record: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the store is unreachable or saturated (answer 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(db) => db.is_unavailable(),
            Self::Unavailable(_) => true,
            Self::Corrupt(_) => false,
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

/// Storage of login sessions. Implementations only store; expiry rules live
/// in [`Sessions`] so both stores behave identically.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session that must be readable until `idle_deadline`
    /// (the earlier of idle and absolute expiry).
    async fn create(
        &self,
        session: &AuthSession,
        idle_deadline: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Loads a session by id.
    async fn get(&self, id: &str) -> Result<Option<AuthSession>, StoreError>;
    /// Records activity; never resurrects a session deleted meanwhile.
    async fn touch(
        &self,
        session: &AuthSession,
        idle_deadline: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Deletes one session of `user_id`; false if it was not there.
    async fn delete(&self, user_id: Uuid, id: &str) -> Result<bool, StoreError>;
    /// Every stored session of a user (possibly including expired ones).
    async fn list(&self, user_id: Uuid) -> Result<Vec<AuthSession>, StoreError>;
    /// Deletes all sessions of a user except `keep`; returns how many went.
    async fn delete_all(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64, StoreError>;
    /// Removes expired sessions the store does not expire by itself.
    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Readiness probe.
    async fn ping(&self) -> Result<(), StoreError>;
    /// `"database"` or `"redis"`.
    fn backend(&self) -> &'static str;
}
