//! Connects the hubs of several instances over Redis.
//!
//! - Every message that originates on an instance (broadcasts, presence
//!   diffs) is published on `{prefix}rt:{topic}`; every instance delivers
//!   the others' messages to its own subscribers, in publish order.
//! - Presence lives in one hash per topic (`{prefix}rt-presence:{topic}`,
//!   field = the meta's `phx_ref`, which starts with the instance id), so a
//!   joiner gets the presence of every instance in its `presence_state`.
//! - Each instance refreshes `{prefix}rt-alive:{id}` every 5 s (15 s TTL);
//!   the others remove a dead instance's presences and send the leave diffs.
//!
//! Subscribers use one pattern subscription per instance (every instance
//! sees every topic's traffic): simple and ordered, and fine for a handful
//! of instances; per-topic subscriptions are the next step for large fleets.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use futures_util::StreamExt;
use redis::{AsyncCommands, aio::ConnectionManager};
use serde_json::{Map, Value, json};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    hub::{Hub, Outbound},
    protocol::Body,
    socket::PresenceView,
};

/// How often an instance proves it is alive and sweeps dead presences.
const SWEEP: Duration = Duration::from_secs(5);
/// An instance silent this long is dead.
const ALIVE_TTL_MS: u64 = 15_000;

/// The Redis backplane of one instance.
pub struct RedisBackplane {
    conn: ConnectionManager,
    prefix: String,
    hub: Arc<Hub>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisBackplane {
    /// Connects `hub` to the other instances through Redis.
    pub fn start(
        client: redis::Client,
        conn: ConnectionManager,
        prefix: &str,
        hub: Arc<Hub>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(10_000);
        hub.forward_to(tx);
        let mut backplane = Self {
            conn,
            prefix: prefix.to_owned(),
            hub,
            tasks: Vec::new(),
        };
        let forwarder = tokio::spawn(forward(backplane.clone_parts(), rx));
        let subscriber = tokio::spawn(subscribe(client, backplane.clone_parts()));
        let janitor = tokio::spawn(sweep(backplane.clone_parts()));
        backplane.tasks = vec![forwarder, subscriber, janitor];
        Arc::new(backplane)
    }

    fn clone_parts(&self) -> Parts {
        Parts {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
            hub: self.hub.clone(),
        }
    }
}

#[async_trait]
impl PresenceView for RedisBackplane {
    async fn state(&self, topic: &str, local: Value) -> Value {
        match self.clone_parts().presences(topic).await {
            Ok(all) => state_of(all.into_values()),
            Err(e) => {
                tracing::warn!(error = %e, "realtime: presence state from Redis failed; showing this instance's");
                local
            }
        }
    }
}

/// What the background tasks share.
#[derive(Clone)]
struct Parts {
    conn: ConnectionManager,
    prefix: String,
    hub: Arc<Hub>,
}

impl Parts {
    fn channel(&self, topic: &str) -> String {
        format!("{}rt:{topic}", self.prefix)
    }

    fn presence_key(&self, topic: &str) -> String {
        format!("{}rt-presence:{topic}", self.prefix)
    }

    fn alive_key(&self, instance: &str) -> String {
        format!("{}rt-alive:{instance}", self.prefix)
    }

    /// Every presence of `topic`: phx_ref → `{key, meta}`.
    async fn presences(&self, topic: &str) -> redis::RedisResult<HashMap<String, Value>> {
        let raw: HashMap<String, String> =
            self.conn.clone().hgetall(self.presence_key(topic)).await?;
        Ok(raw
            .into_iter()
            .filter_map(|(field, v)| serde_json::from_str(&v).ok().map(|v| (field, v)))
            .collect())
    }
}

/// `{key: {metas: [...]}}` from `{key, meta}` entries.
fn state_of(entries: impl Iterator<Item = Value>) -> Value {
    let mut by_key: Map<String, Value> = Map::new();
    for entry in entries {
        let key = entry["key"].as_str().unwrap_or_default().to_owned();
        let slot = by_key.entry(key).or_insert_with(|| json!({ "metas": [] }));
        if let Some(metas) = slot["metas"].as_array_mut() {
            metas.push(entry["meta"].clone());
        }
    }
    Value::Object(by_key)
}

/// A message on the wire between instances.
fn encode(origin: &str, m: &Outbound) -> String {
    let body = match &m.body {
        Some(Body::Json(v)) => json!({ "j": v }),
        Some(Body::Binary(b)) => json!({ "x": STANDARD.encode(b) }),
        None => Value::Null,
    };
    json!({ "o": origin, "t": m.topic, "e": m.event, "p": m.payload, "b": body }).to_string()
}

fn decode(text: &str) -> Option<(String, Arc<Outbound>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let topic = v["t"].as_str()?;
    let origin = v["o"].as_str()?.to_owned();
    let message = if let Some(json) = v["b"].get("j") {
        Outbound::broadcast(
            topic,
            v["p"]["event"].as_str()?,
            Body::Json(json.clone()),
            None,
        )
    } else if let Some(bin) = v["b"].get("x").and_then(Value::as_str) {
        let bytes = STANDARD.decode(bin).ok()?;
        Outbound::broadcast(
            topic,
            v["p"]["event"].as_str()?,
            Body::Binary(bytes.into()),
            None,
        )
    } else {
        Outbound::new(topic, v["e"].as_str()?, v["p"].clone(), None)
    };
    Some((origin, message))
}

/// Publishes local messages; keeps the presence hashes in step with diffs.
async fn forward(parts: Parts, mut rx: mpsc::Receiver<Arc<Outbound>>) {
    let origin = parts.hub.instance().to_owned();
    while let Some(message) = rx.recv().await {
        let mut pipe = redis::pipe();
        if message.event == "presence_diff" {
            let hash = parts.presence_key(&message.topic);
            for (key, metas) in message.payload["joins"].as_object().into_iter().flatten() {
                for meta in metas["metas"].as_array().into_iter().flatten() {
                    if let Some(r) = meta["phx_ref"].as_str() {
                        pipe.hset(&hash, r, json!({ "key": key, "meta": meta }).to_string())
                            .ignore();
                    }
                }
            }
            for metas in message.payload["leaves"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, m)| m)
            {
                for meta in metas["metas"].as_array().into_iter().flatten() {
                    if let Some(r) = meta["phx_ref"].as_str() {
                        pipe.hdel(&hash, r).ignore();
                    }
                }
            }
            pipe.pexpire(&hash, 3_600_000).ignore();
        }
        pipe.publish(parts.channel(&message.topic), encode(&origin, &message))
            .ignore();
        if let Err(e) = pipe.query_async::<()>(&mut parts.conn.clone()).await {
            tracing::warn!(error = %e, "realtime: publishing to Redis failed");
            metrics::counter!("tandem_realtime_backplane_errors_total").increment(1);
        }
    }
}

/// Delivers the other instances' messages to local subscribers.
async fn subscribe(client: redis::Client, parts: Parts) {
    let own = parts.hub.instance().to_owned();
    let pattern = format!("{}rt:*", parts.prefix);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.psubscribe(&pattern).await {
                    tracing::warn!(error = %e, "realtime: cannot subscribe to Redis");
                } else {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(text) = message.get_payload::<String>() else {
                            continue;
                        };
                        match decode(&text) {
                            Some((origin, m)) if origin != own => parts.hub.deliver_remote(&m),
                            Some(_) => {}
                            None => metrics::counter!("tandem_realtime_backplane_errors_total")
                                .increment(1),
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "realtime: Redis unreachable"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Proves this instance alive; removes dead instances' presences.
async fn sweep(parts: Parts) {
    let own = parts.hub.instance().to_owned();
    let mut every = tokio::time::interval(SWEEP);
    loop {
        every.tick().await;
        let mut conn = parts.conn.clone();
        let alive: redis::RedisResult<()> = redis::cmd("SET")
            .arg(parts.alive_key(&own))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_TTL_MS)
            .query_async(&mut conn)
            .await;
        if alive.is_err() {
            continue;
        }
        for topic in parts.hub.topic_names() {
            if let Err(e) = sweep_topic(&parts, &own, &topic).await {
                tracing::debug!(error = %e, topic, "realtime: presence sweep failed");
            }
        }
    }
}

async fn sweep_topic(parts: &Parts, own: &str, topic: &str) -> redis::RedisResult<()> {
    let mut conn = parts.conn.clone();
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut gone = Vec::new();
    for (field, entry) in parts.presences(topic).await? {
        let instance = field.split('.').next().unwrap_or_default().to_owned();
        if instance == own {
            continue;
        }
        let alive = match verdicts.get(&instance) {
            Some(a) => *a,
            None => {
                let a: bool = conn.exists(parts.alive_key(&instance)).await?;
                verdicts.insert(instance, a);
                a
            }
        };
        // Only the sweeper whose HDEL removed the field announces the leave.
        if !alive
            && conn
                .hdel::<_, _, i64>(parts.presence_key(topic), &field)
                .await?
                == 1
        {
            gone.push(entry);
        }
    }
    if !gone.is_empty() {
        let leaves = state_of(gone.into_iter());
        parts.hub.publish(&Outbound::new(
            topic,
            "presence_diff",
            json!({ "joins": {}, "leaves": leaves }),
            None,
        ));
    }
    Ok(())
}
