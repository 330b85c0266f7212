//! Analytics through the API: ingestion (anonymous and signed in, limits,
//! bad input refused whole), time in study rooms recorded when a member
//! leaves, the cron trigger of the archive (secret, one run at a time) and
//! the operators' list of runs.

use std::time::Duration as StdDuration;

use chrono::Duration;
use futures_util::TryStreamExt;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tandem_archive::Trigger;
use tandem_core::{Clock, SecretString};
use tandem_db::{AnalyticsRow, AnalyticsTable, PageView, Week};
use uuid::Uuid;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, services, unique_email};

crate::on_both_backends!(
    page_views_and_activity_are_recorded,
    bad_batches_are_refused_whole,
    a_row_the_database_refuses_costs_no_other_row,
    leaving_a_room_records_the_visit,
    the_cron_trigger_needs_the_secret_and_runs_one_at_a_time,
    two_instances_run_each_schedule_slot_once,
);

/// This week's rows of `table`, as the archive would see them.
async fn this_week(app: &TestApp, table: AnalyticsTable) -> Vec<AnalyticsRow> {
    let week = Week::of(app.clock.now());
    let batches: Vec<Vec<AnalyticsRow>> = app
        .state
        .data
        .db
        .week_rows(table, week)
        .try_collect()
        .await
        .expect("rows");
    batches.into_iter().flatten().collect()
}

/// Waits (bounded) until the buffered rows matching `keep` reach `n`.
async fn wait_for_rows(
    app: &TestApp,
    table: AnalyticsTable,
    n: usize,
    keep: impl Fn(&AnalyticsRow) -> bool,
) -> Vec<AnalyticsRow> {
    for _ in 0..200 {
        let rows: Vec<_> = this_week(app, table)
            .await
            .into_iter()
            .filter(&keep)
            .collect();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("{n} rows of {} did not arrive", table.name());
}

fn of_visitor(visitor: Uuid) -> impl Fn(&AnalyticsRow) -> bool {
    move |row| match row {
        AnalyticsRow::PageView(p) => p.visitor_id == visitor,
        AnalyticsRow::Activity(a) => a.visitor_id == visitor,
        AnalyticsRow::StudyVisit(_) => false,
    }
}

async fn page_views_and_activity_are_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = Uuid::new_v4();
    let res = app
        .client()
        .post(
            "/api/analytics/events",
            json!({"visitorId": anonymous, "events": [
                {"type": "pageView", "path": "/rooms?tab=mine#top", "referrer": "https://example.org/"},
                {"type": "pageView", "path": "/profile"},
                {"type": "activity", "kind": "search", "detail": {"q": "linear algebra"}},
            ]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(res.body["accepted"], 3);
    let views = wait_for_rows(&app, AnalyticsTable::PageViews, 2, of_visitor(anonymous)).await;
    let paths: Vec<_> = views
        .iter()
        .map(|r| match r {
            AnalyticsRow::PageView(PageView {
                path,
                user_id,
                referrer,
                occurred_at,
                ..
            }) => {
                assert_eq!(*user_id, None, "anonymous");
                assert_eq!(*occurred_at, app.clock.now(), "stamped by the server");
                (path.clone(), referrer.clone())
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("/rooms".to_owned(), Some("https://example.org/".to_owned())),
            ("/profile".to_owned(), None)
        ]
    );
    let activity =
        wait_for_rows(&app, AnalyticsTable::UserActivity, 1, of_visitor(anonymous)).await;
    let AnalyticsRow::Activity(search) = &activity[0] else {
        unreachable!()
    };
    assert_eq!(
        (search.kind.as_str(), &search.detail.0),
        ("search", &json!({"q": "linear algebra"}))
    );

    let (student, _) = app.signed_up().await;
    let me = student.get("/api/users/me").await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let signed_in = Uuid::new_v4();
    let res = student
        .post(
            "/api/analytics/events",
            json!({"visitorId": signed_in, "events": [{"type": "pageView", "path": "/partners"}]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let views = wait_for_rows(&app, AnalyticsTable::PageViews, 1, of_visitor(signed_in)).await;
    let AnalyticsRow::PageView(view) = &views[0] else {
        unreachable!()
    };
    assert_eq!(
        view.user_id.map(|u| u.to_string()),
        Some(me),
        "tied to the signed-in user"
    );
}

async fn bad_batches_are_refused_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.client();
    let visitor = Uuid::new_v4();
    let view = json!({"type": "pageView", "path": "/ok"});
    let too_many: Vec<Value> = (0..51).map(|_| view.clone()).collect();
    let bad = [
        json!({"visitorId": visitor, "events": []}),
        json!({"visitorId": visitor, "events": too_many}),
        json!({"visitorId": visitor, "events": [view, {"type": "pageView", "path": "rooms"}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "pageView", "path": format!("/{}", "a".repeat(600))}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "activity", "kind": "Bad Kind"}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "activity", "kind": "x", "detail": [1]}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "activity", "kind": "x", "detail": {"a": "b".repeat(3000)}}]}),
        // NUL, which PostgreSQL refuses in text and jsonb.
        json!({"visitorId": visitor, "events": [view, {"type": "pageView", "path": "/a", "referrer": "https://x/\u{0}"}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "activity", "kind": "x", "detail": {"a": "\u{0}"}}]}),
        json!({"visitorId": visitor, "events": [view, {"type": "activity", "kind": "x", "detail": {"a": [{"\u{0}": 1}]}}]}),
    ];
    for body in bad {
        let res = client.post("/api/analytics/events", body).await;
        assert_problem(&res, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for body in [
        json!({"visitorId": "not-a-uuid", "events": [view]}),
        json!({"visitorId": visitor, "events": [{"type": "purchase"}]}),
        json!({"visitorId": visitor, "events": [view], "extra": 1}),
    ] {
        let res = client.post("/api/analytics/events", body).await;
        assert!(res.status.is_client_error(), "{}: {}", res.status, res.body);
    }
    let huge = format!(
        r#"{{"visitorId":"{visitor}","events":[{{"type":"pageView","path":"/{}"}}]}}"#,
        "a".repeat(40_000)
    );
    let res = client
        .raw(
            Method::POST,
            "/api/analytics/events",
            Some((huge.into_bytes(), "application/json")),
        )
        .await;
    assert_problem(&res, StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing of a refused batch was kept; a good one after them is.
    let good = client
        .post(
            "/api/analytics/events",
            json!({"visitorId": visitor, "events": [{"type": "pageView", "path": "/after"}]}),
        )
        .await;
    assert_eq!(good.status, StatusCode::ACCEPTED);
    let rows = wait_for_rows(&app, AnalyticsTable::PageViews, 1, of_visitor(visitor)).await;
    assert_eq!(rows.len(), 1, "only the good batch was stored: {rows:?}");

    // A visitor is limited to 60 batches a minute.
    let flood = Uuid::new_v4();
    let mut statuses = Vec::new();
    for _ in 0..61 {
        let res = client
            .post(
                "/api/analytics/events",
                json!({"visitorId": flood, "events": [{"type": "pageView", "path": "/x"}]}),
            )
            .await;
        statuses.push(res.status);
    }
    assert!(
        statuses[..60].iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );
    assert_eq!(statuses[60], StatusCode::TOO_MANY_REQUESTS);
}

/// A row that passed ingestion but that the database refuses (a NUL, on
/// PostgreSQL) is dropped alone: the 40 good rows of its batch are kept.
async fn a_row_the_database_refuses_costs_no_other_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let visitor = Uuid::new_v4();
    let row = |path: &str| {
        AnalyticsRow::PageView(PageView {
            id: 0,
            occurred_at: app.clock.now(),
            visitor_id: visitor,
            user_id: None,
            path: path.to_owned(),
            referrer: None,
        })
    };
    let mut rows: Vec<AnalyticsRow> = (0..20).map(|_| row("/good")).collect();
    rows.push(row("/bad\u{0}"));
    rows.extend((0..20).map(|_| row("/good")));
    app.state
        .analytics
        .sink
        .offer(rows)
        .expect("buffer has room");
    let good = |r: &AnalyticsRow| matches!(r, AnalyticsRow::PageView(p) if p.path == "/good");
    let kept = wait_for_rows(&app, AnalyticsTable::PageViews, 40, move |r| {
        of_visitor(visitor)(r) && good(r)
    })
    .await;
    assert_eq!(kept.len(), 40);
}

async fn leaving_a_room_records_the_visit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let (guest, _) = app.signed_up().await;
    let start = chrono::Utc::now() + Duration::hours(1);
    let room = owner
        .post(
            "/api/study-sessions",
            json!({"title": "Proofs", "subject": "Logic", "starts_at": start.to_rfc3339(),
                   "ends_at": (start + Duration::hours(2)).to_rfc3339(), "capacity": 4}),
        )
        .await;
    assert_eq!(room.status, StatusCode::CREATED, "{}", room.body);
    let id = room.body["id"].as_str().expect("id").to_owned();
    let joined = guest
        .post(&format!("/api/study-sessions/{id}/join"), json!({}))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    app.clock.advance(Duration::minutes(50));
    let left = guest
        .post(&format!("/api/study-sessions/{id}/leave"), json!({}))
        .await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    let guest_id: Uuid = guest.get("/api/users/me").await.body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let visits = wait_for_rows(
        &app,
        AnalyticsTable::UserSessions,
        1,
        |r| matches!(r, AnalyticsRow::StudyVisit(v) if v.user_id == guest_id),
    )
    .await;
    let AnalyticsRow::StudyVisit(visit) = &visits[0] else {
        unreachable!()
    };
    assert_eq!(visit.study_session_id.map(|s| s.to_string()), Some(id));
    assert_eq!(visit.occurred_at - visit.started_at, Duration::minutes(50));
}

async fn the_cron_trigger_needs_the_secret_and_runs_one_at_a_time(backend: Backend) {
    // A database of its own: the archive lease and partitions are global.
    let fresh = match &backend {
        Backend::Embedded => None,
        Backend::Distributed { .. } => Some(services::fresh_postgres().await.expect("postgres")),
    };
    let admin_email = unique_email();
    let secret = "cron-secret-for-tests-0123456789";
    let off = TestApp::spawn(Backend::Embedded).await;
    assert_problem(
        &off.client().get("/api/cron/archive-analytics").await,
        StatusCode::NOT_FOUND,
    );

    let app = TestApp::spawn_with(backend, |config| {
        if let Some(db) = &fresh {
            config.database.url = Some(SecretString::from(db.url.clone()));
        }
        config.archive.cron_secret = Some(SecretString::from(secret.to_owned()));
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/cron/archive-analytics", app.url);
    let trigger = |auth: Option<String>| {
        let mut req = http.get(&url);
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        async move { req.send().await.expect("request").status() }
    };
    for auth in [
        None,
        Some("Bearer wrong".into()),
        Some(format!("Bearer {secret}x")),
        Some(format!("Basic {secret}")),
        Some(format!("Bearer {}", &secret[..10])),
    ] {
        assert_eq!(
            trigger(auth.clone()).await,
            StatusCode::UNAUTHORIZED,
            "{auth:?}"
        );
    }
    assert!(
        app.state
            .data
            .db
            .archive_runs(10)
            .await
            .expect("runs")
            .is_empty(),
        "refused triggers run nothing"
    );

    // While a run holds the lease, a trigger is refused with 409.
    let held = app
        .state
        .analytics
        .archiver
        .begin(Trigger::Cli, false)
        .await
        .expect("begin");
    assert_eq!(
        trigger(Some(format!("Bearer {secret}"))).await,
        StatusCode::CONFLICT
    );
    held.execute(&tandem_archive::Quiet).await;

    // Old rows, then many simultaneous triggers: runs never overlap, and
    // every old row is archived once.
    let old = Week::of(app.clock.now() - Duration::days(120)).start() + Duration::days(1);
    let rows: Vec<AnalyticsRow> = (0..300)
        .map(|i| {
            AnalyticsRow::PageView(PageView {
                id: 0,
                occurred_at: old + Duration::seconds(i),
                visitor_id: Uuid::new_v4(),
                user_id: None,
                path: format!("/old/{i}"),
                referrer: None,
            })
        })
        .collect();
    app.state
        .data
        .db
        .insert_analytics(&rows, false)
        .await
        .expect("seed");
    let statuses =
        futures_util::future::join_all((0..6).map(|_| trigger(Some(format!("Bearer {secret}")))))
            .await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::ACCEPTED), "{statuses:?}");
    let started = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let runs = loop {
        let runs = app.state.data.db.archive_runs(50).await.expect("runs");
        if runs.len() == started + 1 && runs.iter().all(|r| r.status != "running") {
            break runs;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    let mut spans: Vec<_> = runs
        .iter()
        .map(|r| (r.started_at, r.finished_at.expect("finished")))
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "runs never overlap: {spans:?}"
    );
    assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
    assert_eq!(
        runs.iter().map(|r| r.rows).sum::<i64>(),
        300,
        "each old row archived once"
    );
    assert_eq!(runs.iter().map(|r| r.objects).sum::<i64>(), 1);

    // Operators see the runs; others do not see the endpoint.
    let (someone, _) = app.signed_up().await;
    assert_problem(
        &someone.get("/api/admin/archive-runs").await,
        StatusCode::NOT_FOUND,
    );
    let admin = app.client();
    assert_eq!(
        admin
            .register(&admin_email, PASSWORD, "Operator")
            .await
            .status,
        StatusCode::CREATED
    );
    assert!(
        app.state
            .data
            .db
            .set_admin(&admin_email, true)
            .await
            .expect("grant admin")
    );
    let listed = admin.get("/api/admin/archive-runs").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body.as_array().map(Vec::len), Some(started + 1));
    assert!(
        listed
            .body
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["trigger"] == "cron" && r["rows"] == 300)
    );
}

async fn two_instances_run_each_schedule_slot_once(backend: Backend) {
    // Two instances on one database of their own, scheduling every second.
    let fresh = match &backend {
        Backend::Embedded => None,
        Backend::Distributed { .. } => Some(services::fresh_postgres().await.expect("postgres")),
    };
    let shared_dir = tempfile::tempdir().expect("temp dir");
    let every_second = tandem_archive::Schedule::parse("* * * * * *").expect("schedule");
    let spawn = || {
        TestApp::spawn_with(backend.clone(), |config| {
            match &fresh {
                Some(db) => config.database.url = Some(SecretString::from(db.url.clone())),
                None => config.data_dir = shared_dir.path().to_owned(),
            }
            config.archive.schedule = Some(every_second.clone());
        })
    };
    let a = spawn().await;
    let b = spawn().await;
    // Same time on both, so from now on both try the same slots.
    b.clock.advance(a.clock.now() - b.clock.now());
    let watched = std::time::Instant::now();
    let runs = loop {
        let runs = a.state.data.db.archive_runs(100).await.expect("runs");
        if !runs.is_empty() && watched.elapsed() > StdDuration::from_secs(3) {
            break runs;
        }
        assert!(
            watched.elapsed() < StdDuration::from_secs(20),
            "no scheduled run"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    };
    let slots: std::collections::BTreeSet<_> = runs.iter().map(|r| r.slot.clone()).collect();
    assert!(
        runs.iter()
            .all(|r| r.trigger == "schedule" && r.slot.is_some()),
        "{runs:?}"
    );
    assert_eq!(slots.len(), runs.len(), "each slot ran once: {runs:?}");
    assert!(
        runs.len() <= 2,
        "a slot per clock setting, not per attempt: {runs:?}"
    );
}
