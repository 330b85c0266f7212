//! Read replicas on a real streaming hot standby (`scripts/pg-replica.sh`,
//! started by `.ci/run`: primary on 55432, replica on 55433): read-your-writes
//! with replay paused, other users still on the replica, the writer back on
//! the replica once it caught up, a replica stopped under load without a
//! failed request, writes refused on replica connections, and ≥ 90 % of
//! reads on the replica in normal operation.
//!
//! Everything runs in one test: pausing replay or stopping the replica is
//! cluster-wide, so phases must not overlap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tandem_core::SecretString;
use tandem_server::AppState;

use crate::helpers::{Backend, Client, TestApp};

fn primary_server() -> String {
    std::env::var("TEST_REPLICA_PRIMARY_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432".into())
}

fn replica_server() -> String {
    std::env::var("TEST_REPLICA_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55433".into())
}

fn pg_replica(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-replica.sh");
    let status = std::process::Command::new("bash")
        .args([script, action])
        .status()
        .expect("run scripts/pg-replica.sh");
    assert!(status.success(), "pg-replica.sh {action} failed");
}

/// Resumes WAL replay on the standby and waits until it is no longer
/// paused. The resuming statement itself can be cancelled as a recovery
/// conflict (40001) once replay restarts; that is retried on a new
/// connection, and the pause state decides.
async fn resume_replay() {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let url = format!("{}/postgres", replica_server());
            let mut standby = PgConnection::connect(&url).await?;
            sqlx::query("SELECT pg_wal_replay_resume()")
                .execute(&mut standby)
                .await?;
            sqlx::query_scalar::<_, String>("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut standby)
                .await
        };
        match attempt.await {
            Ok(state) if state == "not paused" => return,
            Ok(state) => assert!(Instant::now() < deadline, "replay still {state}"),
            Err(e) => assert!(Instant::now() < deadline, "resume replay: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh database on the primary, once the replica has it too; `None`
/// (skip) when the pair is not running, a failure under `CI=true`.
async fn fresh_database() -> Option<String> {
    let name = format!("tandem_replica_{}", uuid::Uuid::new_v4().simple());
    // An earlier run that failed half-way may have left replay paused.
    if PgConnection::connect(&format!("{}/postgres", replica_server()))
        .await
        .is_ok()
    {
        resume_replay().await;
    }
    let created = async {
        let mut conn = PgConnection::connect(&format!("{}/postgres", primary_server())).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = created {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but the primary/replica pair is not running (scripts/pg-replica.sh start): {e}"
            );
        }
        eprintln!("SKIPPED: no primary/replica pair ({e}); run scripts/pg-replica.sh start");
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while PgConnection::connect(&format!("{}/{name}", replica_server()))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the replica never showed database {name}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(name)
}

/// `tandem_db_reads_total{target}` from `/metrics`.
async fn reads(app: &TestApp, target: &str) -> u64 {
    let text = app.metrics().await;
    let needle = format!("tandem_db_reads_total{{target=\"{target}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn replica_set(state: &AppState) -> &tandem_db::replicas::ReplicaSet {
    &state
        .data
        .replicas
        .as_ref()
        .expect("replicas configured")
        .set
}

/// Waits (bounded) until the health check sees the replica as `usable`
/// and, if given, replayed at least as far as the primary is now.
async fn await_replica(state: &AppState, usable: bool, caught_up: bool) {
    let set = replica_set(state);
    let target = if caught_up {
        set.write_position().await.expect("primary position")
    } else {
        0
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = set.health()[0].1;
        if health.usable == usable && (!usable || health.replayed >= target) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica never became usable={usable}: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn schedule(title: &str) -> Value {
    let start = Utc::now() + chrono::Duration::hours(2);
    json!({
        "title": title,
        "subject": "Databases",
        "starts_at": start.to_rfc3339(),
        "ends_at": (start + chrono::Duration::hours(1)).to_rfc3339(),
        "capacity": 50,
    })
}

async fn ok(res: crate::helpers::Res) -> Value {
    assert!(res.status.is_success(), "{}: {}", res.status, res.body);
    res.body
}

fn members_of(detail: &Value) -> Vec<String> {
    detail["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["user_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_reads_with_read_your_writes_and_survive_failures() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let Some(database) = fresh_database().await else {
        return;
    };
    let primary_url = format!("{}/{database}", primary_server());
    let replica_url = format!("{}/{database}", replica_server());
    let app = TestApp::spawn_with(backend, |c| {
        c.database.url = Some(SecretString::from(primary_url));
        c.database.replica_urls = vec![SecretString::from(replica_url)];
        // Replay is paused for a while below; other users keep reading
        // from the replica in the meantime.
        c.database.replica_max_lag = Duration::from_secs(600);
        c.database.replica_max_lag_bytes = 1 << 30;
        c.http.api_max_per_minute = 10_000_000;
    })
    .await;
    let state = app.state.clone();
    let set = replica_set(&state);

    // A write on a replica connection fails loudly.
    let refused = set
        .replica(0)
        .expect("replica 0")
        .delete_user(uuid::Uuid::now_v7())
        .await
        .expect_err("a replica connection refuses writes");
    assert!(refused.to_string().contains("read-only"), "{refused}");

    let (owner, _) = app.signed_up().await;
    let room = ok(owner
        .post("/api/study-sessions", schedule("Replica room"))
        .await)
    .await;
    let room = room["id"].as_str().expect("id").to_owned();
    let detail = format!("/api/study-sessions/{room}");
    let mut writers: Vec<(Arc<Client>, String)> = Vec::new();
    for _ in 0..5 {
        let (client, _) = app.signed_up().await;
        let id = ok(client.get("/api/users/me").await).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        writers.push((Arc::new(client), id));
    }
    let (reader, _) = app.signed_up().await;
    await_replica(&state, true, true).await;

    // Normal operation: most reads come from the replica.
    let (replica_before, primary_before) =
        (reads(&app, "replica").await, reads(&app, "primary").await);
    for _ in 0..100 {
        ok(reader.get(&detail).await).await;
        ok(owner.get(&detail).await).await;
    }
    let replica = reads(&app, "replica").await - replica_before;
    let primary = reads(&app, "primary").await - primary_before;
    assert!(
        replica * 10 >= (replica + primary) * 9,
        "normal operation: {replica} replica reads, {primary} primary reads"
    );

    // Replay paused: 10,000 write-then-read trials (5 students at once,
    // alternating a profile edit read back through the cache and a
    // join/leave read back from the room) always show the student's write.
    // Paused and resumed from the `postgres` database: a session in the
    // test's own database would be cancelled as a hot-standby conflict
    // (40001) when the vacuum records that piled up meanwhile are replayed.
    let mut standby = PgConnection::connect(&format!("{}/postgres", replica_server()))
        .await
        .expect("replica connection");
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut standby)
        .await
        .expect("pause replay");
    drop(standby);
    let trials = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (client, id) in writers.clone() {
        let (detail, room, trials) = (detail.clone(), room.clone(), trials.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let bio = format!("trial {i} of {id}");
                ok(client.patch("/api/users/me", json!({ "bio": bio })).await).await;
                let me = ok(client.get("/api/users/me").await).await;
                assert_eq!(
                    me["profile"]["bio"],
                    bio.as_str(),
                    "profile read after write"
                );
                let (action, expect_member) = if i % 2 == 0 {
                    ("join", true)
                } else {
                    ("leave", false)
                };
                ok(client
                    .post(&format!("/api/study-sessions/{room}/{action}"), json!({}))
                    .await)
                .await;
                let seen = ok(client.get(&detail).await).await;
                assert_eq!(
                    members_of(&seen).contains(&id),
                    expect_member,
                    "membership read after {action}"
                );
                trials.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    // Meanwhile another student's reads stay on the (paused) replica.
    let replica_before = reads(&app, "replica").await;
    for _ in 0..50 {
        ok(reader.get(&detail).await).await;
    }
    let served = reads(&app, "replica").await - replica_before;
    assert!(
        served >= 50,
        "other students read from the replica: {served} of 50"
    );
    for task in tasks {
        task.await.expect("trials");
    }
    assert_eq!(trials.load(Ordering::Relaxed), 10_000);
    // Signing up reads the new account back at once (it used to read it
    // from the paused replica and answer 401).
    let (newcomer, _) = app.signed_up().await;
    ok(newcomer.get("/api/users/me").await).await;

    // Resumed: once caught up, the writer reads from the replica again.
    resume_replay().await;
    await_replica(&state, true, true).await;
    let (writer, _) = &writers[0];
    let replica_before = reads(&app, "replica").await;
    ok(writer.get(&detail).await).await;
    assert_eq!(
        reads(&app, "replica").await - replica_before,
        1,
        "writer back on the replica"
    );

    // The replica stops under load: no request fails; reads move to the
    // primary and come back when it returns.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for (client, _) in writers.iter().take(3) {
        let client = client.clone();
        let (stop, failures, detail) = (stop.clone(), failures.clone(), detail.clone());
        load.push(tokio::spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for path in [detail.as_str(), "/api/users/me", "/api/study-sessions"] {
                    if client.get(path).await.status != StatusCode::OK {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    done += 1;
                }
            }
            done
        }));
    }
    tokio::task::spawn_blocking(|| pg_replica("stop-replica"))
        .await
        .expect("stop replica");
    await_replica(&state, false, false).await;
    let primary_before = reads(&app, "primary").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reads(&app, "primary").await < primary_before + 20 {
        assert!(
            Instant::now() < deadline,
            "reads did not move to the primary"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::spawn_blocking(|| pg_replica("start-replica"))
        .await
        .expect("start replica");
    await_replica(&state, true, true).await;
    let replica_before = reads(&app, "replica").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reads(&app, "replica").await < replica_before + 20 {
        assert!(
            Instant::now() < deadline,
            "reads did not come back to the replica"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    for task in load {
        requests += task.await.expect("load");
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "{requests} requests while the replica stopped and came back"
    );
}
