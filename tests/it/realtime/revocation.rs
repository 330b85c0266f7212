//! Finding 6 of issue 18: realtime access was checked only at join. Now
//! ending a session (logout, device revocation, password change, account
//! deletion) closes the sockets relying on it, and leaving a room closes
//! its channel, within 2 s, also on another instance than the request's.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{HOUR, Ws, attacks::nothing_queued, schedule_room};
use crate::helpers::{Backend, Client, PASSWORD, TestApp, unique_email};

const PROMPTLY: Duration = Duration::from_secs(2);

async fn token_of(client: &Client) -> String {
    let res = client.post("/api/realtime/token", json!({})).await;
    res.body["access_token"].as_str().expect("token").to_owned()
}

async fn id_of(client: &Client) -> String {
    let me = client.get("/api/users/me").await.body;
    me["id"].as_str().expect("id").to_owned()
}

/// A socket joined to the user's own topic: by cookie, or by token.
async fn joined(base: &str, user: &str, cookie: Option<String>, token: Option<&str>) -> Ws {
    let mut ws = match token {
        Some(token) => Ws::v2(base, token).await,
        None => Ws::open(base, "vsn=2.0.0", cookie).await,
    };
    let reply = ws
        .join(&format!("realtime:user:{user}"), "1", json!({}))
        .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    ws
}

/// The server closes `ws` within [`PROMPTLY`].
async fn closed(ws: &mut Ws, what: &str) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = tokio::time::timeout(left, ws.0.next()).await;
        match frame {
            Err(_) => panic!("{what}: the socket was still open after {PROMPTLY:?}"),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn ending_a_session_closes_its_sockets() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (laptop, email) = app.signed_up().await;
    let id = id_of(&laptop).await;
    let phone = app.client();
    phone.login(&email, PASSWORD).await;
    let laptop_token = token_of(&laptop).await;
    let mut by_cookie = joined(&app.url, &id, laptop.cookie(), None).await;
    let mut by_token = joined(&app.url, &id, None, Some(&laptop_token)).await;
    let mut on_phone = joined(&app.url, &id, None, Some(&token_of(&phone).await)).await;

    assert_eq!(
        laptop
            .post("/api/auth/logout", json!({}))
            .await
            .status
            .as_u16(),
        204
    );
    closed(&mut by_cookie, "logout, cookie socket").await;
    closed(&mut by_token, "logout, token socket").await;
    nothing_queued(&mut on_phone, "another session's socket stays").await;
    let mut reused = Ws::v2(&app.url, &laptop_token).await;
    let reply = reused
        .join(&format!("realtime:user:{id}"), "1", json!({}))
        .await;
    assert_eq!(
        reply["status"], "error",
        "a logged-out session's token joined: {reply}"
    );

    // Device revocation, from the phone.
    let tablet = app.client();
    tablet.login(&email, PASSWORD).await;
    let mut on_tablet = joined(&app.url, &id, tablet.cookie(), None).await;
    let sessions = phone.get("/api/auth/sessions").await.body;
    let other = sessions
        .as_array()
        .and_then(|l| l.iter().find(|s| s["current"] == false))
        .and_then(|s| s["id"].as_str())
        .expect("the tablet's session")
        .to_owned();
    let res = phone
        .delete(&format!("/api/auth/sessions/{other}"), None)
        .await;
    assert_eq!(res.status.as_u16(), 204);
    closed(&mut on_tablet, "device revocation").await;
    nothing_queued(&mut on_phone, "the revoking device's socket stays").await;

    // A password change ends every session, and tokens tied to none.
    let uuid = id.parse().expect("uuid");
    let (plain, _) = app.state.live.tokens.issue(uuid, HOUR);
    let mut unbound = joined(&app.url, &id, None, Some(&plain)).await;
    let change =
        json!({"current_password": PASSWORD, "new_password": "another horse battery staple"});
    assert_eq!(
        phone
            .post("/api/auth/password", change)
            .await
            .status
            .as_u16(),
        204
    );
    closed(&mut on_phone, "password change").await;
    closed(&mut unbound, "password change, unbound token").await;

    // Account deletion.
    let mut last = joined(&app.url, &id, phone.cookie(), None).await;
    let res = phone
        .delete(
            "/api/users/me",
            Some(json!({"password": "another horse battery staple"})),
        )
        .await;
    assert_eq!(res.status.as_u16(), 204, "{}", res.body);
    closed(&mut last, "account deletion").await;
}

/// The channel-closing frames a socket gets when its access to `topic` ends.
async fn channel_closed(ws: &mut Ws, topic: &str) {
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|f| f[3] == "phx_close") {
        let frame = ws.next_json_within(PROMPTLY).await;
        if frame[3] == "system" {
            assert_eq!(frame[2], topic, "{frame}");
        }
        seen.push(frame);
    }
    assert!(seen.iter().any(|f| f[3] == "system"), "{seen:?}");
}

#[tokio::test]
async fn leaving_a_room_ends_its_live_chat() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (owner, _) = app.signed_up().await;
    let (member, _) = app.signed_up().await;
    let room = schedule_room(&owner).await;
    member
        .post(&format!("/api/study-sessions/{room}/join"), json!({}))
        .await;
    let topic = format!("realtime:room:{room}");
    let mut ws = Ws::v2(&app.url, &token_of(&member).await).await;
    assert_eq!(ws.join(&topic, "1", json!({})).await["status"], "ok");

    let res = member
        .post(&format!("/api/study-sessions/{room}/leave"), json!({}))
        .await;
    assert_eq!(res.status.as_u16(), 200, "{}", res.body);
    channel_closed(&mut ws, &topic).await;
    let path = format!("/api/study-sessions/{room}/messages");
    assert_eq!(
        owner
            .post(&path, json!({"body": "after you left"}))
            .await
            .status
            .as_u16(),
        201
    );
    nothing_queued(&mut ws, "a former member still hears the room").await;
    assert_eq!(ws.join(&topic, "2", json!({})).await["status"], "error");
}

#[tokio::test]
async fn revocations_reach_sockets_on_other_instances() {
    use crate::multi_instance::Instance;
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
    let first = Instance::start(&backend, &prefix, dir.path()).await;
    let second = Instance::start(&backend, &prefix, dir.path()).await;
    let sign_up = |url: String| async move {
        let client = Client::new(&url);
        let res = client.register(&unique_email(), PASSWORD, "Across").await;
        assert_eq!(res.status.as_u16(), 201);
        client
    };
    let owner = sign_up(second.url.clone()).await;
    let member = sign_up(second.url.clone()).await;
    let room = schedule_room(&owner).await;
    member
        .post(&format!("/api/study-sessions/{room}/join"), json!({}))
        .await;
    let topic = format!("realtime:room:{room}");
    let id = id_of(&member).await;
    let mut in_room = Ws::v2(&first.url, &token_of(&member).await).await;
    assert_eq!(in_room.join(&topic, "1", json!({})).await["status"], "ok");
    let mut by_cookie = joined(&first.url, &id, member.cookie(), None).await;

    let res = member
        .post(&format!("/api/study-sessions/{room}/leave"), json!({}))
        .await;
    assert_eq!(res.status.as_u16(), 200);
    channel_closed(&mut in_room, &topic).await;
    assert_eq!(
        member
            .post("/api/auth/logout", json!({}))
            .await
            .status
            .as_u16(),
        204
    );
    closed(&mut by_cookie, "logout through the other instance").await;
    closed(&mut in_room, "its token's session ended too").await;
    first.stop().await;
    second.stop().await;
}
