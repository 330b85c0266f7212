//! Session rules: rotation, cookie flags, timeouts, devices, revocation.

use chrono::Duration;
use reqwest::{StatusCode, header};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem};

crate::on_both_backends!(
    login_issues_a_new_session_id_and_ends_the_old_one,
    cookie_flags_are_safe,
    idle_sessions_expire,
    sessions_expire_at_the_absolute_limit_even_when_active,
    logout_ends_the_session_server_side,
    devices_can_be_listed_and_revoked,
    nobody_can_see_or_revoke_another_users_sessions,
);

async fn login_issues_a_new_session_id_and_ends_the_old_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, email) = app.signed_up().await;
    let before = client.cookie().expect("cookie after sign-up");
    assert_eq!(client.login(&email, PASSWORD).await.status, StatusCode::OK);
    let after = client.cookie().expect("cookie after login");
    assert_ne!(before, after, "login must issue a fresh session id");
    let replay = app.client();
    replay.set_cookie(Some(before));
    assert_problem(&replay.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
    assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);

    // A cookie planted before login (fixation) is never adopted.
    let victim = app.client();
    victim.set_cookie(Some(format!("tandem_session={}", "A".repeat(43))));
    victim.login(&email, PASSWORD).await;
    assert_ne!(
        victim.cookie(),
        Some(format!("tandem_session={}", "A".repeat(43)))
    );
}

async fn cookie_flags_are_safe(backend: Backend) {
    let insecure = TestApp::spawn(backend.clone()).await;
    let (client, email) = insecure.signed_up().await;
    let res = client.login(&email, PASSWORD).await;
    let cookie = set_cookie(&res.headers);
    assert!(cookie.starts_with("tandem_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "Secure set though disabled: {cookie}"
    );

    let secure = TestApp::spawn_with(backend, |c| c.accounts.cookie_secure = true).await;
    let res = secure
        .client()
        .register(&crate::helpers::unique_email(), PASSWORD, "S")
        .await;
    let cookie = set_cookie(&res.headers);
    assert!(cookie.starts_with("__Host-tandem_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
}

fn set_cookie(headers: &header::HeaderMap) -> String {
    headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn idle_sessions_expire(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.accounts.session_idle_timeout = std::time::Duration::from_secs(3600);
    })
    .await;
    let (client, _) = app.signed_up().await;
    app.clock.advance(Duration::minutes(59));
    assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);
    // Activity restarted the idle clock.
    app.clock.advance(Duration::minutes(59));
    assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(61));
    assert_problem(&client.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
}

async fn sessions_expire_at_the_absolute_limit_even_when_active(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.accounts.session_idle_timeout = std::time::Duration::from_secs(3600);
        c.accounts.session_absolute_timeout = std::time::Duration::from_secs(4 * 3600);
    })
    .await;
    let (client, _) = app.signed_up().await;
    for _ in 0..7 {
        app.clock.advance(Duration::minutes(30));
        assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::minutes(31));
    assert_problem(&client.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
}

async fn logout_ends_the_session_server_side(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, _) = app.signed_up().await;
    let cookie = client.cookie();
    let res = client.post("/api/auth/logout", serde_json::json!({})).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert!(set_cookie(&res.headers).contains("Max-Age=0"));
    let replay = app.client();
    replay.set_cookie(cookie);
    assert_problem(&replay.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
}

async fn devices_can_be_listed_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (laptop, email) = app.signed_up().await;
    let phone = app.client();
    let tablet = app.client();
    phone.login(&email, PASSWORD).await;
    tablet.login(&email, PASSWORD).await;
    let list = laptop.get("/api/auth/sessions").await.body;
    let sessions = list.as_array().expect("a list");
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(sessions.iter().all(|s| s["user_agent"] == "tandem-tests"));

    let phone_id = phone
        .get("/api/auth/sessions")
        .await
        .body
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|s| s["current"] == true)
                .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        })
        .expect("phone's session");
    let res = laptop
        .delete(&format!("/api/auth/sessions/{phone_id}"), None)
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_problem(&phone.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
    assert_eq!(tablet.get("/api/users/me").await.status, StatusCode::OK);

    let res = laptop.delete("/api/auth/sessions", None).await;
    assert_eq!(res.body["revoked"], 1);
    assert_problem(&tablet.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
    assert_eq!(laptop.get("/api/users/me").await.status, StatusCode::OK);
    assert_eq!(
        laptop
            .get("/api/auth/sessions")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn nobody_can_see_or_revoke_another_users_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, _) = app.signed_up().await;
    let (mallory, _) = app.signed_up().await;
    let alice_sessions = alice.get("/api/auth/sessions").await.body;
    let alice_id = alice_sessions[0]["id"].as_str().expect("id").to_owned();
    let mallory_sessions = mallory.get("/api/auth/sessions").await.body;
    assert!(
        mallory_sessions
            .as_array()
            .is_some_and(|l| l.iter().all(|s| s["id"] != alice_id.as_str())),
        "mallory sees alice's session"
    );
    let res = mallory
        .delete(&format!("/api/auth/sessions/{alice_id}"), None)
        .await;
    assert_problem(&res, StatusCode::NOT_FOUND);
    assert_eq!(alice.get("/api/users/me").await.status, StatusCode::OK);
    mallory.delete("/api/auth/sessions", None).await;
    assert_eq!(alice.get("/api/users/me").await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_writes_are_refused() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (client, _) = app.signed_up().await;
    let cookie = client.cookie().unwrap_or_default();
    let http = reqwest::Client::new();
    let send = |origin: String| {
        http.post(format!("{}/api/auth/logout", app.url))
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, origin)
            .send()
    };
    let refused = send("https://evil.example".into()).await.expect("sent");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        client.get("/api/users/me").await.status,
        StatusCode::OK,
        "cross-site logout worked"
    );
    let allowed = send(app.url.clone()).await.expect("sent");
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_problem(&client.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
}
