//! Reads from PostgreSQL replicas with read-your-writes.
//!
//! Call sites say what they need: `app.db` for writes, transactions and reads
//! that must see the newest data (read-prefer-primary); [`App::read`] for a
//! user's reads, which go to a replica that has replayed that user's last
//! write (recorded by [`track_writes`] after each of their writes); and
//! [`App::read_for_cache`] for results cached for everyone, which only come
//! from a replica that has replayed the last write to those cache keys
//! (recorded by [`App::changed`] before each invalidation), so a lagging
//! replica never puts stale data into the shared cache while other users'
//! reads keep going to it.
//!
//! The positions live in Redis in the distributed mode (so any instance
//! honours a write made through another) and in process otherwise, for
//! `max lag + 5 s`: a usable replica is never further behind than the
//! maximum lag, so an older write is on every usable replica.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use redis::aio::ConnectionManager;
use tandem_db::{
    Database, DbError,
    replicas::{Fallback, Lsn, ReplicaSet, Target},
};
use uuid::Uuid;

use crate::{App, AppState};

/// Where writes ended: per user (`writer:{id}`) and per cache key or tag
/// (`cache:{key}`).
pub struct WriteMarks {
    redis: Option<(ConnectionManager, String)>,
    local: Mutex<HashMap<String, (Lsn, Instant)>>,
    ttl: Duration,
}

/// Raises a stored position, never lowers it, and renews its expiry.
static RAISE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RAISE_LUA));

const RAISE_LUA: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end";

impl WriteMarks {
    /// Marks kept for `ttl`, in Redis when given (`redis`, key prefix).
    pub fn new(redis: Option<(ConnectionManager, String)>, ttl: Duration) -> Self {
        Self {
            redis,
            local: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Records `lsn` under each of `marks`.
    pub async fn mark(&self, marks: &[String], lsn: Lsn) {
        if let Some((conn, prefix)) = &self.redis {
            let mut conn = conn.clone();
            for mark in marks {
                let stored: Result<(), _> = RAISE
                    .key(format!("{prefix}rw:{mark}"))
                    .arg(lsn)
                    .arg(self.ttl.as_secs().max(1))
                    .invoke_async(&mut conn)
                    .await;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "could not record a write position in Redis");
                }
            }
            return;
        }
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.len() > 100_000 {
            local.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        }
        for mark in marks {
            let entry = local.entry(mark.clone()).or_insert((0, now));
            *entry = (entry.0.max(lsn), now);
        }
    }

    /// The newest position recorded under any of `marks`; `None` when none
    /// is (or all expired). Redis unreachable: `Lsn::MAX`, i.e. the primary,
    /// never a possibly stale replica.
    pub async fn get(&self, marks: &[String]) -> Option<Lsn> {
        if marks.is_empty() {
            return None;
        }
        if let Some((conn, prefix)) = &self.redis {
            let mut conn = conn.clone();
            let keys: Vec<String> = marks.iter().map(|m| format!("{prefix}rw:{m}")).collect();
            let read: Result<Vec<Option<u64>>, _> =
                redis::cmd("MGET").arg(keys).query_async(&mut conn).await;
            return match read {
                Ok(values) => values.into_iter().flatten().max(),
                Err(_) => Some(Lsn::MAX),
            };
        }
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        marks
            .iter()
            .filter_map(|m| local.get(m))
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(lsn, _)| *lsn)
            .max()
    }
}

fn writer_mark(user: Uuid) -> String {
    format!("writer:{user}")
}

fn cache_mark(key: &str) -> String {
    format!("cache:{key}")
}

impl App {
    /// A read for `reader`: a replica that has their last write, else the
    /// primary. Without replicas, the database. A replica that fails
    /// mid-read is taken out and the read is repeated on the primary, so a
    /// dying replica costs latency, not errors.
    pub async fn read<T, F, Fut>(&self, reader: Uuid, load: F) -> Result<T, DbError>
    where
        F: Fn(Arc<dyn Database>) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let Some((set, marks)) = &self.replicas else {
            return load(self.db.clone()).await;
        };
        let min = marks.get(&[writer_mark(reader)]).await;
        read_routed(set, min, load).await
    }

    /// A read whose result is cached for everyone under `keys` (the key and
    /// its tags): only from a replica that has the last write to any of them.
    pub async fn read_for_cache<T, F, Fut>(&self, keys: &[&str], load: F) -> Result<T, DbError>
    where
        F: Fn(Arc<dyn Database>) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let Some((set, marks)) = &self.replicas else {
            return load(self.db.clone()).await;
        };
        let keys: Vec<String> = keys.iter().map(|k| cache_mark(k)).collect();
        let min = marks.get(&keys).await;
        read_routed(set, min, load).await
    }

    /// Before invalidating cache `keys` after a write: fills of those keys
    /// wait for a replica that has the write.
    pub async fn changed(&self, keys: &[&str]) {
        let marks: Vec<String> = keys.iter().map(|k| cache_mark(k)).collect();
        self.mark_position(&marks).await;
    }

    /// After `writer`'s write committed: their reads wait for a replica
    /// that has it.
    pub async fn wrote(&self, writer: Uuid) {
        self.mark_position(&[writer_mark(writer)]).await;
    }

    async fn mark_position(&self, marks: &[String]) {
        let Some((set, store)) = &self.replicas else {
            return;
        };
        let lsn = match set.write_position().await {
            Ok(lsn) => lsn,
            Err(e) => {
                // Without a position, keep these reads on the primary.
                tracing::warn!(error = %e, "could not read the primary's WAL position");
                Lsn::MAX
            }
        };
        store.mark(marks, lsn).await;
    }
}

async fn read_routed<T, F, Fut>(set: &ReplicaSet, min: Option<Lsn>, load: F) -> Result<T, DbError>
where
    F: Fn(Arc<dyn Database>) -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let routed = set.route(min).await;
    if let Some(reason) = routed.fallback {
        let reason = match reason {
            Fallback::Behind => "behind",
            Fallback::Unhealthy => "unhealthy",
        };
        metrics::counter!("tandem_db_read_fallbacks_total", "reason" => reason).increment(1);
    }
    match routed.target {
        Target::Primary => {
            metrics::counter!("tandem_db_reads_total", "target" => "primary").increment(1);
            load(routed.db).await
        }
        Target::Replica(index) => match load(routed.db).await {
            Ok(value) => {
                metrics::counter!("tandem_db_reads_total", "target" => "replica").increment(1);
                Ok(value)
            }
            Err(e @ DbError::Sqlx(_)) => {
                // A recovery conflict cancels one statement on a healthy
                // replica; any other failure takes the replica out until
                // the health check sees it well again.
                let reason = if e.is_recovery_conflict() {
                    "conflict"
                } else {
                    tracing::warn!(error = %e, "replica read failed; repeating it on the primary");
                    set.mark_failed(index);
                    "error"
                };
                metrics::counter!("tandem_db_read_fallbacks_total", "reason" => reason)
                    .increment(1);
                metrics::counter!("tandem_db_reads_total", "target" => "primary").increment(1);
                load(set.primary()).await
            }
            Err(e) => Err(e),
        },
    }
}

/// Filled by [`crate::extract::Authenticated`] with the caller, so
/// [`track_writes`] knows whose write a request was.
#[derive(Clone, Default)]
pub struct Writer(Arc<OnceLock<Uuid>>);

impl Writer {
    /// Records the authenticated caller.
    pub fn set(&self, user: Uuid) {
        let _ = self.0.set(user);
    }
}

/// After every state-changing request by a signed-in user (with replicas
/// configured), records the primary's WAL position as that user's.
pub async fn track_writes(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if app.replicas.is_none() || request.method().is_safe() {
        return next.run(request).await;
    }
    let writer = Writer::default();
    request.extensions_mut().insert(writer.clone());
    let response = next.run(request).await;
    if let Some(user) = writer.0.get() {
        app.wrote(*user).await;
    }
    response
}
