//! The cache's promises, on the embedded tier and on Redis with two instances.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tandem_cache::{Cache, CacheConfig};
use tokio::sync::Notify;

use crate::helpers::{
    Backend,
    services::{OwnRedis, free_port},
};

const TTL: Duration = Duration::from_secs(60);

/// Counts loads; returns `value` from the "database".
#[derive(Clone, Default)]
struct Db(Arc<AtomicUsize>);

impl Db {
    fn loads(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn loader(
        &self,
        value: String,
    ) -> impl FnOnce() -> std::future::Ready<Result<String, ()>> + Send + 'static {
        let count = self.0.clone();
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(value))
        }
    }
}

async fn redis_cache(url: &str, prefix: &str) -> Cache {
    let client = redis::Client::open(url).expect("redis url");
    let conn = redis::aio::ConnectionManager::new(client.clone())
        .await
        .expect("redis");
    Cache::distributed(client, conn, prefix, CacheConfig::default()).await
}

/// Two instances sharing one Redis, or (embedded) one cache twice.
async fn pair(backend: &Backend) -> (Cache, Cache) {
    match backend {
        Backend::Embedded => {
            let cache = Cache::embedded(CacheConfig::default());
            (cache.clone(), cache)
        }
        Backend::Distributed { redis_url, .. } => {
            let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
            (
                redis_cache(redis_url, &prefix).await,
                redis_cache(redis_url, &prefix).await,
            )
        }
    }
}

crate::on_both_backends!(
    values_are_cached_until_invalidated,
    an_edit_on_one_instance_is_read_on_the_other,
    tag_invalidation_reaches_every_entry_and_instance,
    a_load_racing_an_invalidation_is_never_left_stale,
    concurrent_misses_share_one_load_per_instance,
);

async fn values_are_cached_until_invalidated(backend: Backend) {
    let (cache, _) = pair(&backend).await;
    let db = Db::default();
    let get = |v: &str| cache.get_or_load("user:1", TTL, &["users"], db.loader(v.into()));
    assert_eq!(get("v1").await, Ok("v1".into()));
    assert_eq!(
        get("v2").await,
        Ok("v1".into()),
        "second read must be a hit"
    );
    assert_eq!(db.loads(), 1);
    cache.invalidate("user:1").await;
    assert_eq!(get("v3").await, Ok("v3".into()));
    cache.set("user:2", &"direct".to_owned(), TTL, &[]).await;
    assert_eq!(
        cache.get::<String>("user:2").await.as_deref(),
        Some("direct")
    );
    assert_eq!(db.loads(), 2);
}

async fn an_edit_on_one_instance_is_read_on_the_other(backend: Backend) {
    let (a, b) = pair(&backend).await;
    let db = Db::default();
    assert_eq!(
        b.get_or_load("user:7", TTL, &[], db.loader("old".into()))
            .await,
        Ok("old".into())
    );
    assert_eq!(
        a.get_or_load("user:7", TTL, &[], db.loader("old".into()))
            .await,
        Ok("old".into())
    );
    assert_eq!(
        db.loads(),
        1,
        "instance A must read instance B's entry from L2"
    );
    // A writes the database and invalidates; B must not serve its L1 copy.
    a.invalidate("user:7").await;
    let seen = wait_until_fresh(&b, "user:7", &db, "new").await;
    assert_eq!(seen, "new");
}

/// Reads through `cache` until it returns `fresh`; pub/sub delivery is
/// asynchronous, so allow it a bounded moment (it takes well under 1 ms here).
async fn wait_until_fresh(cache: &Cache, key: &str, db: &Db, fresh: &str) -> String {
    for _ in 0..200 {
        let got = cache
            .get_or_load(key, TTL, &[], db.loader(fresh.into()))
            .await
            .expect("load");
        if got == fresh {
            return got;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{key} still stale after 1 s")
}

async fn tag_invalidation_reaches_every_entry_and_instance(backend: Backend) {
    let (a, b) = pair(&backend).await;
    let db = Db::default();
    for i in 0..20 {
        let key = format!("sessions:{i}");
        a.get_or_load(&key, TTL, &["room:9"], db.loader(format!("old{i}")))
            .await
            .expect("load");
        b.get_or_load(&key, TTL, &["room:9"], db.loader(format!("old{i}")))
            .await
            .expect("load");
    }
    a.get_or_load("sessions:untagged", TTL, &[], db.loader("keep".into()))
        .await
        .expect("load");
    assert_eq!(db.loads(), 21);
    a.invalidate_tag("room:9").await;
    for cache in [&a, &b] {
        for i in 0..20 {
            let key = format!("sessions:{i}");
            wait_until_fresh(cache, &key, &db, &format!("new{i}")).await;
        }
    }
    let kept = b
        .get_or_load("sessions:untagged", TTL, &[], db.loader("reloaded".into()))
        .await;
    assert_eq!(kept, Ok("keep".into()), "untagged entry was dropped");
}

async fn a_load_racing_an_invalidation_is_never_left_stale(backend: Backend) {
    let (a, b) = pair(&backend).await;
    let loading = Arc::new(Notify::new());
    let invalidated = Arc::new(Notify::new());
    let (started, proceed) = (loading.clone(), invalidated.clone());
    // A slow load reads the old value, then the row changes and the tag is
    // invalidated, then the load tries to store its (now stale) value.
    let slow = tokio::spawn({
        let a = a.clone();
        async move {
            a.get_or_load("achievements:3", TTL, &["user:3"], move || async move {
                started.notify_one();
                proceed.notified().await;
                Ok::<_, ()>("stale".to_owned())
            })
            .await
        }
    });
    loading.notified().await;
    b.invalidate_tag("user:3").await;
    invalidated.notify_one();
    assert_eq!(
        slow.await.expect("task"),
        Ok("stale".into()),
        "the caller gets what it loaded"
    );
    let db = Db::default();
    for cache in [&a, &b] {
        let got = cache
            .get_or_load(
                "achievements:3",
                TTL,
                &["user:3"],
                db.loader("fresh".into()),
            )
            .await;
        assert_eq!(got, Ok("fresh".into()), "stale value was cached");
    }
}

async fn concurrent_misses_share_one_load_per_instance(backend: Backend) {
    let (a, b) = pair(&backend).await;
    let db = Db::default();
    let (open, gate) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (db, mut gate) = (db.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("config:features", TTL, &[], move || async move {
                    db.0.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open while the others pile up.
                    let _ = gate.wait_for(|open| *open).await;
                    Ok::<_, ()>("on".to_owned())
                })
                .await
        }));
    }
    // Let every task reach the cache before the load completes.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    open.send_replace(true);
    for task in tasks {
        assert_eq!(task.await.expect("task"), Ok("on".into()));
    }
    let instances = if matches!(backend, Backend::Embedded) {
        1
    } else {
        2
    };
    assert!(
        db.loads() <= instances,
        "{} loads for 1000 concurrent misses",
        db.loads()
    );
}

/// Tag bookkeeping stays proportional to what is cached, however many
/// invalidation cycles run (the roadmap's tag sets grew forever).
#[tokio::test]
async fn tag_bookkeeping_does_not_grow() {
    let Some(Backend::Distributed { redis_url, .. }) = Backend::distributed().await else {
        return;
    };
    let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
    let cache = redis_cache(&redis_url, &prefix).await;
    let db = Db::default();
    for i in 0..1500 {
        let key = format!("user:{}", i % 10);
        let tag = format!("team:{}", i % 3);
        cache
            .get_or_load(&key, TTL, &[&tag], db.loader(format!("v{i}")))
            .await
            .expect("load");
        if i % 2 == 0 {
            cache.invalidate_tag(&tag).await;
        } else {
            cache.invalidate(&key).await;
        }
    }
    assert!(db.loads() > 1000, "the cycles must really reload");
    let mut conn = redis::Client::open(redis_url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    // 10 entries + their 10 key tags + 3 tags + the epoch tag.
    assert!(
        keys.len() <= 24,
        "{} keys after 1500 cycles: {keys:?}",
        keys.len()
    );
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("pttl");
        assert!(ttl > 0, "{key} never expires");
    }
}

#[tokio::test]
async fn a_redis_outage_degrades_to_the_database_and_recovers() {
    if Backend::distributed().await.is_none() {
        return;
    }
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let cache = redis_cache(&redis.url(), "tandem-test:outage:").await;
    let db = Db::default();
    let get = |v: &str| cache.get_or_load("user:1", TTL, &[], db.loader(v.into()));
    assert_eq!(get("v1").await, Ok("v1".into()));
    assert_eq!(get("v1").await, Ok("v1".into()));
    assert_eq!(db.loads(), 1);

    redis.stop().await;
    // An edit during the outage, then reads: all answered from the database.
    cache.invalidate("user:1").await;
    for i in 0..20 {
        assert_eq!(get(&format!("v{i}")).await, Ok(format!("v{i}")));
    }
    assert!(cache.degraded());
    assert!(db.loads() >= 2);

    let redis = OwnRedis::start(port).await;
    let recovered = async {
        loop {
            let before = db.loads();
            let first = get("back").await;
            let second = get("again").await;
            if first == second && db.loads() == before + 1 && !cache.degraded() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), recovered)
        .await
        .expect("the cache uses Redis again once it is back");
    redis.stop().await;
}

/// Through the HTTP API: with the cache's Redis gone, requests are answered
/// from the database (degraded, visible in /readyz), and recover after.
#[tokio::test]
async fn the_api_keeps_answering_when_the_cache_redis_dies() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let cache_url = redis.url();
    let app = crate::helpers::TestApp::spawn_with(backend, |c| {
        c.cache.redis_url = Some(tandem_core::SecretString::from(cache_url.clone()));
    })
    .await;
    let (client, _) = app.signed_up().await;
    let cache_status = |body: &serde_json::Value| {
        body["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "cache"))
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        client.get("/api/users/me").await.status,
        reqwest::StatusCode::OK
    );

    redis.stop().await;
    let edit = client
        .patch(
            "/api/users/me",
            serde_json::json!({"bio": "during the outage"}),
        )
        .await;
    assert_eq!(edit.status, reqwest::StatusCode::OK, "{}", edit.body);
    for _ in 0..5 {
        let me = client.get("/api/users/me").await;
        assert_eq!(me.status, reqwest::StatusCode::OK);
        assert_eq!(me.body["profile"]["bio"], "during the outage");
    }
    let ready = client.get("/readyz").await;
    assert_eq!(
        ready.status,
        reqwest::StatusCode::OK,
        "cache outage must not fail readiness"
    );
    assert_eq!(cache_status(&ready.body).as_deref(), Some("degraded"));

    let redis = OwnRedis::start(port).await;
    let recovered = async {
        loop {
            let me = client.get("/api/users/me").await;
            assert_eq!(me.body["profile"]["bio"], "during the outage");
            if cache_status(&client.get("/readyz").await.body).as_deref() == Some("ok") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), recovered)
        .await
        .expect("the cache recovers once its Redis is back");
    redis.stop().await;
}
