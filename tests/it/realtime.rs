//! The realtime endpoint over raw WebSocket frames: both serializers, binary
//! broadcasts, heartbeats, authorization, token expiry, limits, bad frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::{Backend, TestApp};

mod attacks;
mod revocation;

/// The first presence meta tracked with `name`, under whatever key.
fn meta_named<'a>(state: &'a Value, name: &str) -> Option<&'a Value> {
    state
        .as_object()?
        .values()
        .flat_map(|v| v["metas"].as_array().into_iter().flatten())
        .find(|m| m["name"] == name)
}

pub(crate) struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    pub(crate) async fn open(base: &str, query: &str, cookie: Option<String>) -> Self {
        let url = format!(
            "{}/realtime/v1/websocket?{query}",
            base.replace("http", "ws")
        );
        let mut request = url.into_client_request().expect("request");
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", HeaderValue::from_str(&cookie).expect("cookie"));
        }
        let (stream, _) = connect_async(request).await.expect("websocket handshake");
        Self(stream)
    }

    pub(crate) async fn v2(base: &str, token: &str) -> Self {
        Self::open(base, &format!("apikey={token}&vsn=2.0.0"), None).await
    }

    pub(crate) async fn send(&mut self, message: Message) {
        self.0.send(message).await.expect("send");
    }

    pub(crate) async fn push(&mut self, frame: Value) {
        self.send(Message::Text(frame.to_string().into())).await;
    }

    /// The next frame (bounded wait); `None` once the connection is closed.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        self.next_within(Duration::from_secs(5)).await
    }

    pub(crate) async fn next_within(&mut self, limit: Duration) -> Option<Message> {
        match tokio::time::timeout(limit, self.0.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(_) => None,
            Err(_) => panic!("no frame within {limit:?}"),
        }
    }

    pub(crate) async fn next_json(&mut self) -> Value {
        self.next_json_within(Duration::from_secs(5)).await
    }

    /// The next `phx_reply`, skipping pushes (presence diffs) queued before it.
    pub(crate) async fn next_reply(&mut self) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame[3] == "phx_reply" {
                return frame;
            }
        }
    }

    pub(crate) async fn next_json_within(&mut self, limit: Duration) -> Value {
        match self.next_within(limit).await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("json frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Joins `topic` on vsn 2 and returns the reply payload.
    pub(crate) async fn join(&mut self, topic: &str, join_ref: &str, config: Value) -> Value {
        self.join_with_state(topic, join_ref, config).await.0
    }

    /// Joins `topic` on vsn 2; the reply payload and, if it was accepted,
    /// the `presence_state` pushed after it.
    pub(crate) async fn join_with_state(
        &mut self,
        topic: &str,
        join_ref: &str,
        config: Value,
    ) -> (Value, Value) {
        self.push(json!([join_ref, join_ref, topic, "phx_join", {"config": config}]))
            .await;
        let reply = self.next_json().await;
        assert_eq!(reply[3], "phx_reply", "{reply}");
        let mut state = Value::Null;
        if reply[4]["status"] == "ok" {
            let push = self.next_json().await;
            assert_eq!(
                (push[0].as_str(), &push[3]),
                (Some(join_ref), &json!("presence_state"))
            );
            state = push[4].clone();
        }
        (reply[4].clone(), state)
    }
}

/// A signed-up user's id and a realtime token for them.
pub(crate) async fn user(
    app: &TestApp,
    ttl: Duration,
) -> (crate::helpers::Client, uuid::Uuid, String) {
    let (client, _) = app.signed_up().await;
    let id: uuid::Uuid = client.get("/api/users/me").await.body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let (token, _) = app.state.live.tokens.issue(id, ttl);
    (client, id, token)
}

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// A study session starting in an hour, owned by `owner`; returns its id.
async fn schedule_room(owner: &crate::helpers::Client) -> String {
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let end = start + chrono::Duration::hours(1);
    let body = json!({"title": "Room", "subject": "Rust", "starts_at": start.to_rfc3339(),
                      "ends_at": end.to_rfc3339(), "capacity": 4});
    let res = owner.post("/api/study-sessions", body).await;
    res.body["id"].as_str().expect("room id").to_owned()
}

#[tokio::test]
async fn joins_heartbeats_and_replies_follow_the_protocol() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let mut ws = Ws::v2(&app.url, &token).await;
    ws.push(
        json!(["1", "1", "realtime:lobby", "phx_join", {"config": {"broadcast": {"self": false}}}]),
    )
    .await;
    assert_eq!(
        ws.next_json().await,
        json!(["1", "1", "realtime:lobby", "phx_reply", {"status": "ok", "response": {"postgres_changes": []}}])
    );
    assert_eq!(
        ws.next_json().await,
        json!(["1", null, "realtime:lobby", "presence_state", {}])
    );
    ws.push(json!([null, "2", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(
        ws.next_json().await,
        json!([null, "2", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
    ws.push(json!(["1", "3", "realtime:lobby", "phx_leave", {}]))
        .await;
    assert_eq!(ws.next_json().await[4]["status"], "ok");
    ws.push(json!(["1", "4", "realtime:lobby", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}])).await;
    assert_eq!(
        ws.next_json().await[4]["status"],
        "error",
        "broadcast after leave"
    );

    let mut v1 = Ws::open(&app.url, &format!("apikey={token}&vsn=1.0.0"), None).await;
    v1.push(json!({"topic": "realtime:lobby", "event": "phx_join", "payload": {"config": {}}, "ref": "1", "join_ref": "1"})).await;
    let reply = v1.next_json().await;
    assert_eq!(
        (reply["event"].as_str(), reply["payload"]["status"].as_str()),
        (Some("phx_reply"), Some("ok"))
    );
    assert_eq!(reply["join_ref"], "1");
}

#[tokio::test]
async fn pushes_for_an_earlier_join_are_refused_as_stale() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let mut ws = Ws::v2(&app.url, &token).await;
    let topic = "realtime:rejoined";
    let config = json!({"broadcast": {"ack": true}});
    assert_eq!(ws.join(topic, "1", config.clone()).await["status"], "ok");
    assert_eq!(ws.join(topic, "2", config).await["status"], "ok");
    let send = |join_ref: &str| json!([join_ref, "9", topic, "broadcast", {"type": "broadcast", "event": "e", "payload": {}}]);
    ws.push(send("1")).await;
    let stale = ws.next_reply().await;
    assert_eq!(stale[4]["status"], "error", "{stale}");
    assert!(
        stale[4]["response"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("stale")),
        "{stale}"
    );
    ws.push(send("2")).await;
    assert_eq!(ws.next_reply().await[4]["status"], "ok");
    ws.push(json!(["1", "10", topic, "phx_leave", {}])).await;
    assert_eq!(ws.next_reply().await[4]["status"], "error", "a stale leave");
    ws.push(send("2")).await;
    assert_eq!(
        ws.next_reply().await[4]["status"],
        "ok",
        "the current join survived the stale leave"
    );
}

#[tokio::test]
async fn binary_broadcasts_reach_every_serializer_but_not_the_sender() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, id, token) = user(&app, HOUR).await;
    let topic = "realtime:room-talk";
    let mut sender = Ws::v2(&app.url, &token).await;
    let mut v2 = Ws::v2(&app.url, &token).await;
    let mut v1 = Ws::open(&app.url, &format!("apikey={token}&vsn=1.0.0"), None).await;
    sender
        .join(
            topic,
            "1",
            json!({"broadcast": {"self": false, "ack": true}}),
        )
        .await;
    v2.join(topic, "1", json!({})).await;
    v1.push(json!({"topic": topic, "event": "phx_join", "payload": {"config": {}}, "ref": "1", "join_ref": "1"})).await;
    assert_eq!(v1.next_json().await["payload"]["status"], "ok");
    v1.next_json().await; // presence_state

    // Kind 3, as realtime-js sends it: lengths of join_ref, ref, topic, event, metadata; JSON encoding.
    let mut frame = vec![3, 1, 1, topic.len() as u8, 2, 0, 1];
    frame.extend_from_slice(format!("17{topic}hi{{\"n\":1}}").as_bytes());
    sender.send(Message::Binary(frame.into())).await;
    assert_eq!(
        sender.next_json().await,
        json!(["1", "7", topic, "phx_reply", {"status": "ok", "response": {}}]),
        "ack:true must be acknowledged"
    );
    // The server's metadata names the sender (realtime-js hands it to listeners as `meta`).
    let meta = format!(r#"{{"sender":"{id}"}}"#);
    let mut kind4 = vec![4, topic.len() as u8, 2, meta.len() as u8, 1];
    kind4.extend_from_slice(format!("{topic}hi{meta}{{\"n\":1}}").as_bytes());
    assert_eq!(v2.next().await, Some(Message::Binary(kind4.into())));
    let text = v1.next_json().await;
    assert_eq!(text["event"], "broadcast");
    assert_eq!(
        text["payload"],
        json!({"type": "broadcast", "event": "hi", "payload": {"n": 1}, "meta": {"sender": id}})
    );
    // The sender's next frame is the heartbeat reply: no echo of its own broadcast came first.
    sender
        .push(json!([null, "8", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(sender.next_json().await[1], "8");
}

#[tokio::test]
async fn joins_are_authorized() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (owner, owner_id, _) = user(&app, HOUR).await;
    let (member, _, member_token) = user(&app, HOUR).await;
    let reason = |reply: &Value| {
        reply["response"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let mut anonymous = Ws::open(&app.url, "vsn=2.0.0", None).await;
    assert!(
        reason(&anonymous.join("realtime:lobby", "1", json!({})).await).contains("unauthorized")
    );

    let mut ws = Ws::v2(&app.url, &member_token).await;
    assert_eq!(
        ws.join("lobby", "1", json!({})).await["status"],
        "error",
        "topic without realtime:"
    );
    assert!(
        reason(
            &ws.join(&format!("realtime:user:{owner_id}"), "2", json!({}))
                .await
        )
        .contains("may not")
    );
    let room = schedule_room(&owner).await;
    let topic = format!("realtime:room:{room}");
    assert_eq!(
        ws.join(&topic, "3", json!({})).await["status"],
        "error",
        "non-member joined a room"
    );
    member
        .post(&format!("/api/study-sessions/{room}/join"), json!({}))
        .await;
    assert_eq!(ws.join(&topic, "4", json!({})).await["status"], "ok");

    // A browser on the same origin is authenticated by its session cookie.
    let mut browser = Ws::open(&app.url, "vsn=2.0.0", owner.cookie()).await;
    assert_eq!(
        browser
            .join(&format!("realtime:user:{owner_id}"), "1", json!({}))
            .await["status"],
        "ok"
    );
}

/// Token expiry runs on the server's clock: moved past the expiry, the
/// next thing the connection does closes the channel.
#[tokio::test]
async fn an_expired_token_closes_the_channel_with_a_system_error() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, Duration::from_secs(60)).await;
    let mut ws = Ws::v2(&app.url, &token).await;
    assert_eq!(
        ws.join("realtime:lobby", "5", json!({})).await["status"],
        "ok"
    );
    ws.push(json!([null, "6", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(ws.next_json().await[4]["status"], "ok", "still valid");
    app.clock.advance(chrono::Duration::seconds(60));
    ws.push(json!([null, "7", "phoenix", "heartbeat", {}]))
        .await;
    assert_eq!(ws.next_json().await[1], "7", "the heartbeat is answered");
    let system = ws.next_json().await;
    assert_eq!(system[3], "system");
    assert_eq!(system[4]["status"], "error");
    assert_eq!(system[4]["message"], "Token has expired");
    let close = ws.next_json().await;
    assert_eq!(
        (close[0].as_str(), close[3].as_str()),
        (Some("5"), Some("phx_close"))
    );
}

#[tokio::test]
async fn bad_frames_close_the_connection_and_nothing_else() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let bad: Vec<(&str, Message)> = vec![
        ("garbage", Message::Text("garbage".into())),
        ("wrong shape", Message::Text(r#"{"topic":"t"}"#.into())),
        (
            "truncated binary header",
            Message::Binary(vec![3, 1, 1].into()),
        ),
        (
            "binary lengths past the end",
            Message::Binary(vec![3, 200, 0, 0, 0, 0, 1, b'x'].into()),
        ),
        (
            "server-only binary kind",
            Message::Binary(vec![4, 0, 0, 0, 1].into()),
        ),
        ("huge frame", Message::Text("x".repeat(200 * 1024).into())),
    ];
    for (what, frame) in bad {
        let mut ws = Ws::v2(&app.url, &token).await;
        ws.send(frame).await;
        match ws.next().await {
            None | Some(Message::Close(_)) => {}
            other => panic!("{what}: expected the connection to close, got {other:?}"),
        }
    }
    let mut fine = Ws::v2(&app.url, &token).await;
    assert_eq!(
        fine.join("realtime:lobby", "1", json!({})).await["status"],
        "ok"
    );
}

#[tokio::test]
async fn one_connection_joins_at_most_100_channels() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let mut ws = Ws::v2(&app.url, &token).await;
    for i in 0..100 {
        assert_eq!(
            ws.join(&format!("realtime:c{i}"), &i.to_string(), json!({}))
                .await["status"],
            "ok"
        );
    }
    let over = ws.join("realtime:c100", "100", json!({})).await;
    assert!(
        over["response"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("too many")),
        "{over}"
    );
}

crate::on_both_backends!(chat_is_stored_paginated_and_pushed_live_to_members);

async fn chat_is_stored_paginated_and_pushed_live_to_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _, _) = user(&app, HOUR).await;
    let (member, _, member_token) = user(&app, HOUR).await;
    let (outsider, _, _) = user(&app, HOUR).await;
    let room = schedule_room(&owner).await;
    member
        .post(&format!("/api/study-sessions/{room}/join"), json!({}))
        .await;
    let mut live = Ws::v2(&app.url, &member_token).await;
    assert_eq!(
        live.join(&format!("realtime:room:{room}"), "1", json!({}))
            .await["status"],
        "ok"
    );

    let path = format!("/api/study-sessions/{room}/messages");
    let sent = owner.post(&path, json!({"body": "  Welcome!  "})).await;
    assert_eq!(sent.status.as_u16(), 201, "{}", sent.body);
    assert_eq!(sent.body["body"], "Welcome!");
    match live.next().await {
        Some(Message::Binary(frame)) => {
            let text = String::from_utf8_lossy(&frame);
            assert!(
                frame[0] == 4
                    && text.contains("messages")
                    && text.contains(r#"[{"#)
                    && text.contains("Welcome!"),
                "a batch (list) of messages: {text}"
            );
        }
        other => panic!("expected the live message, got {other:?}"),
    }

    for i in 1..=4 {
        member
            .post(&path, json!({"body": format!("note {i}")}))
            .await;
    }
    let first = member.get(&format!("{path}?limit=2")).await.body;
    let bodies = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|m| m["body"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(bodies(&first), ["note 4", "note 3"]);
    let second = member
        .get(&format!(
            "{path}?limit=2&before={}",
            first["next_before"].as_str().expect("cursor")
        ))
        .await
        .body;
    assert_eq!(bodies(&second), ["note 2", "note 1"]);
    let last = member
        .get(&format!(
            "{path}?limit=2&before={}",
            second["next_before"].as_str().expect("cursor")
        ))
        .await
        .body;
    assert_eq!(bodies(&last), ["Welcome!"]);
    assert!(last["next_before"].is_null());

    assert_eq!(outsider.get(&path).await.status.as_u16(), 403);
    assert_eq!(
        outsider
            .post(&path, json!({"body": "let me in"}))
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        member
            .post(&path, json!({"body": "   "}))
            .await
            .status
            .as_u16(),
        422
    );
    assert_eq!(
        member
            .post(&path, json!({"body": "x".repeat(2001)}))
            .await
            .status
            .as_u16(),
        422
    );
    assert_eq!(
        member.get(&format!("{path}?limit=0")).await.status.as_u16(),
        422
    );
    assert_eq!(
        member
            .get(&format!("{path}?before=nope"))
            .await
            .status
            .as_u16(),
        400
    );
    let missing = format!("/api/study-sessions/{}/messages", uuid::Uuid::now_v7());
    assert_eq!(member.get(&missing).await.status.as_u16(), 404);
}

/// Two `tandem serve` processes sharing `backend` (under a key prefix of
/// their own), and a realtime token of a user signed up through the second.
struct Pair {
    first: crate::multi_instance::Instance,
    second: crate::multi_instance::Instance,
    token: String,
    prefix: String,
    _dir: tempfile::TempDir,
}

impl Pair {
    async fn start(backend: &Backend) -> Self {
        use crate::multi_instance::Instance;
        let dir = tempfile::tempdir().expect("tmp");
        let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
        let first = Instance::start(backend, &prefix, dir.path()).await;
        let second = Instance::start(backend, &prefix, dir.path()).await;
        let client = crate::helpers::Client::new(&second.url);
        let res = client
            .register(
                &crate::helpers::unique_email(),
                crate::helpers::PASSWORD,
                "Pair",
            )
            .await;
        assert_eq!(res.status.as_u16(), 201);
        // Minted with the instances' shared secret and tied to no login
        // session: one test restarts Redis empty, which ends every session
        // (and the tokens issued to them).
        let id = res.body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        let secret = format!("{prefix}-realtime-secret-for-tests");
        let (token, _) =
            tandem_realtime::token::TokenSigner::new(secret.as_bytes()).issue(id, HOUR);
        Self {
            first,
            second,
            token,
            prefix,
            _dir: dir,
        }
    }
}

/// An instance killed without clean-up: the others announce its presences
/// as leaves once its liveness key lapses (15 s) and a sweep runs (5 s).
#[tokio::test]
async fn presences_of_a_crashed_instance_are_announced_as_leaves() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let Pair {
        first: doomed,
        second: survivor,
        token,
        _dir,
        ..
    } = Pair::start(&backend).await;
    let topic = "realtime:crash-site";
    let mut watcher = Ws::v2(&survivor.url, &token).await;
    watcher
        .join(topic, "1", json!({"presence": {"key": "watcher"}}))
        .await;
    let mut victim = Ws::v2(&doomed.url, &token).await;
    victim
        .join(topic, "1", json!({"presence": {"key": "victim"}}))
        .await;
    let track = json!(["1", "2", topic, "presence", {"type": "presence", "event": "track", "payload": {"name": "V"}}]);
    victim.push(track).await;
    let joined = watcher.next_json().await;
    assert_eq!(joined[3], "presence_diff");
    assert!(meta_named(&joined[4]["joins"], "V").is_some(), "{joined}");

    doomed.crash().await;
    let left = watcher.next_json_within(Duration::from_secs(30)).await;
    assert_eq!(left[3], "presence_diff");
    assert!(meta_named(&left[4]["leaves"], "V").is_some(), "{left}");
    survivor.stop().await;
}

/// Presence converges after Redis outages without anyone rejoining:
/// - Redis restarts empty (no persistence): the instance holding a tracked
///   client re-adds it, so a newcomer on another instance sees it again;
/// - an entry of that instance whose client is gone (a leave that could
///   not be written) is removed once the instance reconnects.
#[tokio::test]
async fn presence_converges_after_redis_outages() {
    use crate::helpers::services::{OwnRedis, free_port};
    let Some(Backend::Distributed { database_url, .. }) = Backend::distributed().await else {
        return;
    };
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let backend = Backend::Distributed {
        database_url,
        redis_url: redis.url(),
    };
    let Pair {
        first: holder,
        second: other,
        token,
        prefix,
        _dir,
    } = Pair::start(&backend).await;
    let topic = "realtime:outage";
    let mut tracked = Ws::v2(&holder.url, &token).await;
    tracked
        .join(topic, "1", json!({"presence": {"key": "stayer"}}))
        .await;
    tracked
        .push(json!(["1", "2", topic, "presence", {"type": "presence", "event": "track", "payload": {"name": "S"}}]))
        .await;
    assert_eq!(tracked.next_reply().await[4]["status"], "ok");
    // The holder writes the track to Redis after replying: the early
    // joiner finds it in its presence_state, or gets the diff right after.
    let mut early = Ws::v2(&other.url, &token).await;
    let (_, before) = early
        .join_with_state(topic, "1", json!({"presence": {"key": "early"}}))
        .await;
    let stayer = match meta_named(&before, "S") {
        Some(meta) => meta.clone(),
        None => {
            let diff = early.next_json().await;
            assert_eq!(diff[3], "presence_diff", "{diff}");
            meta_named(&diff[4]["joins"], "S")
                .cloned()
                .expect("the stayer's join")
        }
    };
    let holder_ref = stayer["phx_ref"].as_str().expect("phx_ref").to_owned();

    // A newcomer on the other instance, until `shown` holds (bounded).
    let newcomer_sees = |shown: fn(&Value) -> bool, what: &'static str| {
        let (url, token) = (other.url.clone(), token.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let (reply, state) = Ws::v2(&url, &token)
                    .await
                    .join_with_state(topic, "1", json!({"presence": {"key": "newcomer"}}))
                    .await;
                assert_eq!(reply["status"], "ok", "{reply}");
                if shown(&state) {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "{what}: {state}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    redis.stop().await;
    let redis = OwnRedis::start(port).await;
    newcomer_sees(
        |s| meta_named(s, "S").is_some(),
        "the tracked presence never came back after the Redis restart",
    )
    .await;

    // A leftover entry of the holder's (its client left while Redis was
    // unreachable), then a dropped subscription: the holder removes it.
    let instance = holder_ref.split('.').next().expect("instance id");
    let ghost_ref = format!("{instance}.999999.1");
    let ghost = json!({"key": "ghost", "meta": {"phx_ref": ghost_ref}});
    let mut conn = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let hash = format!("{prefix}rt-presence:{topic}");
    let _: i64 = redis::cmd("HSET")
        .arg(&hash)
        .arg(&ghost_ref)
        .arg(ghost.to_string())
        .query_async(&mut conn)
        .await
        .expect("hset");
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query_async(&mut conn)
        .await
        .expect("client kill");
    newcomer_sees(
        |s| meta_named(s, "S").is_some() && s["ghost"].is_null(),
        "the departed client's entry was not removed",
    )
    .await;
    holder.stop().await;
    other.stop().await;
}

/// The roadmap's client-side optimizations, enforced by the server: typing
/// indicators at most once per 3 s per channel, presence coalesced to one
/// update per 2 s (the newest wins), and a per-connection message budget.
#[tokio::test]
async fn typing_presence_and_message_rates_are_limited() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| c.realtime.messages_per_second = 20).await;
    let (_, _, token) = user(&app, HOUR).await;
    let topic = "realtime:busy";
    let mut chatty = Ws::v2(&app.url, &token).await;
    let mut other = Ws::v2(&app.url, &token).await;
    chatty
        .join(topic, "1", json!({"presence": {"key": "chatty"}}))
        .await;
    other.join(topic, "1", json!({})).await;
    let broadcast = |event: &str, n: u32| json!(["1", null, topic, "broadcast", {"type": "broadcast", "event": event, "payload": {"n": n}}]);

    for n in 0..5 {
        chatty.push(broadcast("typing", n)).await;
    }
    chatty.push(broadcast("chat", 99)).await;
    let text = |m: Option<Message>| match m {
        Some(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("expected a broadcast, got {other:?}"),
    };
    let first = text(other.next().await);
    assert!(
        first.contains("typing") && first.contains(r#"{"n":0}"#),
        "{first}"
    );
    let second = text(other.next().await);
    assert!(
        second.contains("chat"),
        "a throttled typing indicator got through: {second}"
    );

    let track = |name: &str| json!(["1", "9", topic, "presence", {"type": "presence", "event": "track", "payload": {"name": name}}]);
    for name in ["v1", "v2", "v3"] {
        chatty.push(track(name)).await;
        assert_eq!(chatty.next_reply().await[4]["status"], "ok");
    }
    let mut seen = Vec::new();
    while !seen.iter().any(|s: &String| s.contains("v3")) {
        let diff = other.next_json().await;
        assert_eq!(diff[3], "presence_diff");
        seen.push(diff[4]["joins"].to_string());
    }
    assert!(seen[0].contains("v1"), "{seen:?}");
    assert!(
        !seen.iter().any(|s| s.contains("v2")),
        "a coalesced update was sent: {seen:?}"
    );

    let mut limited = 0;
    for n in 0..100 {
        chatty.push(json!(["1", n.to_string(), topic, "presence", {"type": "presence", "event": "bogus"}])).await;
    }
    for _ in 0..100 {
        let reply = chatty.next_reply().await;
        if reply[4]["response"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rate limit"))
        {
            limited += 1;
        }
    }
    assert!(
        limited >= 50,
        "only {limited} of 100 rapid messages were limited"
    );
}

#[tokio::test]
async fn servers_broadcast_over_rest_with_the_same_rules() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (_, _, token) = user(&app, HOUR).await;
    let (_, other_id, _) = user(&app, HOUR).await;
    let mut listener = Ws::v2(&app.url, &token).await;
    listener.join("realtime:news", "1", json!({})).await;
    let http = reqwest::Client::new();
    let post = |body: Value, bearer: Option<&str>| {
        let mut req = http
            .post(format!("{}/realtime/v1/api/broadcast", app.url))
            .json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let one = |topic: &str| json!({"messages": [{"topic": topic, "event": "headline", "payload": {"t": 1}}]});
    assert_eq!(
        post(one("news"), Some(&token))
            .await
            .expect("sent")
            .status()
            .as_u16(),
        202
    );
    match listener.next().await {
        Some(Message::Binary(b)) => assert!(String::from_utf8_lossy(&b).contains("headline")),
        other => panic!("expected the broadcast, got {other:?}"),
    }
    assert_eq!(
        post(one("news"), None)
            .await
            .expect("sent")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(one("news"), Some("forged.token.x"))
            .await
            .expect("sent")
            .status()
            .as_u16(),
        401
    );
    let private = one(&format!("user:{other_id}"));
    assert_eq!(
        post(private, Some(&token))
            .await
            .expect("sent")
            .status()
            .as_u16(),
        403
    );
    let too_many =
        json!({"messages": vec![json!({"topic": "news", "event": "e", "payload": {}}); 101]});
    assert_eq!(
        post(too_many, Some(&token))
            .await
            .expect("sent")
            .status()
            .as_u16(),
        422
    );
    assert_eq!(
        post(json!({"messages": "no"}), Some(&token))
            .await
            .expect("sent")
            .status()
            .as_u16(),
        422
    );
}
