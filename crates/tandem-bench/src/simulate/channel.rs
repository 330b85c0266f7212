//! A study room's realtime channel as the app uses it: Phoenix frames over
//! a WebSocket with the session cookie, presence tracked, typing broadcasts
//! acknowledged (`ack: true`) so their round trip can be timed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use reqwest::{Method, header};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, tungstenite::Message, tungstenite::client::IntoClientRequest,
};

use super::{
    model::Action,
    session::{RETRY_AFTER, Sim, TIMEOUT},
};

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<bool>>>>;

/// A joined study room with its realtime channel open.
pub(super) struct Room {
    /// The study session's id.
    pub(super) id: String,
    base: String,
    cookie: String,
    topic: String,
    sink: Arc<tokio::sync::Mutex<Sink>>,
    waiters: Waiters,
    next_ref: u64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub(super) async fn join_room(sim: &Sim, base: &str, cookie: &str, id: String) -> Option<Room> {
    sim.call(
        Action::RoomJoin,
        Method::GET,
        format!("{base}/api/study-sessions"),
        cookie,
        None,
    )
    .await?;
    sim.call(
        Action::RoomJoin,
        Method::POST,
        format!("{base}/api/study-sessions/{id}/join"),
        cookie,
        Some(json!({})),
    )
    .await?;
    sim.call(
        Action::RoomJoin,
        Method::GET,
        format!("{base}/api/study-sessions/{id}"),
        cookie,
        None,
    )
    .await?;
    let messages = format!("{base}/api/study-sessions/{id}/messages?limit=20");
    sim.call(Action::RoomJoin, Method::GET, messages, cookie, None)
        .await?;
    let began = Instant::now();
    let room = open_channel(base, cookie, id).await;
    sim.recorder
        .record(Action::ChatJoin, began, room.is_some(), false);
    room
}

async fn open_channel(base: &str, cookie: &str, id: String) -> Option<Room> {
    let ws_url = format!(
        "{}/realtime/v1/websocket?vsn=1.0.0",
        base.replacen("http", "ws", 1)
    );
    let mut request = ws_url.into_client_request().ok()?;
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().ok()?);
    let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (ws, _) = tokio::time::timeout(TIMEOUT, connect).await.ok()?.ok()?;
    let (sink, mut stream) = ws.split();
    let waiters: Waiters = Arc::default();
    let topic = format!("realtime:room:{id}");
    let reader_waiters = waiters.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if frame["event"] == "phx_reply"
                && let Some(r) = frame["ref"].as_str()
                && let Some(waiter) = reader_waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(r)
            {
                let _ = waiter.send(frame["payload"]["status"] == "ok");
            }
        }
    });
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let beat = sink.clone();
    let heartbeat = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(25));
        every.tick().await;
        loop {
            every.tick().await;
            let frame =
                json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "hb"});
            if beat
                .lock()
                .await
                .send(Message::text(frame.to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut room = Room {
        base: base.to_owned(),
        cookie: cookie.to_owned(),
        id,
        topic,
        sink,
        waiters,
        next_ref: 1,
        tasks: vec![reader, heartbeat],
    };
    let config = json!({"config": {"broadcast": {"self": false, "ack": true}, "presence": {"key": cookie.len().to_string() + &room.id}}});
    if !room.request("phx_join", config).await {
        room.close().await;
        return None;
    }
    let track =
        json!({"type": "presence", "event": "track", "payload": {"name": "Simulated student"}});
    room.request("presence", track).await;
    Some(room)
}

impl Room {
    /// Sends a frame and waits (bounded) for its reply; whether it was ok.
    async fn request(&mut self, event: &str, payload: Value) -> bool {
        let r = self.next_ref.to_string();
        self.next_ref += 1;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.clone(), tx);
        let frame = json!({"topic": self.topic, "event": event, "payload": payload, "ref": r, "join_ref": "1"});
        if self
            .sink
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await
            .is_err()
        {
            return false;
        }
        matches!(tokio::time::timeout(TIMEOUT, rx).await, Ok(Ok(true)))
    }

    pub(super) async fn typing(&mut self, sim: &Sim) {
        let began = Instant::now();
        let payload = json!({"type": "broadcast", "event": "typing", "payload": {"name": "Simulated student"}});
        let mut ok = self.request("broadcast", payload.clone()).await;
        let retried = !ok;
        if !ok {
            // The socket's instance went away: rejoin on a fresh connection
            // after a pause, as the app does, and try again.
            tokio::time::sleep(RETRY_AFTER[1]).await;
            if let Some(fresh) = open_channel(&self.base, &self.cookie, self.id.clone()).await {
                std::mem::replace(self, fresh).close().await;
                ok = self.request("broadcast", payload).await;
            }
        }
        sim.recorder.record(Action::Typing, began, ok, retried);
        if !ok {
            sim.failed(Action::Typing, 0);
        }
    }

    async fn close(self) {
        let _ = self.sink.lock().await.close().await;
        for task in self.tasks {
            task.abort();
        }
    }

    pub(super) async fn leave(self, sim: &Sim, base: &str, cookie: &str) {
        let url = format!("{base}/api/study-sessions/{}/leave", self.id);
        self.close().await;
        sim.call(
            Action::RoomLeave,
            Method::POST,
            url,
            cookie,
            Some(json!({})),
        )
        .await;
    }
}
