//! Rate limits (login attempts, sign-ups, API calls).
//!
//! [`RateLimiter`] counts hits per key in fixed windows. [`MemoryLimiter`]
//! counts in this process (embedded mode, and per-instance API limits);
//! [`RedisLimiter`] counts in Redis so a limit holds across every instance.

mod memory;
mod redis_limiter;

use std::time::Duration;

use async_trait::async_trait;

pub use memory::MemoryLimiter;
pub use redis_limiter::RedisLimiter;

/// A limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Hits allowed per window.
    pub max: u32,
    /// Window length.
    pub window: Duration,
}

/// Outcome of counting one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Under the limit.
    Allowed,
    /// Over the limit; try again after this long.
    Limited {
        /// Time until the window resets.
        retry_after: Duration,
    },
}

/// The limiter's backing store could not be reached or failed (only the
/// Redis limiter can fail); the engine's error is the source.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimitError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl From<redis::RedisError> for LimitError {
    fn from(err: redis::RedisError) -> Self {
        Self(Box::new(err))
    }
}

/// Counts hits against keys.
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Counts one hit on `key` and says whether it is within `limit`.
    async fn hit(&self, key: &str, limit: Limit) -> Result<Decision, LimitError>;
    /// Forgets the count for `key` (e.g. failed logins after a success).
    async fn reset(&self, key: &str) -> Result<(), LimitError>;
}

fn decide(count: u64, limit: Limit, remaining: Duration) -> Decision {
    if count <= u64::from(limit.max) {
        Decision::Allowed
    } else {
        Decision::Limited {
            retry_after: remaining.max(Duration::from_secs(1)),
        }
    }
}
