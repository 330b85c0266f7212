use std::time::Duration;

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use crate::{Decision, Limit, LimitError, RateLimiter, decide};

/// Counts in Redis, so a limit is shared by every instance. One atomic script
/// per hit: increment, start the window on the first hit, report time left.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
}

const HIT: &str = r#"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"#;

impl RedisLimiter {
    /// A limiter storing counters under `{prefix}ratelimit:`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}ratelimit:"),
        }
    }
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(&self, key: &str, limit: Limit) -> Result<Decision, LimitError> {
        let window_ms = u64::try_from(limit.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (count, ttl_ms): (u64, i64) = Script::new(HIT)
            .key(format!("{}{key}", self.prefix))
            .arg(window_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let remaining = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        Ok(decide(count, limit, remaining))
    }

    async fn reset(&self, key: &str) -> Result<(), LimitError> {
        redis::cmd("DEL")
            .arg(format!("{}{key}", self.prefix))
            .query_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
