//! Read replicas (PostgreSQL streaming hot standbys) and the routing of
//! reads to them.
//!
//! The primary takes every write and every transaction. A read goes to a
//! replica that is *usable* (reachable, still in recovery, lag within the
//! policy, as the background health check last saw it) and, when the caller
//! names a WAL position its reader must see (the position after that user's
//! last write), that has *replayed* at least that far: GitLab's approach to
//! read-your-writes. Otherwise it goes to the primary. Replica connections
//! are read-only, so a write misrouted to one fails loudly.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Executor, PgPool, postgres::PgPoolOptions};

use crate::{ConnectOptions, Database, DbError, postgres::PostgresDatabase};

/// A WAL position (`pg_lsn`) as a number: `X/Y` is `X << 32 | Y`.
pub type Lsn = u64;

/// Parses PostgreSQL's `X/Y` text form of a `pg_lsn`.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some(high << 32 | low)
}

/// When a replica may serve reads.
#[derive(Debug, Clone)]
pub struct ReplicaPolicy {
    /// Taken out beyond this many bytes of WAL behind the primary.
    pub max_lag_bytes: u64,
    /// Taken out when its last replayed transaction is older than this
    /// while it is behind.
    pub max_lag: Duration,
    /// How often the health check runs.
    pub check_interval: Duration,
    /// Longest wait for one health query.
    pub check_timeout: Duration,
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        Self {
            max_lag_bytes: 16 << 20,
            max_lag: Duration::from_secs(30),
            check_interval: Duration::from_secs(1),
            check_timeout: Duration::from_secs(1),
        }
    }
}

/// What the health check last saw of one replica.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaHealth {
    /// Whether reads may go to it.
    pub usable: bool,
    /// Its replay position.
    pub replayed: Lsn,
    /// Bytes of WAL it is behind the primary.
    pub lag_bytes: u64,
    /// Seconds its last replayed transaction is behind, while behind.
    pub lag_seconds: f64,
    replayed_at: Option<Instant>,
}

struct Replica {
    name: String,
    db: Arc<dyn Database>,
    pool: PgPool,
    health: Mutex<ReplicaHealth>,
}

impl Replica {
    fn health(&self) -> ReplicaHealth {
        *self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut ReplicaHealth)) {
        f(&mut self.health.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Where a read was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The primary.
    Primary,
    /// The replica with this index.
    Replica(usize),
}

/// Why a read went to the primary although replicas are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No replica is usable (down, promoted or lagging).
    Unhealthy,
    /// Usable replicas have not replayed the reader's last write yet.
    Behind,
}

/// A routed read: the handle to query and where it points.
pub struct Routed {
    /// The database to read from.
    pub db: Arc<dyn Database>,
    /// Which one it is.
    pub target: Target,
    /// Set when the read fell back to the primary.
    pub fallback: Option<Fallback>,
}

/// A primary and its read replicas.
pub struct ReplicaSet {
    primary: Arc<dyn Database>,
    primary_pool: PgPool,
    replicas: Vec<Replica>,
    policy: ReplicaPolicy,
    next: AtomicUsize,
}

impl std::fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaSet")
            .field(
                "replicas",
                &self.replicas.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// `host:port` of a URL, for metrics and logs (never the password).
fn display_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.split(['/', '?']).next().unwrap_or(host).to_owned()
}

impl ReplicaSet {
    /// Connects lazily to each replica in `replica_urls` (a replica that is
    /// down at start-up is simply not usable until it answers), with
    /// read-only sessions; `primary` is the already connected primary.
    pub async fn connect(
        primary: Arc<dyn Database>,
        primary_url: &str,
        replica_urls: &[String],
        options: &ConnectOptions,
        policy: ReplicaPolicy,
    ) -> Result<Self, DbError> {
        let primary_pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(policy.check_timeout)
            .connect(primary_url)
            .await?;
        let mut replicas = Vec::new();
        for url in replica_urls {
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(policy.check_timeout.max(Duration::from_millis(500)))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("SET default_transaction_read_only = on")
                            .await?;
                        Ok(())
                    })
                })
                .connect_lazy(url)?;
            replicas.push(Replica {
                name: display_name(url),
                db: Arc::new(PostgresDatabase::from_pool(pool.clone())),
                pool,
                health: Mutex::new(ReplicaHealth {
                    usable: false,
                    replayed: 0,
                    lag_bytes: 0,
                    lag_seconds: 0.0,
                    replayed_at: None,
                }),
            });
        }
        let set = Self {
            primary,
            primary_pool,
            replicas,
            policy,
            next: AtomicUsize::new(0),
        };
        set.check().await;
        Ok(set)
    }

    /// The primary, for writes, transactions and reads that must be fresh.
    pub fn primary(&self) -> Arc<dyn Database> {
        self.primary.clone()
    }

    /// The database handle of replica `index` (tests use it to show that a
    /// write there fails).
    pub fn replica(&self, index: usize) -> Option<Arc<dyn Database>> {
        self.replicas.get(index).map(|r| r.db.clone())
    }

    /// Names and last health of every replica.
    pub fn health(&self) -> Vec<(String, ReplicaHealth)> {
        self.replicas
            .iter()
            .map(|r| (r.name.clone(), r.health()))
            .collect()
    }

    /// The primary's current WAL insert position: once a write has
    /// committed, a replica that has replayed this far shows it.
    pub async fn write_position(&self) -> Result<Lsn, DbError> {
        let (text,): (String,) = sqlx::query_as("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&self.primary_pool)
            .await?;
        parse_lsn(&text)
            .ok_or_else(|| DbError::from(sqlx::Error::Protocol(format!("bad LSN {text}"))))
    }

    /// Picks where to read: a usable replica (round robin) that has replayed
    /// `min` if given, else the primary.
    pub async fn route(&self, min: Option<Lsn>) -> Routed {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut any_usable = false;
        for i in 0..n {
            let index = (start + i) % n;
            let replica = &self.replicas[index];
            let health = replica.health();
            if !health.usable {
                continue;
            }
            any_usable = true;
            if min.is_none_or(|min| health.replayed >= min) || self.replayed_now(replica, min).await
            {
                return Routed {
                    db: replica.db.clone(),
                    target: Target::Replica(index),
                    fallback: None,
                };
            }
        }
        Routed {
            db: self.primary.clone(),
            target: Target::Primary,
            fallback: (n > 0).then_some(if any_usable {
                Fallback::Behind
            } else {
                Fallback::Unhealthy
            }),
        }
    }

    /// Asks `replica` how far it has replayed, unless it was asked within
    /// the last few milliseconds; whether it reached `min`.
    async fn replayed_now(&self, replica: &Replica, min: Option<Lsn>) -> bool {
        let Some(min) = min else { return true };
        let fresh = replica
            .health()
            .replayed_at
            .is_some_and(|at| at.elapsed() < Duration::from_millis(20));
        if fresh {
            return false;
        }
        let query = sqlx::query_as::<_, (Option<String>,)>("SELECT pg_last_wal_replay_lsn()::text")
            .fetch_one(&replica.pool);
        let replayed = match tokio::time::timeout(self.policy.check_timeout, query).await {
            Ok(Ok((Some(text),))) => parse_lsn(&text),
            _ => None,
        };
        let Some(replayed) = replayed else {
            return false;
        };
        replica.update(|h| {
            h.replayed = h.replayed.max(replayed);
            h.replayed_at = Some(Instant::now());
        });
        replayed >= min
    }

    /// Takes replica `index` out after a failed read; the health check puts
    /// it back once it answers again.
    pub fn mark_failed(&self, index: usize) {
        if let Some(replica) = self.replicas.get(index) {
            replica.update(|h| h.usable = false);
            tracing::warn!(replica = %replica.name, "replica read failed; reading from the primary until it is healthy");
        }
    }

    /// One health round: the primary's position, then each replica's
    /// recovery state, replay position and lag.
    pub async fn check(&self) {
        let timeout = self.policy.check_timeout;
        let primary = tokio::time::timeout(timeout, self.write_position()).await;
        let primary = match primary {
            Ok(Ok(lsn)) => Some(lsn),
            _ => None,
        };
        for replica in &self.replicas {
            let seen = tokio::time::timeout(timeout, Self::probe(&replica.pool, timeout)).await;
            let was_usable = replica.health().usable;
            let health = match seen {
                Ok(Ok((in_recovery, replayed, since))) => {
                    let replayed = replayed.as_deref().and_then(parse_lsn).unwrap_or(0);
                    let lag_bytes = primary.map_or(0, |p| p.saturating_sub(replayed));
                    let lag_seconds = if lag_bytes == 0 {
                        0.0
                    } else {
                        since.unwrap_or(0.0).max(0.0)
                    };
                    let usable = in_recovery
                        && lag_bytes <= self.policy.max_lag_bytes
                        && lag_seconds <= self.policy.max_lag.as_secs_f64();
                    if !in_recovery {
                        tracing::warn!(replica = %replica.name, "replica is not in recovery (promoted?); not reading from it");
                    }
                    ReplicaHealth {
                        usable,
                        replayed,
                        lag_bytes,
                        lag_seconds,
                        replayed_at: Some(Instant::now()),
                    }
                }
                _ => ReplicaHealth {
                    usable: false,
                    ..replica.health()
                },
            };
            if health.usable != was_usable {
                tracing::info!(replica = %replica.name, usable = health.usable, lag_bytes = health.lag_bytes, lag_seconds = health.lag_seconds, "replica health changed");
            }
            let name = replica.name.clone();
            metrics::gauge!("tandem_db_replica_usable", "replica" => name.clone())
                .set(if health.usable { 1.0 } else { 0.0 });
            metrics::gauge!("tandem_db_replica_lag_bytes", "replica" => name.clone())
                .set(health.lag_bytes as f64);
            metrics::gauge!("tandem_db_replica_lag_seconds", "replica" => name)
                .set(health.lag_seconds);
            replica.update(|h| {
                let replayed = h.replayed.max(health.replayed);
                *h = ReplicaHealth { replayed, ..health };
            });
        }
    }

    /// Asks one replica for its recovery state, replay position and the age
    /// of its last replayed transaction, under a statement timeout (the
    /// caller's timer also covers connecting).
    async fn probe(
        pool: &PgPool,
        timeout: Duration,
    ) -> Result<(bool, Option<String>, Option<f64>), sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!(
            "SET LOCAL statement_timeout = {}",
            timeout.as_millis().max(1)
        ))
        .execute(&mut *tx)
        .await?;
        let seen = sqlx::query_as(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
             EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(seen)
    }

    /// Runs [`Self::check`] every `check_interval`, forever (abort the task
    /// to stop it).
    pub async fn run_health_checks(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.policy.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.check().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_as_postgres_prints_them() {
        assert_eq!(parse_lsn("0/3015E88"), Some(0x3015E88));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/2/3"), None);
        assert_eq!(parse_lsn("100000000/0"), None);
    }

    #[test]
    fn names_never_carry_passwords() {
        assert_eq!(
            display_name("postgres://app:secret@db-replica-1:5432/tandem?sslmode=require"),
            "db-replica-1:5432"
        );
        assert_eq!(
            display_name("postgres://127.0.0.1:55433/postgres"),
            "127.0.0.1:55433"
        );
    }
}
