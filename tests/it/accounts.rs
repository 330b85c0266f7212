//! Sign-up, login, profile, password change, account deletion.

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{Backend, Client, PASSWORD, TestApp, assert_problem, unique_email};

crate::on_both_backends!(
    sign_up_logs_in_and_normalizes_the_email,
    an_email_can_only_register_once,
    bad_credentials_get_one_generic_answer,
    profile_edits_are_saved_and_validated,
    public_profiles_hide_the_email,
    password_change_logs_out_every_other_session,
    deleting_the_account_needs_the_password_and_ends_everything,
    login_attempts_are_limited_per_account,
    login_attempts_are_limited_per_ip,
    password_guesses_by_deletion_are_limited,
    control_characters_in_the_login_e_mail_are_unknown_accounts,
);

async fn sign_up_logs_in_and_normalizes_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.client();
    let email = unique_email();
    let res = client
        .register(&format!("  {}  ", email.to_uppercase()), PASSWORD, " Ada ")
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["email"], email);
    assert_eq!(res.body["display_name"], "Ada");
    let me = client.get("/api/users/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], res.body["id"]);
    assert_eq!(me.body["profile"]["timezone"], "UTC");
}

async fn an_email_can_only_register_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, email) = app.signed_up().await;
    let res = app
        .client()
        .register(&email.to_uppercase(), "another long passphrase", "Copy")
        .await;
    assert_problem(&res, StatusCode::CONFLICT);
}

async fn bad_credentials_get_one_generic_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, email) = app.signed_up().await;
    let client = app.client();
    let wrong_password = client.login(&email, "not the password at all").await;
    let unknown_user = client.login(&unique_email(), PASSWORD).await;
    assert_problem(&wrong_password, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body, unknown_user.body);
    assert!(client.cookie().is_none());
    let ok = client
        .login(&format!(" {} ", email.to_uppercase()), PASSWORD)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

async fn profile_edits_are_saved_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, _) = app.signed_up().await;
    let edit = json!({
        "display_name": "Grace",
        "subjects": ["Linear Algebra", "Compilers", "linear algebra"],
        "level": "advanced",
        "study_style": "discussion",
        "goals": "Finish the thesis",
        "timezone": "America/New_York",
        "availability": [{"day": "tue", "start": "18:00", "end": "21:30"}],
        "bio": "Night owl.",
        "avatar_url": "https://example.com/grace.png"
    });
    let res = client.patch("/api/users/me", edit).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let me = client.get("/api/users/me").await.body;
    assert_eq!(me["display_name"], "Grace");
    assert_eq!(
        me["profile"]["subjects"],
        json!(["Linear Algebra", "Compilers"])
    );
    assert_eq!(me["profile"]["level"], "advanced");
    assert_eq!(me["profile"]["availability"][0]["end"], "21:30");
    assert_eq!(me["profile"]["avatar_url"], "https://example.com/grace.png");

    // null clears a nullable field; absent fields stay.
    let res = client
        .patch("/api/users/me", json!({"level": null, "avatar_url": null}))
        .await;
    assert_eq!(res.body["profile"]["level"], json!(null));
    assert_eq!(res.body["profile"]["avatar_url"], json!(null));
    assert_eq!(res.body["profile"]["study_style"], "discussion");

    // One bad field rejects the whole edit, and says which fields were wrong.
    let res = client
        .patch(
            "/api/users/me",
            json!({"bio": "changed", "timezone": "Mars/Olympus", "display_name": ""}),
        )
        .await;
    assert_problem(&res, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = res.body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["display_name", "timezone"]);
    let me = client.get("/api/users/me").await.body;
    assert_eq!(me["profile"]["bio"], "Night owl.");
}

async fn public_profiles_hide_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, _) = app.signed_up().await;
    let (bob, _) = app.signed_up().await;
    let alice_id = alice.get("/api/users/me").await.body["id"].clone();
    let res = bob
        .get(&format!(
            "/api/users/{}",
            alice_id.as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["id"], alice_id);
    assert!(
        res.body.get("email").is_none(),
        "e-mail leaked: {}",
        res.body
    );
    let anonymous = app
        .client()
        .get(&format!(
            "/api/users/{}",
            alice_id.as_str().unwrap_or_default()
        ))
        .await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED);
    let missing = bob
        .get(&format!("/api/users/{}", uuid::Uuid::new_v4()))
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

async fn password_change_logs_out_every_other_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (laptop, email) = app.signed_up().await;
    let phone = app.client();
    assert_eq!(phone.login(&email, PASSWORD).await.status, StatusCode::OK);
    let old_laptop_cookie = laptop.cookie();

    let wrong = laptop
        .post(
            "/api/auth/password",
            json!({"current_password": "not my password", "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(phone.get("/api/users/me").await.status, StatusCode::OK);

    let res = laptop
        .post(
            "/api/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_ne!(laptop.cookie(), old_laptop_cookie, "session id must rotate");
    assert_eq!(laptop.get("/api/users/me").await.status, StatusCode::OK);
    assert_problem(&phone.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
    let replay = app.client();
    replay.set_cookie(old_laptop_cookie);
    assert_problem(&replay.get("/api/users/me").await, StatusCode::UNAUTHORIZED);
    assert_problem(
        &app.client().login(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    );
    let fresh = app.client();
    assert_eq!(
        fresh.login(&email, "a brand new passphrase").await.status,
        StatusCode::OK
    );
}

async fn deleting_the_account_needs_the_password_and_ends_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, email) = app.signed_up().await;
    let other_device = app.client();
    other_device.login(&email, PASSWORD).await;
    let wrong = client
        .delete(
            "/api/users/me",
            Some(json!({"password": "definitely wrong"})),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);

    let res = client
        .delete("/api/users/me", Some(json!({"password": PASSWORD})))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert!(client.cookie().is_none(), "cookie must be cleared");
    assert_problem(
        &other_device.get("/api/users/me").await,
        StatusCode::UNAUTHORIZED,
    );
    assert_problem(
        &app.client().login(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    );
    // The address is free again.
    let again = app.client().register(&email, PASSWORD, "Back again").await;
    assert_eq!(again.status, StatusCode::CREATED);
}

/// Wrong guesses lock the (account, address) pair: the guesser waits, the
/// owner signing in from elsewhere does not (a stranger could otherwise
/// lock anyone out); an account-wide budget of ten times that stops
/// guessing spread over many addresses.
async fn login_attempts_are_limited_per_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.accounts.login_max_per_account = 3;
        c.http.trust_proxy = true;
    })
    .await;
    let (_, email) = app.signed_up().await;
    let attacker = Client::from_ip(&app.url, "203.0.113.9");
    for _ in 0..3 {
        let res = attacker.login(&email, "guessing wrongly").await;
        assert_problem(&res, StatusCode::UNAUTHORIZED);
    }
    let limited = attacker.login(&email, "guessing wrongly").await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    // Even the right password waits, from the guessing address.
    let right = attacker.login(&email, PASSWORD).await;
    assert_problem(&right, StatusCode::TOO_MANY_REQUESTS);
    // The owner, elsewhere, signs in.
    let owner = Client::from_ip(&app.url, "198.51.100.7");
    assert_eq!(owner.login(&email, PASSWORD).await.status, StatusCode::OK);
    // Guesses from many addresses share the account's budget of 30, of
    // which four went to the attacker's three guesses and the owner's login.
    for i in 0..26 {
        let guesser = Client::from_ip(&app.url, &format!("192.0.2.{i}"));
        let res = guesser.login(&email, "guessing wrongly").await;
        assert_problem(&res, StatusCode::UNAUTHORIZED);
    }
    let spread = Client::from_ip(&app.url, "192.0.2.200");
    assert_problem(
        &spread.login(&email, "guessing wrongly").await,
        StatusCode::TOO_MANY_REQUESTS,
    );
    // Other accounts are unaffected.
    let (_, other) = app.signed_up().await;
    assert_eq!(
        attacker.login(&other, PASSWORD).await.status,
        StatusCode::OK
    );
}

/// Password guesses through account deletion share the password budget.
async fn password_guesses_by_deletion_are_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.accounts.login_max_per_account = 3).await;
    let (client, _) = app.signed_up().await;
    let guess = json!({"password": "guessing wrongly"});
    for _ in 0..3 {
        let res = client.delete("/api/users/me", Some(guess.clone())).await;
        assert_problem(&res, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = client.delete("/api/users/me", Some(guess)).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(client.get("/api/users/me").await.status, StatusCode::OK);
}

/// A NUL or other control character in the e-mail is an unknown account
/// (401), on PostgreSQL too (which refuses NUL in text).
async fn control_characters_in_the_login_e_mail_are_unknown_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for email in ["a\u{0}b@example.com", "\u{0}", "x@example.com\u{7}"] {
        assert_problem(
            &app.client().login(email, PASSWORD).await,
            StatusCode::UNAUTHORIZED,
        );
    }
}

async fn login_attempts_are_limited_per_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.accounts.login_max_per_ip = 4).await;
    let client = app.client();
    for _ in 0..4 {
        assert_problem(
            &client.login(&unique_email(), PASSWORD).await,
            StatusCode::UNAUTHORIZED,
        );
    }
    let res = client.login(&unique_email(), PASSWORD).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS);
}

/// With Redis, the limit is one budget shared by every instance.
#[tokio::test]
async fn the_login_limit_is_shared_across_instances() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |c: &mut tandem_server::Config| {
        c.accounts.login_max_per_account = 4;
        c.redis.prefix = prefix.clone();
    };
    let first = TestApp::spawn_with(backend.clone(), shared).await;
    let second = TestApp::spawn_with(backend, shared).await;
    let (_, email) = first.signed_up().await;
    for app in [&first, &second, &first, &second] {
        assert_problem(
            &app.client().login(&email, "wrong guess here").await,
            StatusCode::UNAUTHORIZED,
        );
    }
    for app in [&first, &second] {
        assert_problem(
            &app.client().login(&email, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
}

/// With two instances sharing Redis, an edit through one is read back
/// through the other at once, though both cache the profile.
#[tokio::test]
async fn a_profile_edit_on_one_instance_is_read_on_the_other() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |c: &mut tandem_server::Config| c.redis.prefix = prefix.clone();
    let first = TestApp::spawn_with(backend.clone(), shared).await;
    let second = TestApp::spawn_with(backend, shared).await;
    let (on_first, _) = first.signed_up().await;
    let on_second = crate::helpers::Client::new(&second.url);
    on_second.set_cookie(on_first.cookie());
    for round in 0..20 {
        // Both instances now hold the profile in their caches.
        assert_eq!(on_second.get("/api/users/me").await.status, StatusCode::OK);
        assert_eq!(on_first.get("/api/users/me").await.status, StatusCode::OK);
        let bio = format!("edit {round}");
        let (writer, reader) = if round % 2 == 0 {
            (&on_first, &on_second)
        } else {
            (&on_second, &on_first)
        };
        assert_eq!(
            writer
                .patch("/api/users/me", json!({"bio": bio}))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            reader.get("/api/users/me").await.body["profile"]["bio"],
            bio,
            "stale read in round {round}"
        );
    }
}
