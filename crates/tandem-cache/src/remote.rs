//! The Redis tier (L2), shared by every instance.
//!
//! Tags are version counters, not sets of keys. An entry records the
//! versions of its tags as they were *before* its value was loaded; a read
//! only returns it while every version still matches, and a write is refused
//! if a version moved during the load. So:
//! - invalidating a tag is one atomic `INCR` (no SMEMBERS/DEL race);
//! - a value loaded concurrently with an invalidation is never served stale;
//! - a tag costs one small key that expires after the last entry using it
//!   (no sets growing forever).
//!
//! Tag keys are computed inside the scripts, so this assumes one Redis (or
//! a cluster with all of Tandem's cache keys in one hash slot).

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use redis::{Script, aio::ConnectionManager};

/// An entry as Redis returns it.
pub(crate) struct RemoteEntry {
    pub value: Bytes,
    /// Tags the entry was stored with (empty when writing: passed separately).
    pub tags: Vec<String>,
    /// Logical expiry, unix ms.
    pub expires_at_ms: u64,
    /// Load time, ms.
    pub delta_ms: u64,
}

/// Returns the entry if all its tag versions are current; deletes it if not.
/// KEYS: entry. ARGV: tag-key prefix.
const GET: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'v', 't', 'n', 'e', 'd')
if not e[1] then return false end
if e[2] ~= '' then
  local vers = {}
  for v in string.gmatch(e[3], '[^,]+') do vers[#vers + 1] = v end
  local i = 1
  for tag in string.gmatch(e[2], '[^\n]+') do
    if (redis.call('GET', ARGV[1] .. tag) or '0') ~= vers[i] then
      redis.call('DEL', KEYS[1])
      return false
    end
    i = i + 1
  end
end
return {e[1], e[4], e[5], e[2]}
"#;

/// Stores the entry only if its tags still have the versions read before
/// the load; keeps each tag key alive at least as long as the entry.
/// KEYS: entry. ARGV: prefix, value, tags, versions, expires ms, delta ms, ttl ms.
const SET: &str = r#"
local vers = {}
for v in string.gmatch(ARGV[4], '[^,]+') do vers[#vers + 1] = v end
local i = 1
for tag in string.gmatch(ARGV[3], '[^\n]+') do
  if (redis.call('GET', ARGV[1] .. tag) or '0') ~= vers[i] then return 0 end
  i = i + 1
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 't', ARGV[3], 'n', ARGV[4], 'e', ARGV[5], 'd', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local ttl = tonumber(ARGV[7])
for tag in string.gmatch(ARGV[3], '[^\n]+') do
  local k = ARGV[1] .. tag
  redis.call('SET', k, '0', 'NX')
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return 1
"#;

/// Moves a tag to a new version and tells every instance.
/// KEYS: tag key. ARGV: ttl ms for a new key, channel, tag.
const INVALIDATE: &str = r#"
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"#;

/// A tag every entry carries: bumping it invalidates the whole deployment's L2.
pub(crate) const EPOCH_TAG: &str = "*";

/// After a Redis error, the tier is skipped for this long (reads go to the
/// database) instead of paying a timeout on every request.
const BACKOFF: Duration = Duration::from_secs(1);

/// The L2 tier.
pub(crate) struct RemoteTier {
    conn: ConnectionManager,
    entry_prefix: String,
    tag_prefix: String,
    /// Pub/sub channel carrying invalidated tags.
    pub channel: String,
    skip_until_ms: AtomicU64,
    /// Whether the last Redis call succeeded.
    healthy: AtomicBool,
    /// An invalidation failed to reach Redis: entries there may be stale, so
    /// the deployment-wide epoch tag is bumped before the tier is used again.
    epoch_dirty: AtomicBool,
    get: Script,
    set: Script,
    invalidate: Script,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RemoteTier {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            entry_prefix: format!("{prefix}cache:"),
            tag_prefix: format!("{prefix}cache-tag:"),
            channel: format!("{prefix}cache-invalidations"),
            skip_until_ms: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            epoch_dirty: AtomicBool::new(false),
            get: Script::new(GET),
            set: Script::new(SET),
            invalidate: Script::new(INVALIDATE),
        }
    }

    /// Whether the last Redis call failed (reads are going to the database).
    pub fn degraded(&self) -> bool {
        !self.healthy.load(Ordering::Relaxed)
    }

    fn backing_off(&self) -> bool {
        now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Runs a Redis call unless degraded; an error starts the back-off.
    async fn guarded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if self.backing_off() {
            return None;
        }
        if self.epoch_dirty.load(Ordering::Acquire) {
            if !self
                .invalidate_tag(EPOCH_TAG, Duration::from_secs(86_400))
                .await
            {
                self.back_off();
                return None;
            }
            self.epoch_dirty.store(false, Ordering::Release);
            tracing::info!(
                "cache: Redis is back; every L2 entry from before the outage was invalidated"
            );
        }
        match call.await {
            Ok(v) => {
                self.mark_healthy();
                Some(v)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cache: Redis unavailable; reading through to the database");
                self.back_off();
                None
            }
        }
    }

    fn mark_healthy(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            metrics::gauge!("tandem_cache_degraded").set(0.0);
        }
    }

    fn back_off(&self) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            metrics::gauge!("tandem_cache_degraded").set(1.0);
        }
        self.skip_until_ms
            .store(now_ms() + ms(BACKOFF), Ordering::Relaxed);
        metrics::counter!("tandem_cache_errors_total").increment(1);
    }

    /// Current versions of `tags` (missing tags are version 0). `None` if Redis failed.
    pub async fn versions(&self, tags: &[String]) -> Option<Vec<String>> {
        let keys: Vec<String> = tags
            .iter()
            .map(|t| format!("{}{t}", self.tag_prefix))
            .collect();
        let mut conn = self.conn.clone();
        let found: Vec<Option<String>> = self
            .guarded(redis::cmd("MGET").arg(&keys).query_async(&mut conn))
            .await?;
        Some(
            found
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect(),
        )
    }

    pub async fn get(&self, key: &str) -> Option<RemoteEntry> {
        let mut conn = self.conn.clone();
        let mut call = self.get.key(format!("{}{key}", self.entry_prefix));
        call.arg(&self.tag_prefix);
        let found: Option<(Vec<u8>, u64, u64, String)> =
            self.guarded(call.invoke_async(&mut conn)).await?;
        found.map(|(value, expires_at_ms, delta_ms, tags)| RemoteEntry {
            value: Bytes::from(value),
            tags: tags
                .split('\n')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_at_ms,
            delta_ms,
        })
    }

    /// Stores an entry loaded under `versions`; false if a tag moved meanwhile
    /// (or Redis failed).
    pub async fn set(
        &self,
        key: &str,
        entry: &RemoteEntry,
        tags: &[String],
        versions: &[String],
        ttl: Duration,
    ) -> bool {
        let mut conn = self.conn.clone();
        let mut call = self.set.key(format!("{}{key}", self.entry_prefix));
        call.arg(&self.tag_prefix)
            .arg(entry.value.as_ref())
            .arg(tags.join("\n"))
            .arg(versions.join(","))
            .arg(entry.expires_at_ms)
            .arg(entry.delta_ms)
            .arg(ms(ttl));
        self.guarded(call.invoke_async::<i64>(&mut conn))
            .await
            .is_some_and(|stored| stored == 1)
    }

    /// Bumps `tag`'s version and publishes it. False if Redis failed: the
    /// caller's L1 is already invalidated, other instances rely on their L1 TTL.
    pub async fn invalidate_tag(&self, tag: &str, max_ttl: Duration) -> bool {
        let mut conn = self.conn.clone();
        let mut call = self.invalidate.key(format!("{}{tag}", self.tag_prefix));
        call.arg(ms(max_ttl)).arg(&self.channel).arg(tag);
        // Invalidations must not be skipped by the back-off: try even when degraded.
        match call.invoke_async::<i64>(&mut conn).await {
            Ok(_) => {
                self.mark_healthy();
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, tag, "cache: invalidation did not reach Redis");
                self.epoch_dirty.store(true, Ordering::Release);
                self.back_off();
                false
            }
        }
    }
}
