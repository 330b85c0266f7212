//! Study sessions, achievements and configuration through the API, with the
//! caches in front of them always showing a user their own writes.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Client, TestApp, assert_problem};

crate::on_both_backends!(
    scheduling_joining_leaving_and_cancelling,
    joins_never_exceed_capacity,
    achievements_are_earned_from_real_sessions,
    bad_schedules_are_refused,
    configuration_is_public_and_cached,
    the_upcoming_limit_holds_under_concurrent_creation,
);

fn schedule(title: &str, start_in: Duration, hours: i64, capacity: i32) -> Value {
    let start = Utc::now() + start_in;
    json!({
        "title": title,
        "subject": "Linear algebra",
        "starts_at": start.to_rfc3339(),
        "ends_at": (start + Duration::hours(hours)).to_rfc3339(),
        "capacity": capacity,
    })
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn create(client: &Client, body: Value) -> String {
    let res = client.post("/api/study-sessions", body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().expect("id").to_owned()
}

/// 39 rooms asked for at once by one student: exactly 20 (the limit of
/// upcoming rooms one student runs) are created, the rest refused with 409.
async fn the_upcoming_limit_holds_under_concurrent_creation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let owner = &owner;
    let answers = futures_util::future::join_all((0..39).map(|i| async move {
        // Far ahead, so these rooms sort after every other test's in the
        // shared upcoming list (the first 100) of the shared database.
        let body = schedule(&format!("Room {i}"), Duration::days(300), 1, 5);
        owner.post("/api/study-sessions", body).await.status
    }))
    .await;
    let created = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (20, 19), "{answers:?}");
    let mine = owner.get("/api/study-sessions/mine").await.body;
    assert_eq!(ids(&mine).len(), 20);
}

async fn scheduling_joining_leaving_and_cancelling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let (guest, _) = app.signed_up().await;
    // Warm every cache first, so the checks below prove invalidation.
    for client in [&owner, &guest] {
        client.get("/api/study-sessions").await;
        client.get("/api/study-sessions/mine").await;
    }
    let id = create(&owner, schedule("Eigenvalues", Duration::hours(2), 2, 4)).await;
    assert!(ids(&guest.get("/api/study-sessions").await.body).contains(&id));
    assert_eq!(
        ids(&owner.get("/api/study-sessions/mine").await.body),
        std::slice::from_ref(&id)
    );
    assert!(ids(&guest.get("/api/study-sessions/mine").await.body).is_empty());

    let joined = guest
        .post(&format!("/api/study-sessions/{id}/join"), json!({}))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(joined.body["member_count"], 2);
    assert_eq!(joined.body["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ids(&guest.get("/api/study-sessions/mine").await.body),
        std::slice::from_ref(&id)
    );
    let listed = owner.get("/api/study-sessions/mine").await.body;
    assert_eq!(
        listed[0]["member_count"], 2,
        "owner's list is stale: {listed}"
    );
    let again = guest
        .post(&format!("/api/study-sessions/{id}/join"), json!({}))
        .await;
    assert_eq!(
        again.body["member_count"], 2,
        "joining twice must not count twice"
    );

    let owner_leaves = owner
        .post(&format!("/api/study-sessions/{id}/leave"), json!({}))
        .await;
    assert_problem(&owner_leaves, StatusCode::CONFLICT);
    let left = guest
        .post(&format!("/api/study-sessions/{id}/leave"), json!({}))
        .await;
    assert_eq!(left.body["member_count"], 1);
    assert!(ids(&guest.get("/api/study-sessions/mine").await.body).is_empty());
    guest
        .post(&format!("/api/study-sessions/{id}/join"), json!({}))
        .await;

    let hijack = guest
        .post(&format!("/api/study-sessions/{id}/cancel"), json!({}))
        .await;
    assert_problem(&hijack, StatusCode::FORBIDDEN);
    let cancelled = owner
        .post(&format!("/api/study-sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert!(!ids(&guest.get("/api/study-sessions").await.body).contains(&id));
    let (late, _) = app.signed_up().await;
    let closed = late
        .post(&format!("/api/study-sessions/{id}/join"), json!({}))
        .await;
    assert_problem(&closed, StatusCode::CONFLICT);
    let missing = late
        .post(
            &format!("/api/study-sessions/{}/join", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

async fn joins_never_exceed_capacity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let id = create(&owner, schedule("Crowded", Duration::hours(1), 1, 3)).await;
    let mut students = Vec::new();
    for _ in 0..8 {
        students.push(app.signed_up().await.0);
    }
    let path = format!("/api/study-sessions/{id}/join");
    let results =
        futures_util::future::join_all(students.iter().map(|s| s.post(&path, json!({})))).await;
    let joined = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let full = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    assert_eq!((joined, full), (2, 6), "capacity 3 = owner + 2");
    let detail = owner.get(&format!("/api/study-sessions/{id}")).await.body;
    assert_eq!(detail["member_count"], 3);
}

async fn achievements_are_earned_from_real_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let (guest, _) = app.signed_up().await;
    let earned = |list: &Value| -> Vec<String> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .filter(|a| !a["earned_at"].is_null())
                    .filter_map(|a| a["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let catalog = guest.get("/api/achievements").await.body;
    assert!(
        catalog.as_array().is_some_and(|l| l.len() >= 7),
        "{catalog}"
    );
    assert!(earned(&catalog).is_empty());

    // Three 4-hour sessions on consecutive days, starting tomorrow.
    let mut sessions = Vec::new();
    for day in 1..=3 {
        sessions.push(create(&owner, schedule("Daily grind", Duration::days(day), 4, 4)).await);
    }
    for id in &sessions {
        guest
            .post(&format!("/api/study-sessions/{id}/join"), json!({}))
            .await;
    }
    // Nothing has happened yet: planned sessions earn nothing.
    assert!(earned(&guest.get("/api/achievements").await.body).is_empty());
    assert!(earned(&owner.get("/api/achievements").await.body).is_empty());

    // Four days later the sessions have happened: 12 hours, a 3-day streak,
    // counted as soon as the guest does something (or the 30-minute TTL ends).
    app.clock.advance(Duration::days(4));
    let next = create(&owner, schedule("Next week", Duration::days(7), 2, 4)).await;
    guest
        .post(&format!("/api/study-sessions/{next}/join"), json!({}))
        .await;
    let mut guest_has = earned(&guest.get("/api/achievements").await.body);
    guest_has.sort();
    assert_eq!(
        guest_has,
        ["first-partner", "first-session", "hours-10", "streak-3"]
    );
    let mut owner_has = earned(&owner.get("/api/achievements").await.body);
    owner_has.sort();
    assert_eq!(
        owner_has,
        [
            "first-partner",
            "first-session",
            "host",
            "hours-10",
            "streak-3"
        ]
    );
    // Earned when it happened, not when it was noticed: the 10th hour was
    // reached 2 hours into the third day's session.
    let list = guest.get("/api/achievements").await.body;
    let hours = list
        .as_array()
        .and_then(|l| l.iter().find(|a| a["id"] == "hours-10"))
        .expect("hours-10");
    let earned_at =
        chrono::DateTime::parse_from_rfc3339(hours["earned_at"].as_str().unwrap_or_default())
            .expect("earned_at is a date");
    let third_day = Utc::now() + Duration::days(3);
    assert!(
        (earned_at.with_timezone(&Utc) - (third_day + Duration::hours(2)))
            .num_minutes()
            .abs()
            < 5
    );
}

async fn bad_schedules_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, _) = app.signed_up().await;
    let good = schedule("Fine", Duration::hours(1), 2, 4);
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let start = Utc::now() + Duration::hours(1);
    for (what, body, status) in [
        (
            "past start",
            schedule("Old", -Duration::hours(3), 1, 4),
            422,
        ),
        (
            "too long",
            schedule("Marathon", Duration::hours(1), 13, 4),
            422,
        ),
        (
            "end before start",
            with("ends_at", json!((start - Duration::hours(1)).to_rfc3339())),
            422,
        ),
        ("one seat", with("capacity", json!(1)), 422),
        ("huge", with("capacity", json!(1000)), 422),
        ("empty title", with("title", json!(" ")), 422),
        ("not a date", with("starts_at", json!("tomorrow")), 422),
        ("unknown field", with("private", json!(true)), 422),
    ] {
        let res = client.post("/api/study-sessions", body).await;
        assert_eq!(res.status.as_u16(), status, "{what}: {}", res.body);
        assert_problem(&res, res.status);
    }
    let res = client.get("/api/study-sessions/not-a-uuid").await;
    assert_problem(&res, StatusCode::BAD_REQUEST);
    assert!(ids(&client.get("/api/study-sessions/mine").await.body).is_empty());
}

async fn configuration_is_public_and_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = app.client();
    for _ in 0..3 {
        let subjects = anonymous.get("/api/config/subjects").await;
        assert_eq!(subjects.status, StatusCode::OK);
        assert!(
            subjects
                .body
                .as_array()
                .is_some_and(|l| l.iter().any(|s| s == "Mathematics"))
        );
    }
    let limits = anonymous.get("/api/config/limits").await.body;
    assert_eq!(limits["study_session_capacity_max"], 50);
    assert_problem(
        &anonymous.get("/api/config/nope").await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &anonymous.get("/api/config/Bad_Key").await,
        StatusCode::BAD_REQUEST,
    );
    let text = app.metrics().await;
    assert!(
        text.contains(r#"tandem_cache_requests_total{family="config",result="l1_hit"}"#),
        "{text}"
    );
}
