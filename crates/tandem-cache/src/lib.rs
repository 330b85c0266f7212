//! Query-result cache (roadmap Tier 2 §2), done the way the roadmap meant it.
//!
//! - Embedded: one in-process tier (moka).
//! - Distributed: the in-process tier as a short-lived L1 in front of Redis
//!   (L2). Invalidations reach every instance's L1 over Redis pub/sub; the
//!   short L1 TTL is the safety net if a message is lost.
//!
//! Tags are versioned (see `remote.rs`), so tag invalidation is atomic, a
//! value loaded while its tag is invalidated is never served, and tag
//! bookkeeping expires with the entries. [`Cache::get_or_load`] coalesces
//! concurrent misses of a key into one load per instance and refreshes hot
//! keys early (XFetch), so an expiry never stampedes the database. If Redis
//! fails, reads fall through to the loader and the service keeps answering.

mod flight;
mod local;
mod remote;
mod subscriber;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    flight::{Flights, Role},
    local::{LocalTier, Stored},
    remote::{EPOCH_TAG, RemoteEntry, RemoteTier, now_ms},
};

/// Cache tuning.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Memory budget of the in-process tier, in bytes.
    pub l1_max_bytes: u64,
    /// Longest time an L1 copy lives in the distributed mode (bounds how
    /// long a lost invalidation message can leave an instance stale).
    pub l1_ttl: Duration,
    /// Values larger than this (encoded) are not cached.
    pub max_value_bytes: usize,
    /// Longest TTL any entry gets.
    pub max_ttl: Duration,
    /// XFetch aggressiveness (1.0 is the paper's default; 0 disables early refresh).
    pub early_refresh_beta: f64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            l1_max_bytes: 64 << 20,
            l1_ttl: Duration::from_secs(5),
            max_value_bytes: 256 << 10,
            max_ttl: Duration::from_secs(3600),
            early_refresh_beta: 1.0,
        }
    }
}

/// The cache. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Cache(Arc<Inner>);

struct Inner {
    local: Arc<LocalTier>,
    remote: Option<RemoteTier>,
    flights: Flights,
    config: CacheConfig,
    /// Stops the invalidation subscriber when the cache is dropped.
    _subscriber: Option<subscriber::Handle>,
}

impl Cache {
    /// The embedded cache: in-process only.
    pub fn embedded(config: CacheConfig) -> Self {
        Self(Arc::new(Inner {
            local: Arc::new(LocalTier::new(config.l1_max_bytes)),
            remote: None,
            flights: Flights::default(),
            config,
            _subscriber: None,
        }))
    }

    /// The distributed cache over Redis, keys under `prefix`. Waits (briefly)
    /// until this instance hears invalidations, so it never misses one it
    /// should have seen; if Redis is down it starts degraded and recovers.
    pub async fn distributed(
        client: redis::Client,
        conn: redis::aio::ConnectionManager,
        prefix: &str,
        config: CacheConfig,
    ) -> Self {
        let local = Arc::new(LocalTier::new(config.l1_max_bytes));
        let remote = RemoteTier::new(conn, prefix);
        let subscriber = subscriber::start(client, remote.channel.clone(), local.clone()).await;
        Self(Arc::new(Inner {
            local,
            remote: Some(remote),
            flights: Flights::default(),
            config,
            _subscriber: Some(subscriber),
        }))
    }

    /// `"memory"` or `"memory+redis"`.
    pub fn backend(&self) -> &'static str {
        if self.0.remote.is_some() {
            "memory+redis"
        } else {
            "memory"
        }
    }

    /// Whether Redis is currently being bypassed after an error.
    pub fn degraded(&self) -> bool {
        self.0.remote.as_ref().is_some_and(RemoteTier::degraded)
    }

    /// The cached value of `key`, if any.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let (bytes, _) = self.lookup(key).await?;
        decode(key, &bytes)
    }

    /// Caches `value` under `key` for `ttl`, tagged with `tags`.
    pub async fn set<T: Serialize>(&self, key: &str, value: &T, ttl: Duration, tags: &[&str]) {
        let tags = all_tags(key, tags);
        let ticket = self.0.local.ticket();
        let versions = self.remote_versions(&tags).await;
        if let Some(bytes) = self.encode(key, value) {
            self.store(key, bytes, ttl, &tags, versions, Duration::ZERO, ticket)
                .await;
        }
    }

    /// Drops `key` everywhere.
    pub async fn invalidate(&self, key: &str) {
        metrics::counter!("tandem_cache_invalidations_total", "family" => family(key), "kind" => "key")
            .increment(1);
        self.invalidate_everywhere(&self_tag(key)).await;
    }

    /// Drops every entry tagged `tag`, everywhere, atomically.
    pub async fn invalidate_tag(&self, tag: &str) {
        metrics::counter!("tandem_cache_invalidations_total", "family" => family(tag), "kind" => "tag")
            .increment(1);
        self.invalidate_everywhere(tag).await;
    }

    /// The cached value of `key`, or `loader`'s, cached for `ttl` under
    /// `tags`. Concurrent misses of one key share one load; a hot key is
    /// refreshed in the background shortly before it expires.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        tags: &[&str],
        loader: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Send + 'static,
    {
        let family = family(key);
        let ttl = ttl.min(self.0.config.max_ttl);
        let tags = all_tags(key, tags);
        let mut loader = Some(loader);
        if let Some((bytes, refresh)) = self.lookup(key).await
            && let Some(value) = decode(key, &bytes)
        {
            if refresh && let Some(loader) = loader.take() {
                self.refresh_in_background(key, ttl, tags, loader);
            }
            return Ok(value);
        }
        metrics::counter!("tandem_cache_requests_total", "family" => family, "result" => "miss")
            .increment(1);
        loop {
            match self.0.flights.join(key, || self.0.local.get(key)) {
                Role::Cached(stored) => {
                    if let Some(value) = decode(key, &stored.value) {
                        return Ok(value);
                    }
                    // Cached under another type: load this caller's own value.
                    let loader = loader.take().expect("the loader is only taken once");
                    return self
                        .load(key, ttl, &tags, loader)
                        .await
                        .map(|(value, _)| value);
                }
                Role::Follower(waiting) => {
                    if let Some(bytes) = waiting.result().await
                        && let Some(value) = decode(key, &bytes)
                    {
                        return Ok(value);
                    }
                    // The leader failed or was cancelled: try again, maybe leading.
                }
                Role::Leader(lead) => {
                    let loader = loader.take().expect("the loader is only taken once");
                    let outcome = self.load(key, ttl, &tags, loader).await;
                    lead.finish(outcome.as_ref().ok().and_then(|(_, b)| b.clone()));
                    return outcome.map(|(value, _)| value);
                }
            }
        }
    }

    /// L1, then L2. Returns the bytes and whether an early refresh is due.
    async fn lookup(&self, key: &str) -> Option<(Bytes, bool)> {
        let family = family(key);
        if let Some(stored) = self.0.local.get(key) {
            metrics::counter!("tandem_cache_requests_total", "family" => family, "result" => "l1_hit")
                .increment(1);
            let refresh = self.refresh_due(stored.expires_at, stored.delta);
            return Some((stored.value.clone(), refresh));
        }
        let remote = self.0.remote.as_ref()?;
        let ticket = self.0.local.ticket();
        let entry = remote.get(key).await?;
        metrics::counter!("tandem_cache_requests_total", "family" => family, "result" => "l2_hit")
            .increment(1);
        let left = Duration::from_millis(entry.expires_at_ms.saturating_sub(now_ms()));
        let expires_at = Instant::now() + left;
        let delta = Duration::from_millis(entry.delta_ms);
        let stored = Arc::new(Stored {
            value: entry.value.clone(),
            tags: entry.tags,
            expires_at,
            delta,
            l1_ttl: left.min(self.0.config.l1_ttl),
        });
        // The ticket predates the read: if a tag was invalidated since, L1 refuses it.
        self.0.local.insert(key, stored, ticket);
        let refresh = self.refresh_due(expires_at, delta);
        Some((entry.value, refresh))
    }

    /// XFetch: refresh early with a probability that grows as expiry nears,
    /// scaled by how long the value takes to load.
    fn refresh_due(&self, expires_at: Instant, delta: Duration) -> bool {
        let beta = self.0.config.early_refresh_beta;
        if beta <= 0.0 || delta.is_zero() {
            return Instant::now() >= expires_at;
        }
        let r: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
        let early = delta.as_secs_f64() * beta * -r.ln();
        Instant::now() + Duration::from_secs_f64(early.min(3600.0)) >= expires_at
    }

    fn refresh_in_background<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        tags: Vec<String>,
        loader: F,
    ) where
        T: Serialize + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Send + 'static,
    {
        let Some(lead) = self.0.flights.lead_if_idle(key) else {
            return; // someone is already loading it
        };
        metrics::counter!("tandem_cache_early_refreshes_total", "family" => family(key))
            .increment(1);
        let cache = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let outcome = cache.load(&key, ttl, &tags, loader).await;
            lead.finish(outcome.ok().and_then(|(_, bytes)| bytes));
        });
    }

    /// Runs the loader and stores its value (unless a tag moved meanwhile).
    async fn load<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        tags: &[String],
        loader: F,
    ) -> Result<(T, Option<Bytes>), E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let family = family(key);
        let ticket = self.0.local.ticket();
        let versions = self.remote_versions(tags).await;
        let started = Instant::now();
        let value = match loader().await {
            Ok(v) => v,
            Err(e) => {
                metrics::counter!("tandem_cache_loads_total", "family" => family, "outcome" => "error")
                    .increment(1);
                return Err(e);
            }
        };
        let delta = started.elapsed();
        metrics::counter!("tandem_cache_loads_total", "family" => family.clone(), "outcome" => "ok")
            .increment(1);
        metrics::histogram!("tandem_cache_load_seconds", "family" => family)
            .record(delta.as_secs_f64());
        let bytes = self.encode(key, &value);
        if let Some(bytes) = &bytes {
            self.store(key, bytes.clone(), ttl, tags, versions, delta, ticket)
                .await;
        }
        Ok((value, bytes))
    }

    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        key: &str,
        bytes: Bytes,
        ttl: Duration,
        tags: &[String],
        versions: Option<Vec<String>>,
        delta: Duration,
        ticket: local::Ticket,
    ) {
        let ttl = ttl.min(self.0.config.max_ttl);
        let l1_ttl = match &self.0.remote {
            Some(remote) => {
                let Some(versions) = versions else {
                    return; // Redis is down: do not cache what we cannot invalidate everywhere
                };
                let entry = RemoteEntry {
                    value: bytes.clone(),
                    tags: Vec::new(),
                    expires_at_ms: now_ms() + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                    delta_ms: u64::try_from(delta.as_millis()).unwrap_or(u64::MAX),
                };
                if !remote.set(key, &entry, tags, &versions, ttl).await {
                    return;
                }
                ttl.min(self.0.config.l1_ttl)
            }
            None => ttl,
        };
        let stored = Arc::new(Stored {
            value: bytes,
            tags: tags.to_vec(),
            expires_at: Instant::now() + ttl,
            delta,
            l1_ttl,
        });
        self.0.local.insert(key, stored, ticket);
    }

    async fn remote_versions(&self, tags: &[String]) -> Option<Vec<String>> {
        self.0.remote.as_ref()?.versions(tags).await
    }

    async fn invalidate_everywhere(&self, tag: &str) {
        self.0.local.invalidate_tag(tag);
        if let Some(remote) = &self.0.remote {
            remote.invalidate_tag(tag, self.0.config.max_ttl).await;
        }
    }

    fn encode<T: Serialize>(&self, key: &str, value: &T) -> Option<Bytes> {
        match rmp_serde::to_vec(value) {
            Ok(bytes) if bytes.len() <= self.0.config.max_value_bytes => Some(Bytes::from(bytes)),
            Ok(_) => {
                metrics::counter!("tandem_cache_oversized_total", "family" => family(key))
                    .increment(1);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, key, "cache: value not serializable; not cached");
                None
            }
        }
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Option<T> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| tracing::warn!(error = %e, key, "cache: undecodable entry; reloading"))
        .ok()
}

/// The metrics label of a key: its first segment (`user:42` → `user`).
fn family(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_owned()
}

/// The tag every entry carries for its own key, so key invalidation is
/// race-free in the same way as tag invalidation.
fn self_tag(key: &str) -> String {
    format!("={key}")
}

fn all_tags(key: &str, tags: &[&str]) -> Vec<String> {
    let mut all = Vec::with_capacity(tags.len() + 2);
    all.push(EPOCH_TAG.to_owned());
    all.push(self_tag(key));
    all.extend(tags.iter().map(|t| t.replace(['\n', ','], "_")));
    all
}
