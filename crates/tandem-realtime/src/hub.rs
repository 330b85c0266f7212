//! Channels of one instance: who subscribes to which topic, fan-out of
//! broadcasts, and presence. Every message is shared (`Arc`) by all its
//! recipients and encoded at most once per serializer; each connection has a
//! bounded queue, and a connection that lets it fill up is cut off instead
//! of growing memory.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use serde_json::{Map, Value, json};
use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc},
    time::Instant,
};
use uuid::Uuid;

use crate::{
    ConnId,
    access::{CONTROL_TOPIC, Notifier, REVOKE_EVENT, Revocation, Revocations, Watchers},
    limit::{Bucket, Budgets},
    presence::{Presence, PresenceLimits, PresenceRefused},
    protocol::{Body, Frame},
};

/// A server push for every subscriber of a topic (except `exclude`).
#[derive(Debug)]
pub struct Outbound {
    /// Topic, e.g. `realtime:room:42`.
    pub topic: String,
    /// Event, e.g. `broadcast`, `presence_diff`.
    pub event: String,
    /// Payload.
    pub payload: Value,
    /// The user payload, for user broadcasts (then `payload` is
    /// `{type: "broadcast", event}`).
    pub body: Option<Body>,
    /// The sender, when it asked not to receive its own broadcast.
    pub exclude: Option<ConnId>,
    /// The authenticated user who sent a client broadcast (none: the
    /// server). Stamped into every copy; clients cannot set it.
    pub sender: Option<Uuid>,
    /// When it was published here (for the delivery latency metric).
    pub created: Instant,
    encoded: [OnceLock<Option<Frame>>; 2],
}

impl Outbound {
    /// A push of `event` with `payload` on `topic`.
    pub fn new(topic: &str, event: &str, payload: Value, exclude: Option<ConnId>) -> Arc<Self> {
        Self::build(topic, event.to_owned(), payload, None, exclude, None)
    }

    /// A server broadcast of `event` with `body`.
    pub fn broadcast(topic: &str, event: &str, body: Body, exclude: Option<ConnId>) -> Arc<Self> {
        Self::from_sender(topic, event, body, None, exclude)
    }

    /// A broadcast of `event` with `body` that `sender` (a user; none for
    /// the server) sent: every recipient is told who sent it.
    pub fn from_sender(
        topic: &str,
        event: &str,
        body: Body,
        sender: Option<Uuid>,
        exclude: Option<ConnId>,
    ) -> Arc<Self> {
        let payload = json!({ "type": "broadcast", "event": event });
        let event = "broadcast".to_owned();
        Self::build(topic, event, payload, Some(body), exclude, sender)
    }

    fn build(
        topic: &str,
        event: String,
        payload: Value,
        body: Option<Body>,
        exclude: Option<ConnId>,
        sender: Option<Uuid>,
    ) -> Arc<Self> {
        Arc::new(Self {
            topic: topic.to_owned(),
            event,
            payload,
            body,
            exclude,
            sender,
            created: Instant::now(),
            encoded: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// The frame for serializer `slot` (0 or 1), encoded by the first caller
    /// and shared by every other recipient on that serializer.
    pub fn encoded(
        &self,
        slot: usize,
        encode: impl FnOnce(&Self) -> Option<Frame>,
    ) -> Option<Frame> {
        self.encoded[slot.min(1)]
            .get_or_init(|| encode(self))
            .clone()
    }
}

/// One connection as the hub sees it.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Its id.
    pub id: ConnId,
    tx: mpsc::Sender<Arc<Outbound>>,
    overflowed: Arc<Notify>,
    notifier: Notifier,
}

/// The connection's side: its queue, and the signal that it fell behind.
#[derive(Debug)]
pub struct Inbox {
    /// Pushes to write to the socket, in order per topic.
    pub rx: mpsc::Receiver<Arc<Outbound>>,
    /// Fires once if the queue overflowed: the connection must close.
    pub overflowed: Arc<Notify>,
    /// Access of this connection's users that ended.
    pub revocations: Revocations,
}

#[derive(Default)]
struct Topic {
    subscribers: HashMap<ConnId, Conn>,
    presence: Presence,
    /// Client broadcasts let through per second (per channel, per instance).
    budget: Option<Bucket>,
}

/// The topics of this instance.
pub struct Hub {
    topics: Mutex<HashMap<String, Topic>>,
    next_conn: AtomicU64,
    queue: usize,
    channel_rate: Option<u32>,
    presence_limits: PresenceLimits,
    /// Broadcasts per user per second sent other than on a socket (REST).
    user_budgets: Option<Budgets<Uuid>>,
    watchers: Watchers,
    /// Slots for connections that came without a credential.
    anonymous: Arc<Semaphore>,
    /// Where messages that originate here go to reach other instances.
    forward: OnceLock<mpsc::Sender<Arc<Outbound>>>,
    /// This instance's id: prefixes presence refs, so other instances can
    /// tell whose presences to clean up when an instance dies.
    instance: String,
}

impl Hub {
    /// A hub whose connections buffer at most `queue` pushes each.
    pub fn new(queue: usize) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            queue: queue.max(1),
            channel_rate: None,
            presence_limits: PresenceLimits::default(),
            user_budgets: None,
            watchers: Watchers::default(),
            anonymous: Arc::new(Semaphore::new(1024)),
            forward: OnceLock::new(),
            instance: format!("{:016x}", rand_id()),
        }
    }

    /// Limits client broadcasts to `per_second` per channel (bursts of the
    /// same size), counted on each instance.
    #[must_use]
    pub fn with_channel_rate(mut self, per_second: u32) -> Self {
        self.channel_rate = Some(per_second);
        self
    }

    /// Limits broadcasts a user sends without a socket to `per_second`
    /// (see [`Hub::take_user_budget`]), counted on each instance.
    #[must_use]
    pub fn with_user_rate(mut self, per_second: u32) -> Self {
        self.user_budgets = Some(Budgets::new(per_second));
        self
    }

    /// Takes `n` broadcasts from `user`'s budget: `false` (and nothing
    /// taken) if that is more than they have left.
    pub fn take_user_budget(&self, user: Uuid, n: u32) -> bool {
        let allowed = self.user_budgets.as_ref().is_none_or(|b| b.take_n(user, n));
        if !allowed {
            metrics::counter!("tandem_realtime_rate_limited_total", "scope" => "user").increment(1);
        }
        allowed
    }

    /// Bounds presence per topic and per key.
    #[must_use]
    pub fn with_presence_limits(mut self, limits: PresenceLimits) -> Self {
        self.presence_limits = limits;
        self
    }

    /// At most `max` connections without a credential at a time (each
    /// holds a slot until it joins a channel or closes).
    #[must_use]
    pub fn with_anonymous_cap(mut self, max: usize) -> Self {
        self.anonymous = Arc::new(Semaphore::new(max));
        self
    }

    /// A slot for a connection without a credential; `None` when all are taken.
    pub fn admit_anonymous(&self) -> Option<OwnedSemaphorePermit> {
        self.anonymous.clone().try_acquire_owned().ok()
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Sends every message that originates here to `forward` as well (the
    /// distributed backplane). Set once, at start-up.
    pub fn forward_to(&self, forward: mpsc::Sender<Arc<Outbound>>) {
        let _ = self.forward.set(forward);
    }

    /// Delivers locally, and to other instances if there is a backplane.
    fn originate(&self, topic: &mut Topic, message: &Arc<Outbound>) {
        deliver(topic, message);
        self.forward_only(message);
    }

    fn forward_only(&self, message: &Arc<Outbound>) {
        if let Some(forward) = self.forward.get()
            && forward.try_send(message.clone()).is_err()
        {
            metrics::counter!("tandem_realtime_backplane_dropped_total").increment(1);
        }
    }

    /// Delivers a message that came from another instance.
    pub fn deliver_remote(&self, message: &Arc<Outbound>) {
        if message.topic == CONTROL_TOPIC {
            match serde_json::from_value::<Revocation>(message.payload.clone()) {
                Ok(revocation) => self.watchers.notify(&Arc::new(revocation)),
                Err(e) => tracing::warn!(error = %e, "realtime: unreadable revocation"),
            }
            return;
        }
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(&message.topic) {
            deliver(entry, message);
        }
    }

    /// Topics with subscribers on this instance.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics().keys().cloned().collect()
    }

    /// This instance's presence state of every topic that has one.
    pub fn presence_states(&self) -> Vec<(String, Value)> {
        self.topics()
            .iter()
            .filter(|(_, t)| !t.presence.is_empty())
            .map(|(name, t)| (name.clone(), t.presence.state()))
            .collect()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection.
    pub fn connect(&self) -> (Conn, Inbox) {
        let (tx, rx) = mpsc::channel(self.queue);
        let (revoke_tx, revoke_rx) = mpsc::channel(16);
        let overflowed = Arc::new(Notify::new());
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let notifier = Notifier {
            tx: revoke_tx,
            overflowed: overflowed.clone(),
        };
        let conn = Conn {
            id,
            tx,
            overflowed: overflowed.clone(),
            notifier,
        };
        let revocations = Revocations { rx: revoke_rx };
        (
            conn,
            Inbox {
                rx,
                overflowed,
                revocations,
            },
        )
    }

    /// `conn` holds a credential of `user`: it hears of `user`'s revocations.
    pub fn watch(&self, user: Uuid, conn: &Conn) {
        self.watchers.watch(user, conn.id, &conn.notifier);
    }

    /// `conn` no longer holds a credential of `user` (it closed).
    pub fn unwatch(&self, user: Uuid, conn: ConnId) {
        self.watchers.unwatch(user, conn);
    }

    /// Tells the connections of `revocation`'s user, here and on every
    /// other instance, that their access ended.
    pub fn revoke(&self, revocation: Revocation) {
        let payload = match serde_json::to_value(&revocation) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "realtime: cannot encode a revocation");
                Value::Null
            }
        };
        self.watchers.notify(&Arc::new(revocation));
        self.forward_only(&Outbound::new(CONTROL_TOPIC, REVOKE_EVENT, payload, None));
    }

    /// Subscribes `conn` to `topic`; returns the current `presence_state`.
    pub fn join(&self, topic: &str, conn: &Conn) -> Value {
        let mut topics = self.topics();
        let entry = topics.entry(topic.to_owned()).or_default();
        entry.subscribers.insert(conn.id, conn.clone());
        metrics::gauge!("tandem_realtime_channels").set(topics.len() as f64);
        topics[topic].presence.state()
    }

    /// Unsubscribes `conn` from `topic`, announcing it left if it was present.
    pub fn leave(&self, topic: &str, conn: ConnId) {
        let mut topics = self.topics();
        let Some(entry) = topics.get_mut(topic) else {
            return;
        };
        entry.subscribers.remove(&conn);
        let diff = entry.presence.untrack(conn);
        if !diff.is_empty() {
            self.originate(
                entry,
                &Outbound::new(topic, "presence_diff", diff.to_json(), None),
            );
        }
        if entry.subscribers.is_empty() {
            topics.remove(topic);
        }
        metrics::gauge!("tandem_realtime_channels").set(topics.len() as f64);
    }

    /// Sends `message` to the topic's subscribers here, in order, and to
    /// the other instances' through the backplane.
    pub fn publish(&self, message: &Arc<Outbound>) {
        self.send(message, false);
    }

    /// Like [`Hub::publish`], for a broadcast a client sent: `false`, and
    /// nothing sent, when the channel is over its rate.
    pub fn publish_limited(&self, message: &Arc<Outbound>) -> bool {
        self.send(message, true)
    }

    fn send(&self, message: &Arc<Outbound>, limited: bool) -> bool {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(&message.topic) {
            if limited && let Some(rate) = self.channel_rate {
                let budget = entry.budget.get_or_insert_with(|| Bucket::new(rate));
                if !budget.take() {
                    metrics::counter!("tandem_realtime_rate_limited_total", "scope" => "channel")
                        .increment(1);
                    return false;
                }
            }
            deliver(entry, message);
        }
        self.forward_only(message);
        true
    }

    /// `conn` tracks `payload` under `key` in `topic`'s presence, unless
    /// that would take the topic past its [`PresenceLimits`].
    pub fn track(
        &self,
        topic: &str,
        conn: ConnId,
        key: &str,
        payload: Map<String, Value>,
    ) -> Result<(), PresenceRefused> {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(topic) {
            let (total, under_key) = entry.presence.counts_without(key, conn);
            if total >= self.presence_limits.per_topic {
                return Err(PresenceRefused::TopicFull);
            }
            if under_key >= self.presence_limits.per_key {
                return Err(PresenceRefused::KeyFull);
            }
            let diff = entry.presence.track(key, conn, payload, &self.instance);
            self.originate(
                entry,
                &Outbound::new(topic, "presence_diff", diff.to_json(), None),
            );
        }
        Ok(())
    }

    /// `conn` stops tracking in `topic`.
    pub fn untrack(&self, topic: &str, conn: ConnId) {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(topic) {
            let diff = entry.presence.untrack(conn);
            if !diff.is_empty() {
                self.originate(
                    entry,
                    &Outbound::new(topic, "presence_diff", diff.to_json(), None),
                );
            }
        }
    }

    /// Number of subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.topics().get(topic).map_or(0, |t| t.subscribers.len())
    }
}

/// A random 64-bit id (instances need not be numbered centrally).
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one(nanos)
}

/// Queues `message` for every subscriber (but the excluded one). A full
/// queue means a consumer too slow to keep up: it is dropped from the topic
/// and told to close, so one slow client never stalls or bloats the rest.
fn deliver(topic: &mut Topic, message: &Arc<Outbound>) {
    let mut slow = Vec::new();
    let mut queued = 0;
    for (id, conn) in &topic.subscribers {
        if Some(*id) == message.exclude {
            continue;
        }
        match conn.tx.try_send(message.clone()) {
            Ok(()) => queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                conn.overflowed.notify_one();
                slow.push(*id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => slow.push(*id),
        }
    }
    metrics::counter!("tandem_realtime_messages_out_total").increment(queued);
    for id in slow {
        topic.subscribers.remove(&id);
        metrics::counter!("tandem_realtime_dropped_connections_total").increment(1);
    }
}

#[cfg(test)]
mod tests;
