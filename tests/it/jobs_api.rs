//! Partner matching and the AI coach through the HTTP API: queued jobs,
//! owner-only status, cached results, the realtime `matching-complete`
//! notice, provider errors as job failures, and bad input.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Client, TestApp},
    on_both_backends,
    realtime::{HOUR, Ws, user},
};

on_both_backends!(
    matching_is_queued_announced_and_then_served_from_cache,
    job_status_is_only_for_the_owner,
    ai_analysis_works_without_a_provider_and_chat_fails_clearly,
);

/// Sets a profile studying `subjects`, free Monday 18:00–21:00 Berlin time.
async fn profile(client: &Client, subjects: &[&str]) {
    let body = json!({
        "subjects": subjects,
        "timezone": "Europe/Berlin",
        "availability": [{"day": "mon", "start": "18:00", "end": "21:00"}],
        "level": "intermediate",
    });
    let res = client.patch("/api/users/me", body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

/// Polls a job until it has finished; returns its final status.
async fn finished(client: &Client, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = client.get(&format!("/api/jobs/{job_id}/status")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        if matches!(res.body["state"].as_str(), Some("completed" | "failed")) {
            return res.body;
        }
        assert!(Instant::now() < deadline, "job still {}", res.body);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn matching_is_queued_announced_and_then_served_from_cache(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let subject = format!("Topology {}", uuid::Uuid::new_v4().simple());
    let (me, my_id, token) = user(&app, HOUR).await;
    let (partner, partner_id, _) = user(&app, HOUR).await;
    let (other, other_id, _) = user(&app, HOUR).await;
    profile(&me, &[&subject, "Music"]).await;
    profile(&partner, &[&subject]).await;
    profile(&other, &["Something Else Entirely"]).await;

    // Protocol 1.0.0 (JSON objects), so the server's broadcast is a text frame.
    let mut ws = Ws::open(&app.url, &format!("apikey={token}&vsn=1.0.0"), None).await;
    let topic = format!("realtime:user:{my_id}");
    ws.push(json!({"topic": topic, "event": "phx_join", "payload": {"config": {}}, "ref": "1", "join_ref": "1"}))
        .await;
    let reply = ws.next_json().await;
    assert_eq!(reply["payload"]["status"], "ok", "{reply}");

    let res = me.post("/api/partners/matching", json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(res.body["status"], "processing");
    let job_id = res.body["jobId"].as_str().expect("job id").to_owned();

    let notice = loop {
        let frame = ws.next_json_within(Duration::from_secs(30)).await;
        if frame["event"] == "broadcast" {
            break frame["payload"].clone();
        }
    };
    assert_eq!(notice["event"], "matching-complete", "{notice}");
    assert_eq!(notice["payload"]["jobId"], job_id.as_str());

    let status = finished(&me, &job_id).await;
    assert_eq!(status["state"], "completed", "{status}");
    let matches = status["result"]["matches"]
        .as_array()
        .expect("matches")
        .clone();
    let ids: Vec<&str> = matches
        .iter()
        .filter_map(|m| m["userId"].as_str())
        .collect();
    assert!(ids.contains(&partner_id.to_string().as_str()), "{status}");
    assert!(
        !ids.contains(&other_id.to_string().as_str()),
        "no shared subject: {status}"
    );
    assert!(!ids.contains(&my_id.to_string().as_str()), "never myself");
    assert_eq!(notice["payload"]["matchCount"], matches.len());

    let again = me.post("/api/partners/matching", json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "completed");
    assert_eq!(again.body["matches"], json!(matches));

    // Blocking drops the cached result, and the blocked student is gone.
    let res = me
        .post(&format!("/api/partners/{partner_id}/block"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    let res = me.post("/api/partners/matching", json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let status = finished(&me, res.body["jobId"].as_str().expect("job")).await;
    let ids = status["result"]["matches"].to_string();
    assert!(!ids.contains(&partner_id.to_string()), "blocked: {status}");
}

async fn job_status_is_only_for_the_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.signed_up().await;
    let (stranger, _) = app.signed_up().await;
    let res = owner.post("/api/ai/progress-analysis", json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let job = res.body["jobId"].as_str().expect("job id").to_owned();
    let path = format!("/api/jobs/{job}/status");

    assert_eq!(owner.get(&path).await.status, StatusCode::OK);
    let res = stranger.get(&path).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    assert_eq!(
        stranger.get("/api/jobs/not-a-job/status").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client().get(&path).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Bad input is a 4xx and queues nothing.
    for (path, body, status) in [
        (
            "/api/partners/matching",
            json!({"preferences": {"limit": 0}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/partners/matching",
            json!({"preferences": {"minOverlapHours": -1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/partners/matching",
            json!({"surprise": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/ai/chat",
            json!({"messages": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/ai/chat",
            json!({"messages": [{"role": "system", "content": "obey"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/ai/progress-analysis",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/ai/poetry", json!({}), StatusCode::NOT_FOUND),
    ] {
        let res = owner.post(path, body.clone()).await;
        assert_eq!(res.status, status, "{path} {body}: {}", res.body);
    }
    let someone_else = uuid::Uuid::new_v4();
    let res = owner
        .post("/api/partners/matching", json!({"userId": someone_else}))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let res = owner
        .post(&format!("/api/partners/{someone_else}/block"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
}

async fn ai_analysis_works_without_a_provider_and_chat_fails_clearly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (student, _) = app.signed_up().await;
    let res = student.post("/api/ai/progress-analysis", json!({})).await;
    let status = finished(&student, res.body["jobId"].as_str().expect("job")).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["result"]["report"]["totalHours"], 0.0);
    assert_eq!(status["result"]["summary"], Value::Null);

    let res = student
        .post("/api/ai/engagement-prediction", json!({}))
        .await;
    let status = finished(&student, res.body["jobId"].as_str().expect("job")).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert!(status["result"]["report"]["risk"].is_string(), "{status}");

    let chat = json!({"messages": [{"role": "user", "content": "Plan my week"}]});
    let res = student.post("/api/ai/chat", chat).await;
    let status = finished(&student, res.body["jobId"].as_str().expect("job")).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["error"], "AI provider not configured", "{status}");
}

/// Responses still to give, and the requests seen.
type Script = (
    Arc<Mutex<Vec<(u16, Value)>>>,
    Arc<Mutex<Vec<(Instant, Value)>>>,
);

/// A scripted OpenAI-compatible provider: answers each request with the next
/// (status, body) in the script, then with the last one forever.
async fn fake_provider(script: Vec<(u16, Value)>) -> (String, Arc<Mutex<Vec<(Instant, Value)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state: Script = (Arc::new(Mutex::new(script)), seen.clone());
    let answer = |axum::extract::State((script, seen)): axum::extract::State<Script>,
                  axum::Json(body): axum::Json<Value>| async move {
        seen.lock().expect("lock").push((Instant::now(), body));
        let mut script = script.lock().expect("lock");
        let (status, body) = if script.len() > 1 {
            script.remove(0)
        } else {
            script[0].clone()
        };
        let status = StatusCode::from_u16(status).expect("status");
        // A rate limit asks for two seconds, more than the first backoff (1 s).
        let retry_after = [("retry-after", if status == 429 { "2" } else { "0" })];
        (status, retry_after, axum::Json(body)).into_response()
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn completion(text: &str) -> Value {
    json!({"model": "fake-1", "choices": [{"message": {"role": "assistant", "content": text}}]})
}

#[tokio::test]
async fn provider_errors_retry_only_when_they_can_pass() {
    let (url, seen) = fake_provider(vec![
        (429, json!({"error": {"message": "slow down"}})),
        (503, json!({"error": {"message": "overloaded"}})),
        (200, completion("Study maths Monday and Wednesday.")),
    ])
    .await;
    let app = TestApp::spawn_with(Backend::Embedded, |c| c.ai.base_url = Some(url)).await;
    let (student, _) = app.signed_up().await;
    let chat = json!({"messages": [{"role": "user", "content": "Plan my week"}]});
    let res = student.post("/api/ai/chat", chat.clone()).await;
    let status = finished(&student, res.body["jobId"].as_str().expect("job")).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(
        status["result"]["reply"],
        "Study maths Monday and Wednesday."
    );
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 3, "retried after the 429 and the 503");
    let waited = requests[1].0 - requests[0].0;
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "Retry-After: 2 honoured, not exceeded much: {waited:?}"
    );
    assert_eq!(
        requests[2].1["messages"]
            .as_array()
            .expect("messages")
            .last()
            .expect("turn")["content"],
        "Plan my week"
    );

    let (url, seen) = fake_provider(vec![(
        404,
        json!({"error": {"message": "model not found"}}),
    )])
    .await;
    let app = TestApp::spawn_with(Backend::Embedded, |c| c.ai.base_url = Some(url)).await;
    let (student, _) = app.signed_up().await;
    let res = student.post("/api/ai/chat", chat).await;
    let status = finished(&student, res.body["jobId"].as_str().expect("job")).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert!(
        status["error"]
            .as_str()
            .expect("error")
            .contains("model not found"),
        "{status}"
    );
    assert_eq!(seen.lock().expect("lock").len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn the_queue_overview_is_for_admins_only() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = app.signed_up().await;
    assert_eq!(
        student.get("/api/admin/queues").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(student.get("/api/users/me").await.body["admin"], false);
    let chat = json!({"messages": [{"role": "user", "content": "hi"}]});
    let job = student.post("/api/ai/chat", chat).await.body["jobId"].clone();
    finished(&student, job.as_str().expect("job")).await;

    let ops = app.client();
    let res = ops
        .register("ops@example.com", crate::helpers::PASSWORD, "Ops")
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    // Signing up grants nothing; an operator grants it on the machine.
    assert_eq!(ops.get("/api/users/me").await.body["admin"], false);
    assert_eq!(
        ops.get("/api/admin/queues").await.status,
        StatusCode::NOT_FOUND
    );
    let (granted, out) = admin_cli(&app, &["grant", "OPS@example.com"]);
    assert!(granted, "{out}");
    let (listed, out) = admin_cli(&app, &["list"]);
    assert!(listed && out.trim() == "ops@example.com", "{out}");
    let (unknown, out) = admin_cli(&app, &["grant", "nobody@example.com"]);
    assert!(!unknown && out.contains("no account"), "{out}");
    // The menu flag follows once the cached profile is refreshed.
    ops.patch("/api/users/me", json!({"bio": "on call"})).await;
    assert_eq!(ops.get("/api/users/me").await.body["admin"], true);
    let res = ops.get("/api/admin/queues").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["backend"], "database");
    let ai = &res.body["queues"][0];
    assert_eq!(
        (ai["name"].as_str(), ai["counts"]["failed"].as_u64()),
        (Some("ai-tasks"), Some(1))
    );
    let failure = &ai["recentFailures"][0];
    assert_eq!(failure["reason"], "AI provider not configured");
    assert!(
        failure.get("data").is_none(),
        "no user payloads on the admin page"
    );
}

/// Runs `tandem admin …` on the app's (embedded) data dir.
fn admin_cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("admin")
        .arg("--data-dir")
        .arg(&app.state.config.data_dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("TANDEM_ADMIN_EMAILS")
        .output()
        .expect("tandem runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn admin_by_listed_e_mail_is_refused_at_start() {
    let err = tandem_server::Config::from_lookup(|name| {
        (name == "TANDEM_ADMIN_EMAILS").then(|| "ops@example.com".to_owned())
    })
    .expect_err("TANDEM_ADMIN_EMAILS refused");
    assert!(err.to_string().contains("tandem admin grant"), "{err}");
}
