//! Reads from PostgreSQL replicas with read-your-writes.
//!
//! Call sites say what they need: `data.db` for writes, transactions and reads
//! that must see the newest data (read-prefer-primary); [`Data::read`] for a
//! user's reads, which go to a replica that has replayed that user's last
//! write (recorded by [`track_writes`] after each of their writes); and
//! [`Data::read_for_cache`] for results cached for everyone, which only come
//! from a replica that has replayed the last write to those cache keys
//! (recorded by [`Data::changed`] before each invalidation), so a lagging
//! replica never puts stale data into the shared cache while other users'
//! reads keep going to it.
//!
//! The positions are [`WriteMarks`]: shared by the instances when
//! distributed, in process otherwise.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tandem_db::{
    Database, DbError,
    replicas::{Fallback, Lsn, ReplicaSet, Target},
};
use uuid::Uuid;

use crate::{state::Data, write_marks::WriteMarks};

/// Read replicas and the write positions their reads wait for.
pub struct Replicas {
    /// The primary and its replicas.
    pub set: Arc<ReplicaSet>,
    /// Where users' and cache keys' last writes ended.
    pub marks: Arc<dyn WriteMarks>,
}

fn writer_mark(user: Uuid) -> String {
    format!("writer:{user}")
}

fn cache_mark(key: &str) -> String {
    format!("cache:{key}")
}

impl Data {
    /// A read for `reader`: a replica that has their last write, else the
    /// primary. Without replicas, the database. A replica that fails
    /// mid-read is taken out and the read is repeated on the primary, so a
    /// dying replica costs latency, not errors.
    pub async fn read<T, F, Fut>(&self, reader: Uuid, load: F) -> Result<T, DbError>
    where
        F: Fn(Arc<dyn Database>) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let Some(Replicas { set, marks }) = self.replicas.as_deref() else {
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
        let Some(Replicas { set, marks }) = self.replicas.as_deref() else {
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

    async fn mark_position(&self, names: &[String]) {
        let Some(Replicas { set, marks }) = self.replicas.as_deref() else {
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
        marks.mark(names, lsn).await;
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
            Err(e @ DbError::Engine(_)) => {
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
pub async fn track_writes(State(data): State<Data>, mut request: Request, next: Next) -> Response {
    if data.replicas.is_none() || request.method().is_safe() {
        return next.run(request).await;
    }
    let writer = Writer::default();
    request.extensions_mut().insert(writer.clone());
    let response = next.run(request).await;
    if let Some(user) = writer.0.get() {
        data.wrote(*user).await;
    }
    response
}
