//! One WebSocket connection speaking Supabase Realtime's protocol: joins
//! (with authorization), broadcast (self/ack), presence, heartbeats, token
//! refresh and expiry. Reads, queued pushes, revocations and shutdown are
//! one `select!`. What a connection may do on its channels is in
//! [`channels`].

mod channels;
mod frames;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tandem_core::Shutdown;
use tokio::{
    sync::OwnedSemaphorePermit,
    time::{Instant, sleep_until},
};
use uuid::Uuid;

use crate::{
    access::{Identity, Revocation},
    hub::{Conn, Hub},
    limit::Bucket,
    protocol::{self, Vsn},
    token::TokenSigner,
};
use channels::{Channel, close_channel, expire_tokens, flush_presence, handle, next_due};
use frames::{encode_push, send_all, to_message};

/// Decides who may join which topic.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Whether `user` may join `topic` (without the `realtime:` prefix).
    async fn may_join(&self, user: Uuid, topic: &str) -> bool;

    /// Whether the login session a credential is tied to is still live
    /// (credentials tied to none are checked by their expiry alone).
    async fn session_live(&self, _identity: &Identity) -> bool {
        true
    }
}

/// Where a joiner's `presence_state` comes from: this instance's presence
/// (embedded), or every instance's (the Redis backplane).
#[async_trait]
pub trait PresenceView: Send + Sync {
    /// The state of `topic`, given this instance's `local` state.
    async fn state(&self, topic: &str, local: Value) -> Value;
}

/// Presence of this instance only (one instance is all there is).
pub struct LocalPresence;

#[async_trait]
impl PresenceView for LocalPresence {
    async fn state(&self, _: &str, local: Value) -> Value {
        local
    }
}

/// Limits of one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Channels one connection may join.
    pub max_channels: usize,
    /// Close a connection silent for this long (clients heartbeat every 25 s).
    pub idle_timeout: Duration,
    /// Messages per second one connection may send (burst of the same size).
    /// Supabase's plans allow 100–2,500 per second per *project*.
    pub messages_per_second: u32,
    /// `typing` broadcasts one connection may send per channel (roadmap: 1 per 3 s).
    pub typing_interval: Duration,
    /// Presence updates are coalesced to one per this interval (roadmap: 2 s).
    pub presence_interval: Duration,
    /// Largest presence meta (as JSON) one connection may track.
    pub presence_meta_bytes: usize,
    /// An unauthenticated connection that has not joined a channel within
    /// this long is closed.
    pub auth_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_channels: 100,
            idle_timeout: Duration::from_secs(60),
            messages_per_second: 200,
            typing_interval: Duration::from_secs(3),
            presence_interval: Duration::from_secs(2),
            presence_meta_bytes: 1024,
            auth_deadline: Duration::from_secs(10),
        }
    }
}

/// Everything a connection needs.
pub struct SocketContext {
    /// This instance's channels.
    pub hub: Arc<Hub>,
    /// Negotiated serializer.
    pub vsn: Vsn,
    /// The user and session of the session cookie, if the browser sent one.
    pub cookie: Option<Identity>,
    /// The `apikey` query parameter (an access token, for clients whose
    /// first join carries none).
    pub apikey: Option<String>,
    /// Checks access tokens.
    pub signer: TokenSigner,
    /// Topic rules.
    pub authorizer: Arc<dyn Authorizer>,
    /// Presence across instances.
    pub presence: Arc<dyn PresenceView>,
    /// Limits.
    pub limits: Limits,
    /// Broadcast events only the server sends (e.g. `messages`): a client
    /// sending one is refused, so none can pass for the server.
    pub reserved_events: &'static [&'static str],
    /// For a connection with no valid credential yet: its slot among the
    /// capped unauthenticated ones, given back at its first join.
    pub anonymous: Option<OwnedSemaphorePermit>,
    /// Instance shutdown.
    pub shutdown: Shutdown,
}

/// A connection's own state besides its socket.
struct Local {
    conn: Conn,
    channels: HashMap<String, Channel>,
    /// Credentials the connection itself came with (cookie, `apikey`).
    identities: Vec<Identity>,
    /// Users whose revocations this connection hears about.
    watched: HashSet<Uuid>,
    /// Held until the first join of a connection that came without a credential.
    anonymous: Option<OwnedSemaphorePermit>,
    /// When such a connection must have joined by.
    join_by: Option<Instant>,
}

impl Local {
    fn watch(&mut self, hub: &Hub, user: Uuid) {
        if self.watched.insert(user) {
            hub.watch(user, &self.conn);
        }
    }

    /// Whether `revocation` takes away a credential the connection relies on.
    fn loses_credential(&self, revocation: &Revocation) -> bool {
        self.identities
            .iter()
            .chain(self.channels.values().map(|c| &c.identity))
            .any(|i| revocation.ends(i))
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Why the loop ended: a close frame to send (code, reason), or none when
/// the socket is gone.
type Close = Option<(u16, String)>;

impl Local {
    /// A new connection's state: the credentials it came with (cookie,
    /// `apikey`), and a join deadline if it came with none.
    fn open(ctx: &mut SocketContext, conn: Conn, now: Instant) -> Self {
        let anonymous = ctx.anonymous.take();
        let mut local = Local {
            conn,
            channels: HashMap::new(),
            identities: Vec::new(),
            watched: HashSet::new(),
            join_by: anonymous.as_ref().map(|_| now + ctx.limits.auth_deadline),
            anonymous,
        };
        let apikey = (ctx.apikey.as_deref()).and_then(|t| ctx.signer.claims(t, ctx.signer.now()));
        let apikey = apikey.map(|c| Identity {
            user: c.user,
            session: c.session,
        });
        for identity in ctx.cookie.iter().chain(apikey.iter()) {
            local.watch(&ctx.hub, identity.user);
            local.identities.push(identity.clone());
        }
        local
    }

    /// Leaves every topic and stops watching every user.
    fn close(&self, hub: &Hub) {
        for topic in self.channels.keys() {
            hub.leave(topic, self.conn.id);
        }
        for user in &self.watched {
            hub.unwatch(*user, self.conn.id);
        }
    }
}

/// Runs the connection until the client leaves, misbehaves, loses its
/// credential or the server stops.
pub async fn serve(socket: WebSocket, mut ctx: SocketContext) {
    let (mut sink, mut stream) = socket.split();
    let (conn, mut inbox) = ctx.hub.connect();
    let now = Instant::now();
    let mut local = Local::open(&mut ctx, conn, now);
    let mut last_heard = now;
    // One timer per connection, set to the next thing due (idle check,
    // coalesced presence, token expiry, join deadline) rather than ticking:
    // ten thousand idle connections cost no wake-ups.
    let mut due = std::pin::pin!(sleep_until(next_due(&ctx, &local, last_heard)));
    let mut bucket = Bucket::new(ctx.limits.messages_per_second);
    // Long-lived: made once, not on every turn of the loop.
    let overflowed = inbox.overflowed.clone();
    let mut overflowed = std::pin::pin!(overflowed.notified());
    let shutdown = ctx.shutdown.clone();
    let mut stopping = std::pin::pin!(shutdown.wait());
    let delivery_latency = metrics::histogram!("tandem_realtime_delivery_seconds");
    let messages_in = metrics::counter!("tandem_realtime_messages_in_total");
    metrics::gauge!("tandem_realtime_connections").increment(1.0);
    let close: Close = loop {
        // Biased: stop signals, then revocations and queued pushes, then the
        // socket. Pushes first means one read attempt per wake-up instead of
        // two; reads cannot starve, as a connection whose queue never
        // empties is cut off as too slow.
        tokio::select! {
            biased;
            () = &mut stopping => break Some((1001, "server shutting down".into())),
            () = &mut overflowed => break Some((1013, "too slow: messages were dropped".into())),
            Some(revocation) = inbox.revocations.rx.recv() => {
                if let Err(close) = revoke(&ctx, &mut local, &mut sink, &revocation).await {
                    break close;
                }
            }
            Some(out) = inbox.rx.recv() => {
                // The oldest queued push's wait is this batch's latency.
                delivery_latency.record(out.created.elapsed().as_secs_f64());
                if write_pushes(&mut sink, ctx.vsn, out, &mut inbox.rx).await.is_err() {
                    break None;
                }
            }
            frame = stream.next() => {
                let inbound = match frame {
                    Some(Ok(Message::Text(text))) => protocol::decode_text(ctx.vsn, text.as_str()),
                    Some(Ok(Message::Binary(bytes))) => protocol::decode_binary(ctx.vsn, &bytes),
                    // Each ping costs a pong: pings spend the same budget.
                    Some(Ok(Message::Ping(_))) if !bucket.take() => {
                        metrics::counter!("tandem_realtime_rate_limited_total").increment(1);
                        break Some((1008, "rate limit exceeded: too many pings".into()));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                };
                last_heard = Instant::now();
                messages_in.increment(1);
                let message = match inbound {
                    Ok(message) => message,
                    Err(e) => break Some((1007, e.to_string())),
                };
                // Heartbeats count too: every frame costs a reply.
                let replies = if bucket.take() {
                    handle(&ctx, &mut local, message).await
                } else {
                    metrics::counter!("tandem_realtime_rate_limited_total").increment(1);
                    vec![frames::error(&message, "rate limit exceeded: slow down")]
                };
                if send_all(&mut sink, ctx.vsn, replies).await.is_err() {
                    break None;
                }
                let next = next_due(&ctx, &local, last_heard);
                if next < due.deadline() {
                    due.as_mut().reset(next);
                }
            }
            () = &mut due => {
                if let Err(close) = on_due(&ctx, &mut local, &mut sink, last_heard).await {
                    break close;
                }
                due.as_mut().reset(next_due(&ctx, &local, last_heard));
            }
        }
    };
    if let Some((code, reason)) = close {
        send_close(&mut sink, code, reason).await;
    }
    local.close(&ctx.hub);
    metrics::gauge!("tandem_realtime_connections").decrement(1.0);
}

/// Acts on a revocation: the whole connection ends if it relied on the
/// revoked credential, else the one channel it names closes.
async fn revoke(
    ctx: &SocketContext,
    local: &mut Local,
    sink: &mut Sink,
    revocation: &Revocation,
) -> Result<(), Close> {
    if local.loses_credential(revocation) {
        metrics::counter!("tandem_realtime_revoked_total", "what" => "connection").increment(1);
        return Err(Some((1008, "session ended: sign in again".into())));
    }
    if let Revocation::Topic { user, topic } = revocation
        && local
            .channels
            .get(topic)
            .is_some_and(|c| c.identity.user == *user)
    {
        metrics::counter!("tandem_realtime_revoked_total", "what" => "channel").increment(1);
        let frames = close_channel(ctx, local, topic, "Access to this channel ended");
        send_all(sink, ctx.vsn, frames).await.map_err(|_| None)?;
    }
    Ok(())
}

/// Writes `first` and what else is already queued (up to 64 pushes), then
/// flushes once: under load, many small writes become one syscall.
async fn write_pushes(
    sink: &mut Sink,
    vsn: Vsn,
    first: Arc<crate::hub::Outbound>,
    rx: &mut tokio::sync::mpsc::Receiver<Arc<crate::hub::Outbound>>,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        if let Some(frame) = out.encoded(vsn.slot(), |o| encode_push(vsn, o)) {
            sink.feed(to_message(frame)).await?;
        }
        written += 1;
        if written < 64 {
            next = rx.try_recv().ok();
        }
    }
    sink.flush().await
}

/// The connection's timer fired: idle and join deadlines, coalesced
/// presence, expired tokens.
async fn on_due(
    ctx: &SocketContext,
    local: &mut Local,
    sink: &mut Sink,
    last_heard: Instant,
) -> Result<(), Close> {
    if last_heard.elapsed() > ctx.limits.idle_timeout {
        return Err(Some((1001, "no heartbeat".into())));
    }
    if local.join_by.is_some_and(|t| t <= Instant::now()) {
        metrics::counter!("tandem_realtime_refused_total", "why" => "join_deadline").increment(1);
        return Err(Some((
            1008,
            "authenticate and join a channel sooner".into(),
        )));
    }
    flush_presence(ctx, local);
    let expired = expire_tokens(ctx, local);
    send_all(sink, ctx.vsn, expired).await.map_err(|_| None)
}

/// Sends a close frame; its reason cut to the 123 bytes a close frame holds.
async fn send_close(sink: &mut Sink, code: u16, mut reason: String) {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}
