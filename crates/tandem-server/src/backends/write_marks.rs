//! Write marks in Redis, shared by every instance.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tandem_db::replicas::Lsn;

use crate::write_marks::WriteMarks;

/// Raises a stored position, never lowers it, and renews its expiry.
static RAISE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end",
    )
});

/// Marks under `{prefix}rw:{mark}`, expiring after the TTL.
pub struct RedisWriteMarks {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl RedisWriteMarks {
    pub fn new(conn: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            ttl,
        }
    }

    fn key(&self, mark: &str) -> String {
        format!("{}rw:{mark}", self.prefix)
    }
}

#[async_trait]
impl WriteMarks for RedisWriteMarks {
    async fn mark(&self, marks: &[String], lsn: Lsn) {
        let mut conn = self.conn.clone();
        for mark in marks {
            let stored: redis::RedisResult<()> = RAISE
                .key(self.key(mark))
                .arg(lsn)
                .arg(self.ttl.as_secs().max(1))
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "could not record a write position in Redis");
            }
        }
    }

    async fn get(&self, marks: &[String]) -> Option<Lsn> {
        if marks.is_empty() {
            return None;
        }
        let keys: Vec<String> = marks.iter().map(|m| self.key(m)).collect();
        let read: redis::RedisResult<Vec<Option<u64>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn.clone())
            .await;
        match read {
            Ok(values) => values.into_iter().flatten().max(),
            Err(_) => Some(Lsn::MAX),
        }
    }
}
