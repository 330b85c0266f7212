//! One contract per trait, run against every implementation.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tandem_core::{Clock, SystemClock};
use tandem_db::{AuthSession, Database, NewUser, sqlite::SqliteDatabase};
use tandem_ratelimit::{Decision, Limit, MemoryLimiter, RateLimiter, RedisLimiter};
use tandem_sessions::{DbSessionStore, RedisSessionStore, SessionStore};
use uuid::Uuid;

use crate::helpers::Backend;

async fn user(db: &dyn Database) -> Uuid {
    let id = Uuid::now_v7();
    db.create_user(&NewUser {
        id,
        email: crate::helpers::unique_email(),
        password_hash: "x".into(),
        display_name: "Contract".into(),
        created_at: SystemClock.now(),
    })
    .await
    .expect("user created");
    id
}

fn session(user_id: Uuid, minutes_ago: i64) -> AuthSession {
    let now = SystemClock.now() - chrono::Duration::minutes(minutes_ago);
    AuthSession {
        id: tandem_sessions::SessionToken::generate().id(),
        user_id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + chrono::Duration::days(30),
        user_agent: Some("contract".into()),
        ip: Some("127.0.0.1".into()),
    }
}

/// What every session store promises.
async fn session_store_contract(store: &dyn SessionStore, alice: Uuid, bob: Uuid) {
    let deadline = Utc::now() + chrono::Duration::hours(1);
    let older = session(alice, 5);
    let newer = session(alice, 1);
    let bobs = session(bob, 0);
    for s in [&older, &newer, &bobs] {
        store.create(s, deadline).await.expect("create");
    }
    assert_eq!(
        store.get(&older.id).await.expect("get"),
        Some(older.clone())
    );
    assert_eq!(store.get(&"0".repeat(64)).await.expect("get"), None);

    let listed: Vec<String> = store
        .list(alice)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        listed,
        [newer.id.clone(), older.id.clone()],
        "own sessions, newest first"
    );

    let mut touched = older.clone();
    touched.last_seen_at = SystemClock.now();
    store.touch(&touched, deadline).await.expect("touch");
    assert_eq!(
        store.get(&older.id).await.expect("get"),
        Some(touched.clone())
    );

    assert!(
        !store.delete(bob, &older.id).await.expect("delete"),
        "bob deleted alice's session"
    );
    assert!(store.get(&older.id).await.expect("get").is_some());
    assert!(store.delete(alice, &older.id).await.expect("delete"));
    assert_eq!(store.get(&older.id).await.expect("get"), None);
    store.touch(&touched, deadline).await.expect("touch");
    assert_eq!(
        store.get(&older.id).await.expect("get"),
        None,
        "touch resurrected a session"
    );

    let third = session(alice, 0);
    store.create(&third, deadline).await.expect("create");
    assert_eq!(
        store
            .delete_all(alice, Some(&third.id))
            .await
            .expect("delete_all"),
        1
    );
    let left: Vec<String> = store
        .list(alice)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [third.id]);
    assert!(
        store.get(&bobs.id).await.expect("get").is_some(),
        "bob's session went too"
    );
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn database_session_store_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = SqliteDatabase::open(&dir.path().join("t.db"), &Default::default())
        .await
        .expect("open");
    db.migrate().await.expect("migrate");
    let db: Arc<dyn Database> = Arc::new(db);
    let (alice, bob) = (user(db.as_ref()).await, user(db.as_ref()).await);
    session_store_contract(&DbSessionStore::new(db), alice, bob).await;
}

#[tokio::test]
async fn database_session_store_on_postgres() {
    let Some(Backend::Distributed { database_url, .. }) = Backend::distributed().await else {
        return;
    };
    let db = tandem_db::connect(
        Some(&database_url),
        std::path::Path::new("."),
        &Default::default(),
    )
    .await
    .expect("connect");
    db.migrate().await.expect("migrate");
    let (alice, bob) = (user(db.as_ref()).await, user(db.as_ref()).await);
    session_store_contract(&DbSessionStore::new(db), alice, bob).await;
}

async fn redis_conn(url: &str) -> redis::aio::ConnectionManager {
    let client = redis::Client::open(url).expect("redis url");
    redis::aio::ConnectionManager::new(client)
        .await
        .expect("redis")
}

fn test_prefix() -> String {
    format!("tandem-test:{}:", Uuid::new_v4().simple())
}

#[tokio::test]
async fn redis_session_store() {
    let Some(Backend::Distributed { redis_url, .. }) = Backend::distributed().await else {
        return;
    };
    let store = RedisSessionStore::new(redis_conn(&redis_url).await, test_prefix());
    session_store_contract(&store, Uuid::now_v7(), Uuid::now_v7()).await;
}

#[tokio::test]
async fn redis_session_index_expires_with_its_sessions() {
    let Some(Backend::Distributed { redis_url, .. }) = Backend::distributed().await else {
        return;
    };
    let mut conn = redis_conn(&redis_url).await;
    let prefix = test_prefix();
    let store = RedisSessionStore::new(conn.clone(), prefix.clone());
    let user = Uuid::now_v7();
    let s = session(user, 0);
    // The deadline counts from the session's own last activity, as the
    // store's TTL does (not from a later clock reading).
    store
        .create(&s, s.last_seen_at + chrono::Duration::hours(1))
        .await
        .expect("create");
    let index_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}user-sessions:{user}"))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(
        index_ttl > 0,
        "user index has no TTL ({index_ttl}): it would live forever"
    );
    let session_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}session:{}", s.id))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(
        session_ttl > 0 && session_ttl <= 3_600_000,
        "session ttl {session_ttl}"
    );
}

/// What every rate limiter promises.
async fn rate_limiter_contract(limiter: &dyn RateLimiter) {
    let limit = Limit {
        max: 3,
        window: Duration::from_secs(60),
    };
    let key = format!("contract:{}", Uuid::new_v4());
    for _ in 0..3 {
        assert_eq!(
            limiter.hit(&key, limit).await.expect("hit"),
            Decision::Allowed
        );
    }
    match limiter.hit(&key, limit).await.expect("hit") {
        Decision::Limited { retry_after } => {
            assert!(retry_after <= limit.window && retry_after >= Duration::from_secs(1))
        }
        Decision::Allowed => panic!("fourth hit allowed"),
    }
    let other = format!("contract:{}", Uuid::new_v4());
    assert_eq!(
        limiter.hit(&other, limit).await.expect("hit"),
        Decision::Allowed
    );
    limiter.reset(&key).await.expect("reset");
    assert_eq!(
        limiter.hit(&key, limit).await.expect("hit"),
        Decision::Allowed
    );
}

#[tokio::test]
async fn memory_rate_limiter() {
    rate_limiter_contract(&MemoryLimiter::new(1000)).await;
}

#[tokio::test]
async fn redis_rate_limiter() {
    let Some(Backend::Distributed { redis_url, .. }) = Backend::distributed().await else {
        return;
    };
    rate_limiter_contract(&RedisLimiter::new(
        redis_conn(&redis_url).await,
        &test_prefix(),
    ))
    .await;
}
