//! ICE servers for video calls: TURN credentials are short-lived, per user,
//! and verifiable by any TURN server that knows the shared secret (coturn's
//! `use-auth-secret`).

use std::process::Command;

use reqwest::StatusCode;
use tandem_core::{Clock, SecretString};

use crate::helpers::{Backend, TestApp};

/// base64(HMAC-SHA1(secret, text)), computed by openssl, not by Tandem.
fn openssl_hmac(secret: &str, text: &str) -> String {
    let script =
        format!("printf '%s' '{text}' | openssl dgst -sha1 -hmac '{secret}' -binary | base64");
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn turn_credentials_are_short_lived_and_per_user() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.ice.stun_urls = vec!["stun:turn.example.org:3478".into()];
        c.ice.turn_urls = vec![
            "turn:turn.example.org:3478?transport=udp".into(),
            "turns:turn.example.org:5349?transport=tcp".into(),
        ];
        c.ice.turn_secret = Some(SecretString::from("north-wind".to_owned()));
    })
    .await;
    assert_eq!(
        app.client().get("/api/webrtc/ice-servers").await.status,
        StatusCode::UNAUTHORIZED
    );
    let (student, _) = app.signed_up().await;
    let id = student.get("/api/users/me").await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = student.get("/api/webrtc/ice-servers").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.headers["cache-control"], "no-store");
    assert_eq!(res.body["ttl"], 4 * 3600);
    let servers = res.body["iceServers"].as_array().expect("servers");
    assert_eq!(servers[0]["urls"][0], "stun:turn.example.org:3478");
    assert!(servers[0].get("credential").is_none());
    let turn = &servers[1];
    assert_eq!(turn["urls"].as_array().map(Vec::len), Some(2));
    let username = turn["username"].as_str().expect("username");
    let expires = app.clock.now().timestamp() + 4 * 3600;
    assert_eq!(username, format!("{expires}:{id}"));
    assert_eq!(turn["credential"], openssl_hmac("north-wind", username));
}

#[tokio::test]
async fn fixed_credentials_only_when_configured_and_no_turn_without_any() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.ice.turn_urls = vec!["turn:relay.example.com:3478".into()];
        c.ice.turn_static = Some(("shared".into(), SecretString::from("pw".to_owned())));
    })
    .await;
    let (student, _) = app.signed_up().await;
    let res = student.get("/api/webrtc/ice-servers").await;
    assert_eq!(res.body["iceServers"][0]["username"], "shared");
    assert_eq!(res.body["iceServers"][0]["credential"], "pw");

    let bare = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = bare.signed_up().await;
    let res = student.get("/api/webrtc/ice-servers").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["iceServers"], serde_json::json!([]));
}
