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
//! - After a Redis outage (the subscription dropped, a presence change could
//!   not be written, or this instance's liveness key lapsed so others took
//!   it for dead) an instance reconciles its own entries with its local
//!   state: it re-adds the ones the store lost and removes the ones whose
//!   clients left meanwhile, announcing both as a diff, and sends its
//!   clients a fresh `presence_state`, since diffs published while it was
//!   cut off never reached it. Presence converges again without anyone
//!   rejoining, and no one who left stays shown as online.
//!
//! Subscribers use one pattern subscription per instance (every instance
//! sees every topic's traffic): simple and ordered, and fine for a handful
//! of instances; per-topic subscriptions are the next step for large fleets.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use futures_util::StreamExt;
use redis::{AsyncCommands, aio::ConnectionManager};
use serde_json::{Map, Value, json};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use crate::{
    hub::{Hub, Outbound},
    protocol::Body,
    socket::PresenceView,
};

/// How often an instance proves it is alive and sweeps dead presences.
const SWEEP: Duration = Duration::from_secs(5);
/// An instance silent this long is dead.
const ALIVE_TTL_MS: u64 = 15_000;
/// A topic's presence hash outlives its last change by this long.
const PRESENCE_TTL_MS: i64 = 3_600_000;

/// The Redis backplane of one instance.
pub struct RedisBackplane {
    parts: Parts,
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
        let parts = Parts {
            conn,
            prefix: prefix.to_owned(),
            hub,
            resync: Arc::new(Notify::new()),
            dirty: Arc::default(),
        };
        let tasks = vec![
            tokio::spawn(forward(parts.clone(), rx)),
            tokio::spawn(subscribe(client, parts.clone())),
            tokio::spawn(sweep(parts.clone())),
        ];
        Arc::new(Self { parts, tasks })
    }
}

#[async_trait]
impl PresenceView for RedisBackplane {
    async fn state(&self, topic: &str, local: Value) -> Value {
        match self.parts.presences(topic).await {
            Ok(all) => with_local(all, &local),
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
    /// Asks the forwarder to reconcile this instance's presence entries.
    resync: Arc<Notify>,
    /// Topics whose presence change could not be written to Redis.
    dirty: Arc<Mutex<HashSet<String>>>,
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

/// The `(key, meta)` pairs of one side of a diff, or of a state:
/// `{key: {metas: [meta, ...]}}`.
fn metas(side: &Value) -> impl Iterator<Item = (&String, &Value)> {
    side.as_object().into_iter().flatten().flat_map(|(key, m)| {
        m["metas"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |meta| (key, meta))
    })
}

/// The shared store's presences of a topic with this instance's own
/// (`local`, a state) added: the store may have lost them.
fn with_local(mut stored: HashMap<String, Value>, local: &Value) -> Value {
    for (key, meta) in metas(local) {
        if let Some(r) = meta["phx_ref"].as_str() {
            stored.insert(r.to_owned(), json!({ "key": key, "meta": meta }));
        }
    }
    state_of(stored.into_values())
}

/// A message on the wire between instances.
fn encode(origin: &str, m: &Outbound) -> String {
    let body = match &m.body {
        Some(Body::Json(v)) => json!({ "j": v }),
        Some(Body::Binary(b)) => json!({ "x": STANDARD.encode(b) }),
        None => Value::Null,
    };
    json!({ "o": origin, "t": m.topic, "e": m.event, "p": m.payload, "b": body, "s": m.sender })
        .to_string()
}

fn decode(text: &str) -> Option<(String, Arc<Outbound>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let topic = v["t"].as_str()?;
    let origin = v["o"].as_str()?.to_owned();
    let sender = v["s"].as_str().and_then(|s| s.parse().ok());
    let message = if let Some(json) = v["b"].get("j") {
        let event = v["p"]["event"].as_str()?;
        Outbound::from_sender(topic, event, Body::Json(json.clone()), sender, None)
    } else if let Some(bin) = v["b"].get("x").and_then(Value::as_str) {
        let bytes = STANDARD.decode(bin).ok()?;
        let event = v["p"]["event"].as_str()?;
        Outbound::from_sender(topic, event, Body::Binary(bytes.into()), sender, None)
    } else {
        Outbound::new(topic, v["e"].as_str()?, v["p"].clone(), None)
    };
    Some((origin, message))
}

/// Publishes local messages; keeps the presence hashes in step with diffs,
/// and reconciles them when asked (after an outage).
async fn forward(parts: Parts, mut rx: mpsc::Receiver<Arc<Outbound>>) {
    let origin = parts.hub.instance().to_owned();
    loop {
        let message = tokio::select! {
            biased;
            message = rx.recv() => match message {
                Some(message) => message,
                None => return,
            },
            () = parts.resync.notified() => {
                reconcile_all(&parts, &origin).await;
                continue;
            }
        };
        let mut pipe = redis::pipe();
        if message.event == "presence_diff" {
            let hash = parts.presence_key(&message.topic);
            for (key, meta) in metas(&message.payload["joins"]) {
                if let Some(r) = meta["phx_ref"].as_str() {
                    pipe.hset(&hash, r, json!({ "key": key, "meta": meta }).to_string())
                        .ignore();
                }
            }
            for (_, meta) in metas(&message.payload["leaves"]) {
                if let Some(r) = meta["phx_ref"].as_str() {
                    pipe.hdel(&hash, r).ignore();
                }
            }
            pipe.pexpire(&hash, PRESENCE_TTL_MS).ignore();
        }
        pipe.publish(parts.channel(&message.topic), encode(&origin, &message))
            .ignore();
        if let Err(e) = pipe.query_async::<()>(&mut parts.conn.clone()).await {
            tracing::warn!(error = %e, "realtime: publishing to Redis failed");
            metrics::counter!("tandem_realtime_backplane_errors_total").increment(1);
            if message.event == "presence_diff" {
                parts.dirty().insert(message.topic.clone());
            }
        }
    }
}

impl Parts {
    fn dirty(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reconciles every topic this instance has presences in, or failed to
/// write a presence change for.
async fn reconcile_all(parts: &Parts, origin: &str) {
    let mut local: HashMap<String, Value> = parts.hub.presence_states().into_iter().collect();
    let dirty: Vec<String> = parts.dirty().drain().collect();
    for topic in dirty {
        local.entry(topic).or_insert_with(|| json!({}));
    }
    for (topic, state) in local {
        if let Err(e) = reconcile(parts, origin, &topic, &state).await {
            tracing::debug!(error = %e, topic, "realtime: presence reconcile failed");
            parts.dirty().insert(topic);
        }
    }
}

/// Makes the store's entries of this instance for `topic` match `local`
/// (its current state there): re-adds what the store lost, removes what
/// left meanwhile, and announces both to the other instances.
async fn reconcile(
    parts: &Parts,
    origin: &str,
    topic: &str,
    local: &Value,
) -> redis::RedisResult<()> {
    let hash = parts.presence_key(topic);
    let stored = parts.presences(topic).await?;
    let mine: HashMap<&str, Value> = metas(local)
        .filter_map(|(key, meta)| {
            let r = meta["phx_ref"].as_str()?;
            Some((r, json!({ "key": key, "meta": meta })))
        })
        .collect();
    let own = format!("{origin}.");
    let lost: Vec<(&str, Value)> = mine
        .iter()
        .filter(|&(r, _)| !stored.contains_key(*r))
        .map(|(r, entry)| (*r, entry.clone()))
        .collect();
    let gone: Vec<(&String, &Value)> = stored
        .iter()
        .filter(|&(r, _)| r.starts_with(&own) && !mine.contains_key(r.as_str()))
        .collect();
    if lost.is_empty() && gone.is_empty() {
        return Ok(());
    }
    tracing::info!(
        topic,
        re_added = lost.len(),
        removed = gone.len(),
        "realtime: presence reconciled after a Redis outage"
    );
    let mut pipe = redis::pipe();
    for (r, entry) in &lost {
        pipe.hset(&hash, *r, entry.to_string()).ignore();
    }
    for (r, _) in &gone {
        pipe.hdel(&hash, *r).ignore();
    }
    pipe.pexpire(&hash, PRESENCE_TTL_MS).ignore();
    let joins = state_of(lost.into_iter().map(|(_, entry)| entry));
    let leaves = state_of(gone.into_iter().map(|(_, entry)| entry.clone()));
    let diff = Outbound::new(
        topic,
        "presence_diff",
        json!({ "joins": joins, "leaves": leaves }),
        None,
    );
    pipe.publish(parts.channel(topic), encode(origin, &diff))
        .ignore();
    pipe.query_async(&mut parts.conn.clone()).await
}

/// After the subscription was re-established: this instance's presences
/// back into the store, and every local channel a fresh `presence_state`
/// (the diffs published while it was cut off are gone).
async fn resync(parts: &Parts) {
    parts.resync.notify_one();
    let mut own: HashMap<String, Value> = parts.hub.presence_states().into_iter().collect();
    for topic in parts.hub.topic_names() {
        let local = own.remove(&topic).unwrap_or_else(|| json!({}));
        match parts.presences(&topic).await {
            Ok(stored) => parts.hub.deliver_remote(&Outbound::new(
                &topic,
                "presence_state",
                with_local(stored, &local),
                None,
            )),
            Err(e) => tracing::debug!(error = %e, topic, "realtime: presence re-sync failed"),
        }
    }
}

/// Delivers the other instances' messages to local subscribers.
async fn subscribe(client: redis::Client, parts: Parts) {
    let own = parts.hub.instance().to_owned();
    let pattern = format!("{}rt:*", parts.prefix);
    let mut reconnecting = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.psubscribe(&pattern).await {
                    tracing::warn!(error = %e, "realtime: cannot subscribe to Redis");
                } else {
                    if reconnecting {
                        resync(&parts).await;
                    }
                    reconnecting = true;
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
        // GET: the key's previous value; none means it lapsed (or Redis
        // lost it), so others may have removed this instance's presences.
        let was: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(parts.alive_key(&own))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_TTL_MS)
            .arg("GET")
            .query_async(&mut conn)
            .await;
        match was {
            Ok(None) => parts.resync.notify_one(),
            Ok(Some(_)) if !parts.dirty().is_empty() => parts.resync.notify_one(),
            Ok(Some(_)) => {}
            Err(_) => continue,
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
