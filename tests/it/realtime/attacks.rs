//! Hostile room members and strangers against the realtime endpoint (issue
//! 18, findings 5, 7, 8, 15 and 17), each attack performed over a real
//! WebSocket against a real server. Ending access (finding 6) is in
//! `revocation.rs`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Error as WsError, Message, client::IntoClientRequest, http::HeaderValue},
};

use super::{HOUR, Ws, schedule_room, user};
use crate::helpers::{Backend, TestApp};

/// Opens a socket with extra headers; the refusal's HTTP status if refused.
pub(crate) async fn try_open(
    base: &str,
    query: &str,
    headers: &[(&'static str, String)],
) -> Result<Ws, u16> {
    let url = format!(
        "{}/realtime/v1/websocket?{query}",
        base.replace("http", "ws")
    );
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).expect("header");
        request.headers_mut().insert(*name, value);
    }
    match connect_async(request).await {
        Ok((stream, _)) => Ok(Ws(stream)),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
    }
}

/// A server broadcast (kind 4) taken apart: event, `meta`, payload.
pub(crate) fn kind4(message: Option<Message>) -> (String, Value, Value) {
    let Some(Message::Binary(b)) = message else {
        panic!("expected a binary broadcast, got {message:?}")
    };
    let (topic, event, meta) = (usize::from(b[1]), usize::from(b[2]), usize::from(b[3]));
    let at = 5 + topic;
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).into_owned();
    let meta_json =
        serde_json::from_str(&text(at + event..at + event + meta)).unwrap_or(Value::Null);
    let payload = serde_json::from_slice(&b[at + event + meta..]).expect("json payload");
    (text(at..at + event), meta_json, payload)
}

fn broadcast(topic: &str, event: &str, payload: Value) -> Value {
    json!(["1", "9", topic, "broadcast", {"type": "broadcast", "event": event, "payload": payload}])
}

/// The socket's next frame is the reply to a heartbeat sent now: nothing
/// else was queued for it.
pub(crate) async fn nothing_queued(ws: &mut Ws, what: &str) {
    ws.push(json!([null, "hb", "phoenix", "heartbeat", {}]))
        .await;
    let frame = ws.next().await;
    let text = match &frame {
        Some(Message::Text(t)) => t.to_string(),
        other => panic!("{what}: expected the heartbeat reply, got {other:?}"),
    };
    assert!(text.contains(r#""hb""#), "{what}: {text}");
}

/// Finding 5: a member cannot pass for the server or for another member.
#[tokio::test]
async fn members_cannot_forge_server_events_or_other_members() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (owner, owner_id, owner_token) = user(&app, HOUR).await;
    let (member, member_id, member_token) = user(&app, HOUR).await;
    let room = schedule_room(&owner).await;
    member
        .post(&format!("/api/study-sessions/{room}/join"), json!({}))
        .await;
    let topic = format!("realtime:room:{room}");
    let mut victim = Ws::v2(&app.url, &owner_token).await;
    victim.join(&topic, "1", json!({})).await;
    let mut browser = Ws::open(&app.url, "vsn=1.0.0", owner.cookie()).await;
    browser.push(json!({"topic": topic, "event": "phx_join", "payload": {"config": {}}, "ref": "1", "join_ref": "1"})).await;
    assert_eq!(browser.next_json().await["payload"]["status"], "ok");
    browser.next_json().await; // presence_state
    let mut forger = Ws::v2(&app.url, &member_token).await;
    // Asks for the owner's presence key: the server keys presence by user id.
    forger
        .join(
            &topic,
            "1",
            json!({"broadcast": {"ack": true}, "presence": {"key": owner_id.to_string()}}),
        )
        .await;

    // A fake stored message, as the server's own `messages` batch.
    let fake = json!([{"id": "x", "user_id": owner_id, "body": "I quit", "created_at": "2026-01-01T00:00:00Z"}]);
    forger
        .push(broadcast(&topic, "messages", fake.clone()))
        .await;
    let refused = forger.next_reply().await;
    assert_eq!(refused[4]["status"], "error", "{refused}");
    assert!(
        refused[4]["response"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("reserved"))
    );
    nothing_queued(&mut victim, "a forged `messages` broadcast was relayed").await;

    // Signalling and typing claiming to be the owner arrive stamped with the real sender.
    let bye = json!({"from": "owner-call", "user": owner_id, "kind": "bye"});
    forger.push(broadcast(&topic, "rtc", bye.clone())).await;
    assert_eq!(forger.next_reply().await[4]["status"], "ok");
    let (event, meta, payload) = kind4(victim.next().await);
    assert_eq!((event.as_str(), &payload), ("rtc", &bye));
    assert_eq!(
        meta["sender"],
        member_id.to_string(),
        "the stamp names the real sender"
    );
    let v1 = browser.next_json().await;
    assert_eq!(
        v1["payload"]["meta"]["sender"],
        member_id.to_string(),
        "{v1}"
    );
    // A payload `meta` of its own changes nothing.
    forger
        .push(
            json!(["1", "10", topic, "broadcast", {"type": "broadcast", "event": "typing",
            "payload": {"user_id": owner_id}, "meta": {"sender": owner_id}}]),
        )
        .await;
    forger.next_reply().await;
    let (_, meta, _) = kind4(victim.next().await);
    assert_eq!(meta["sender"], member_id.to_string());

    // Presence under the forger's own id, not the key it asked for.
    forger
        .push(json!(["1", "11", topic, "presence", {"type": "presence", "event": "track", "payload": {"name": "Owner"}}]))
        .await;
    assert_eq!(forger.next_reply().await[4]["status"], "ok");
    let mut diff = victim.next_json().await;
    while diff[3] != "presence_diff" {
        diff = victim.next_json().await;
    }
    assert!(
        diff[4]["joins"][member_id.to_string()].is_object(),
        "{diff}"
    );
    assert!(diff[4]["joins"][owner_id.to_string()].is_null(), "{diff}");

    // The REST endpoint: the same reserved names, the same stamp.
    let rest = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/realtime/v1/api/broadcast", app.url))
            .bearer_auth(&member_token)
            .json(&body)
            .send()
    };
    let forged = json!({"messages": [{"topic": format!("room:{room}"), "event": "messages", "payload": fake}]});
    assert_eq!(rest(forged).await.expect("sent").status().as_u16(), 422);
    let fine = json!({"messages": [{"topic": format!("room:{room}"), "event": "note", "payload": {"n": 1}}]});
    assert_eq!(rest(fine).await.expect("sent").status().as_u16(), 202);
    let mut next = victim.next().await;
    while matches!(next, Some(Message::Text(_))) {
        next = victim.next().await; // presence traffic
    }
    let (event, meta, _) = kind4(next);
    assert_eq!(
        (event.as_str(), &meta["sender"]),
        ("note", &json!(member_id.to_string()))
    );
}

/// Finding 8: ~17 sockets × 60 KiB metas made `presence_state` too big to
/// send. Metas are capped in size and in number per user and per topic.
#[tokio::test]
async fn presence_cannot_be_inflated_past_its_bounds() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.realtime.guards.presence_per_topic = 12;
    })
    .await;
    let (_, _, token) = user(&app, HOUR).await;
    let topic = "realtime:inflated";
    let track = |payload: Value| json!(["1", "2", topic, "presence", {"type": "presence", "event": "track", "payload": payload}]);
    let mut sockets = Vec::new();
    let mut refused = 0;
    for i in 0..17 {
        let mut ws = Ws::v2(&app.url, &token).await;
        ws.join(topic, "1", json!({})).await;
        ws.push(track(json!({"blob": "x".repeat(60 * 1024 - 100)})))
            .await;
        let reply = ws.next_reply().await;
        assert_eq!(
            reply[4]["status"], "error",
            "a 60 KiB meta was accepted: socket {i}"
        );
        ws.push(track(json!({"n": i}))).await;
        if ws.next_reply().await[4]["status"] == "error" {
            refused += 1;
        }
        sockets.push(ws);
    }
    assert_eq!(
        refused, 7,
        "one user tracks from at most 10 sockets per channel"
    );
    let mut others = 0;
    for _ in 0..4 {
        let (_, _, other) = user(&app, HOUR).await;
        let mut ws = Ws::v2(&app.url, &other).await;
        ws.join(topic, "1", json!({})).await;
        ws.push(track(json!({"name": "late"}))).await;
        if ws.next_reply().await[4]["status"] == "ok" {
            others += 1;
        }
        sockets.push(ws);
    }
    assert_eq!(others, 2, "the channel holds at most 12 presences");
    let (_, _, newcomer) = user(&app, HOUR).await;
    let (reply, state) = Ws::v2(&app.url, &newcomer)
        .await
        .join_with_state(topic, "1", json!({}))
        .await;
    assert_eq!(reply["status"], "ok");
    let metas: usize = state.as_object().map_or(0, |s| {
        s.values()
            .map(|v| v["metas"].as_array().map_or(0, Vec::len))
            .sum()
    });
    assert_eq!(metas, 12, "{state}");
}

/// Finding 7: the REST broadcast endpoint had no rate limit at all.
#[tokio::test]
async fn rest_broadcasts_spend_the_same_budgets() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let http = reqwest::Client::new();
    let batch =
        json!({"messages": vec![json!({"topic": "flood", "event": "e", "payload": {}}); 100]});
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let res = http
            .post(format!("{}/realtime/v1/api/broadcast", app.url))
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .expect("sent");
        statuses.push(res.status().as_u16());
    }
    assert!(
        statuses.contains(&429),
        "1,000 messages at once went through: {statuses:?}"
    );
    assert_eq!(statuses[0], 202);
}

/// Finding 15: heartbeats skipped the per-connection budget.
#[tokio::test]
async fn heartbeats_spend_the_connection_budget() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| c.realtime.messages_per_second = 20).await;
    let (_, _, token) = user(&app, HOUR).await;
    let mut ws = Ws::v2(&app.url, &token).await;
    for n in 0..100 {
        ws.push(json!([null, n.to_string(), "phoenix", "heartbeat", {}]))
            .await;
    }
    let mut limited = 0;
    for _ in 0..100 {
        if ws.next_reply().await[4]["status"] == "error" {
            limited += 1;
        }
    }
    assert!(
        limited >= 50,
        "only {limited} of 100 rapid heartbeats were limited"
    );
}

/// Finding 15: unauthenticated sockets were uncapped and could idle forever.
#[tokio::test]
async fn unauthenticated_sockets_are_capped_and_must_join_soon() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.realtime.guards.max_anonymous = 3;
        c.realtime.guards.auth_deadline = Duration::from_secs(1);
    })
    .await;
    let (_, _, token) = user(&app, HOUR).await;
    let mut strangers = Vec::new();
    for _ in 0..3 {
        strangers.push(
            try_open(&app.url, "vsn=2.0.0", &[])
                .await
                .expect("under the cap"),
        );
    }
    assert_eq!(try_open(&app.url, "vsn=2.0.0", &[]).await.err(), Some(503));
    let mut member = try_open(&app.url, &format!("apikey={token}&vsn=2.0.0"), &[])
        .await
        .expect("a socket with a token is not a stranger");
    for stranger in &mut strangers {
        match stranger.next_within(Duration::from_secs(5)).await {
            None | Some(Message::Close(_)) => {}
            other => panic!("a silent stranger was kept: {other:?}"),
        }
    }
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut again = loop {
        // Slots come back as the closed sockets are dropped.
        match try_open(&app.url, "vsn=2.0.0", &[]).await {
            Ok(ws) => break ws,
            Err(status) => assert!(
                tokio::time::Instant::now() < deadline,
                "no slot came back: {status}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    again
        .push(
            json!(["1", "1", "realtime:lobby", "phx_join", {"config": {}, "access_token": token}]),
        )
        .await;
    let reply = again.next_reply().await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    assert_eq!(again.next_json().await[3], "presence_state");
    deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        nothing_queued(&mut again, "a socket that joined in time is kept").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        member.join("realtime:lobby", "1", json!({})).await["status"],
        "ok"
    );
}

/// Finding 17: a page on another origin could open a socket on the
/// visitor's session cookie.
#[tokio::test]
async fn cross_origin_pages_cannot_ride_the_session_cookie() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.realtime.guards.allowed_origins = vec!["https://app.example.org".into()];
    })
    .await;
    let (client, id, token) = user(&app, HOUR).await;
    let cookie = client.cookie().expect("cookie");
    let with = |origin: &str| vec![("cookie", cookie.clone()), ("origin", origin.to_owned())];
    assert_eq!(
        try_open(&app.url, "vsn=2.0.0", &with("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let topic = format!("realtime:user:{id}");
    for origin in [app.url.as_str(), "https://app.example.org"] {
        let mut ws = try_open(&app.url, "vsn=2.0.0", &with(origin))
            .await
            .expect(origin);
        assert_eq!(
            ws.join(&topic, "1", json!({})).await["status"],
            "ok",
            "{origin}"
        );
    }
    // With a token a foreign page may connect, but the cookie is ignored.
    let query = format!("apikey={token}&vsn=2.0.0");
    let mut ws = try_open(&app.url, &query, &with("https://evil.example"))
        .await
        .expect("token");
    assert_eq!(ws.join(&topic, "1", json!({})).await["status"], "ok");
    let mut bad = try_open(
        &app.url,
        "apikey=forged&vsn=2.0.0",
        &with("https://evil.example"),
    )
    .await
    .expect("upgrade");
    assert_eq!(
        bad.join(&topic, "1", json!({})).await["status"],
        "error",
        "the cookie was used"
    );
}
