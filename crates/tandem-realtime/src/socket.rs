//! One WebSocket connection speaking Supabase Realtime's protocol: joins
//! (with authorization), broadcast (self/ack), presence, heartbeats, token
//! refresh and expiry. Reads, queued pushes and shutdown are one `select!`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tandem_core::Shutdown;
use tokio::time::{Instant, sleep_until};
use uuid::Uuid;

use crate::{
    hub::{Conn, Hub, Outbound},
    limit::Bucket,
    protocol::{self, Body, Frame, Inbound, Outgoing, Vsn},
    token::{TokenSigner, unix_now},
};

/// Decides who may join which topic.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Whether `user` may join `topic` (without the `realtime:` prefix).
    async fn may_join(&self, user: Uuid, topic: &str) -> bool;
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_channels: 100,
            idle_timeout: Duration::from_secs(60),
            messages_per_second: 200,
            typing_interval: Duration::from_secs(3),
            presence_interval: Duration::from_secs(2),
        }
    }
}

/// Everything a connection needs.
pub struct SocketContext {
    /// This instance's channels.
    pub hub: Arc<Hub>,
    /// Negotiated serializer.
    pub vsn: Vsn,
    /// The user of the session cookie, if the browser sent one.
    pub cookie_user: Option<Uuid>,
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
    /// Instance shutdown.
    pub shutdown: Shutdown,
}

/// A joined channel.
struct Channel {
    join_ref: Option<String>,
    echo: bool,
    ack: bool,
    presence_key: String,
    user: Uuid,
    /// Expiry (unix s) of the access token it joined with; none for cookies.
    expires: Option<u64>,
    /// Last `typing` broadcast let through.
    last_typing: Option<Instant>,
    /// Last presence update applied, and the newest one waiting for its turn.
    last_presence: Option<Instant>,
    pending_presence: Option<Map<String, Value>>,
}

/// Runs the connection until the client leaves, misbehaves or the server stops.
pub async fn serve(socket: WebSocket, ctx: SocketContext) {
    let (mut sink, mut stream) = socket.split();
    let (conn, mut inbox) = ctx.hub.connect();
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let mut last_heard = Instant::now();
    // One timer per connection, set to the next thing due (idle check,
    // coalesced presence, token expiry) rather than ticking: ten thousand
    // idle connections cost no wake-ups.
    let mut due = std::pin::pin!(sleep_until(last_heard + ctx.limits.idle_timeout));
    let mut bucket = Bucket::new(ctx.limits.messages_per_second);
    // Long-lived: made once, not on every turn of the loop.
    let overflowed = inbox.overflowed.clone();
    let mut overflowed = std::pin::pin!(overflowed.notified());
    let shutdown = ctx.shutdown.clone();
    let mut stopping = std::pin::pin!(shutdown.wait());
    let delivery_latency = metrics::histogram!("tandem_realtime_delivery_seconds");
    let messages_in = metrics::counter!("tandem_realtime_messages_in_total");
    metrics::gauge!("tandem_realtime_connections").increment(1.0);
    let close = loop {
        // Biased: stop signals, then queued pushes, then the socket. Pushes
        // first means one read attempt per wake-up instead of two; reads
        // cannot starve, as a connection whose queue never empties is cut
        // off as too slow.
        tokio::select! {
            biased;
            () = &mut stopping => break Some((1001, "server shutting down".into())),
            () = &mut overflowed => break Some((1013, "too slow: messages were dropped".into())),
            Some(out) = inbox.rx.recv() => {
                // Write everything already queued, then flush once: under load
                // this turns many small writes into one syscall.
                // The oldest queued push's wait is this batch's latency.
                delivery_latency.record(out.created.elapsed().as_secs_f64());
                let mut next = Some(out);
                let mut written = 0;
                let mut failed = false;
                while let Some(out) = next.take() {
                    if let Some(frame) = out.encoded(ctx.vsn.slot(), |o| encode_push(ctx.vsn, o))
                        && sink.feed(to_message(frame)).await.is_err()
                    {
                        failed = true;
                        break;
                    }
                    written += 1;
                    if written < 64 {
                        next = inbox.rx.try_recv().ok();
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break None;
                }
            }
            frame = stream.next() => {
                let inbound = match frame {
                    Some(Ok(Message::Text(text))) => protocol::decode_text(ctx.vsn, text.as_str()),
                    Some(Ok(Message::Binary(bytes))) => protocol::decode_binary(ctx.vsn, &bytes),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                };
                last_heard = Instant::now();
                messages_in.increment(1);
                match inbound {
                    Ok(message) => {
                        let replies = if message.topic == "phoenix" || bucket.take() {
                            handle(&ctx, &conn, &mut channels, message).await
                        } else {
                            metrics::counter!("tandem_realtime_rate_limited_total").increment(1);
                            vec![error(&message, "rate limit exceeded: slow down")]
                        };
                        if send_all(&mut sink, ctx.vsn, replies).await.is_err() {
                            break None;
                        }
                        let next = next_due(&ctx.limits, &channels, last_heard);
                        if next < due.deadline() {
                            due.as_mut().reset(next);
                        }
                    }
                    Err(e) => break Some((1007, e.to_string())),
                }
            }
            () = &mut due => {
                if last_heard.elapsed() > ctx.limits.idle_timeout {
                    break Some((1001, "no heartbeat".into()));
                }
                flush_presence(&ctx, &conn, &mut channels);
                let expired = expire_tokens(&ctx, &conn, &mut channels);
                if send_all(&mut sink, ctx.vsn, expired).await.is_err() {
                    break None;
                }
                due.as_mut().reset(next_due(&ctx.limits, &channels, last_heard));
            }
        }
    };
    if let Some((code, mut reason)) = close {
        // A close reason may be at most 123 bytes.
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
    for topic in channels.keys() {
        ctx.hub.leave(topic, conn.id);
    }
    metrics::gauge!("tandem_realtime_connections").decrement(1.0);
}

/// A frame to send directly to this connection.
struct Direct {
    join_ref: Option<String>,
    msg_ref: Option<String>,
    topic: String,
    event: &'static str,
    payload: Value,
}

fn reply(m: &Inbound, ok: bool, response: Value) -> Direct {
    Direct {
        join_ref: m.join_ref.clone(),
        msg_ref: m.msg_ref.clone(),
        topic: m.topic.clone(),
        event: "phx_reply",
        payload: protocol::reply(ok, response),
    }
}

fn error(m: &Inbound, reason: &str) -> Direct {
    reply(m, false, json!({ "reason": reason }))
}

async fn send_all(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    vsn: Vsn,
    frames: Vec<Direct>,
) -> Result<(), axum::Error> {
    for d in frames {
        let out = Outgoing::Text {
            join_ref: d.join_ref.as_deref(),
            msg_ref: d.msg_ref.as_deref(),
            topic: &d.topic,
            event: d.event,
            payload: &d.payload,
        };
        if let Some(frame) = protocol::encode(vsn, &out) {
            sink.send(to_message(frame)).await?;
        }
    }
    Ok(())
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

fn encode_push(vsn: Vsn, o: &Outbound) -> Option<Frame> {
    match &o.body {
        Some(body) => {
            let event = o.payload["event"].as_str().unwrap_or_default();
            protocol::encode(
                vsn,
                &Outgoing::Broadcast {
                    topic: &o.topic,
                    event,
                    body,
                },
            )
        }
        None => protocol::encode(
            vsn,
            &Outgoing::Text {
                join_ref: None,
                msg_ref: None,
                topic: &o.topic,
                event: &o.event,
                payload: &o.payload,
            },
        ),
    }
}

async fn handle(
    ctx: &SocketContext,
    conn: &Conn,
    channels: &mut HashMap<String, Channel>,
    m: Inbound,
) -> Vec<Direct> {
    if m.topic == "phoenix" {
        return match m.event.as_str() {
            "heartbeat" => vec![reply(&m, true, json!({}))],
            _ => vec![error(&m, "unknown event")],
        };
    }
    if m.event != "phx_join"
        && let (Some(sent), Some(current)) = (
            m.join_ref.as_deref(),
            channels.get(&m.topic).and_then(|c| c.join_ref.as_deref()),
        )
        && sent != current
    {
        // A message for an earlier join of this topic (the client rejoined
        // since): acting on it would mix up the two joins.
        return vec![error(&m, "stale join_ref: this channel was joined again")];
    }
    match m.event.as_str() {
        "phx_join" => join(ctx, conn, channels, &m).await,
        "phx_leave" => {
            if channels.remove(&m.topic).is_some() {
                ctx.hub.leave(&m.topic, conn.id);
            }
            vec![reply(&m, true, json!({}))]
        }
        "access_token" => refresh_token(ctx, conn, channels, &m),
        _ => {
            let Some(channel) = channels.get_mut(&m.topic) else {
                return vec![error(&m, "join the channel first")];
            };
            match m.event.as_str() {
                "broadcast" => broadcast(ctx, conn, channel, m),
                "presence" => presence(ctx, conn, channel, &m),
                _ => vec![error(&m, "unknown event")],
            }
        }
    }
}

/// Who is asking: an access token in the join, else the socket's `apikey`
/// token, else the session cookie. Returns the user and token expiry.
fn identify(ctx: &SocketContext, m: &Inbound) -> Option<(Uuid, Option<u64>)> {
    let now = unix_now();
    let token = m.payload["access_token"].as_str().or(ctx.apikey.as_deref());
    if let Some((user, expires)) = token.and_then(|t| ctx.signer.verify(t, now)) {
        return Some((user, Some(expires)));
    }
    ctx.cookie_user.map(|user| (user, None))
}

async fn join(
    ctx: &SocketContext,
    conn: &Conn,
    channels: &mut HashMap<String, Channel>,
    m: &Inbound,
) -> Vec<Direct> {
    let Some(name) = m
        .topic
        .strip_prefix("realtime:")
        .filter(|n| !n.is_empty() && m.topic.len() <= 255)
    else {
        return vec![error(
            m,
            "topics look like realtime:<name> (at most 255 bytes)",
        )];
    };
    if !channels.contains_key(&m.topic) && channels.len() >= ctx.limits.max_channels {
        return vec![error(m, "too many channels on this connection")];
    }
    let Some((user, expires)) = identify(ctx, m) else {
        return vec![error(
            m,
            "unauthorized: log in, or join with a valid access_token",
        )];
    };
    if !ctx.authorizer.may_join(user, name).await {
        return vec![error(m, "unauthorized: you may not join this channel")];
    }
    let config = &m.payload["config"];
    let presence_key = config["presence"]["key"].as_str().filter(|k| !k.is_empty());
    let channel = Channel {
        join_ref: m.join_ref.clone(),
        echo: config["broadcast"]["self"].as_bool().unwrap_or(false),
        ack: config["broadcast"]["ack"].as_bool().unwrap_or(false),
        presence_key: presence_key.map_or_else(|| user.to_string(), str::to_owned),
        user,
        expires,
        last_typing: None,
        last_presence: None,
        pending_presence: None,
    };
    channels.insert(m.topic.clone(), channel);
    let local = ctx.hub.join(&m.topic, conn);
    let state = ctx.presence.state(&m.topic, local).await;
    vec![
        reply(m, true, json!({ "postgres_changes": [] })),
        Direct {
            join_ref: m.join_ref.clone(),
            msg_ref: None,
            topic: m.topic.clone(),
            event: "presence_state",
            payload: state,
        },
    ]
}

fn broadcast(ctx: &SocketContext, conn: &Conn, channel: &mut Channel, m: Inbound) -> Vec<Direct> {
    let event = m.payload["event"].as_str().unwrap_or_default().to_owned();
    if event.is_empty() || event.len() > 255 {
        return vec![error(
            &m,
            "a broadcast needs an event name of at most 255 bytes",
        )];
    }
    if event == "typing" {
        // The roadmap's typing throttle, enforced here too: extra indicators
        // within the interval carry no news and are dropped.
        let now = Instant::now();
        if channel
            .last_typing
            .is_some_and(|t| now - t < ctx.limits.typing_interval)
        {
            metrics::counter!("tandem_realtime_throttled_total", "kind" => "typing").increment(1);
            return if channel.ack {
                vec![reply(&m, true, json!({}))]
            } else {
                Vec::new()
            };
        }
        channel.last_typing = Some(now);
    }
    let body = m
        .body
        .clone()
        .unwrap_or_else(|| Body::Json(m.payload.get("payload").cloned().unwrap_or(Value::Null)));
    let exclude = (!channel.echo).then_some(conn.id);
    if !ctx
        .hub
        .publish_limited(&Outbound::broadcast(&m.topic, &event, body, exclude))
    {
        return vec![error(&m, "channel rate limit exceeded: slow down")];
    }
    if channel.ack {
        vec![reply(&m, true, json!({}))]
    } else {
        Vec::new()
    }
}

fn presence(ctx: &SocketContext, conn: &Conn, channel: &mut Channel, m: &Inbound) -> Vec<Direct> {
    match m.payload["event"].as_str() {
        Some("track") => {
            let meta: Map<String, Value> = m.payload["payload"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let now = Instant::now();
            if channel
                .last_presence
                .is_some_and(|t| now - t < ctx.limits.presence_interval)
            {
                // Coalesced: the newest update is applied when the interval ends.
                channel.pending_presence = Some(meta);
            } else {
                channel.last_presence = Some(now);
                ctx.hub
                    .track(&m.topic, conn.id, &channel.presence_key, meta);
            }
            vec![reply(m, true, json!({}))]
        }
        Some("untrack") => {
            channel.pending_presence = None;
            ctx.hub.untrack(&m.topic, conn.id);
            vec![reply(m, true, json!({}))]
        }
        _ => vec![error(m, "presence events are track and untrack")],
    }
}

/// A refreshed token extends the channel; a bad one closes it.
fn refresh_token(
    ctx: &SocketContext,
    conn: &Conn,
    channels: &mut HashMap<String, Channel>,
    m: &Inbound,
) -> Vec<Direct> {
    let Some(channel) = channels.get_mut(&m.topic) else {
        return Vec::new();
    };
    let token = m.payload["access_token"].as_str().unwrap_or_default();
    match ctx.signer.verify(token, unix_now()) {
        Some((user, expires)) if user == channel.user => {
            channel.expires = Some(expires);
            Vec::new()
        }
        _ => close_channel(ctx, conn, channels, &m.topic, "Invalid access token"),
    }
}

/// When the connection next has something to do on its own: the idle
/// check, a coalesced presence update, or a token expiry.
fn next_due(limits: &Limits, channels: &HashMap<String, Channel>, last_heard: Instant) -> Instant {
    let now = Instant::now();
    let unix = unix_now();
    let mut due = last_heard + limits.idle_timeout;
    for channel in channels.values() {
        if channel.pending_presence.is_some() {
            let at = channel
                .last_presence
                .map_or(now, |t| t + limits.presence_interval);
            due = due.min(at);
        }
        if let Some(expires) = channel.expires {
            // Whole seconds from a truncated now: never early.
            due = due.min(now + Duration::from_secs(expires.saturating_sub(unix)));
        }
    }
    due.max(now)
}

/// Applies coalesced presence updates whose interval has ended.
fn flush_presence(ctx: &SocketContext, conn: &Conn, channels: &mut HashMap<String, Channel>) {
    let now = Instant::now();
    for (topic, channel) in channels.iter_mut() {
        let due = channel
            .last_presence
            .is_none_or(|t| now - t >= ctx.limits.presence_interval);
        if due && let Some(meta) = channel.pending_presence.take() {
            channel.last_presence = Some(now);
            metrics::counter!("tandem_realtime_throttled_total", "kind" => "presence").increment(1);
            ctx.hub.track(topic, conn.id, &channel.presence_key, meta);
        }
    }
}

/// Closes channels whose access token expired, as Supabase does: a `system`
/// error, then `phx_close`.
fn expire_tokens(
    ctx: &SocketContext,
    conn: &Conn,
    channels: &mut HashMap<String, Channel>,
) -> Vec<Direct> {
    let now = unix_now();
    let expired: Vec<String> = channels
        .iter()
        .filter(|(_, c)| c.expires.is_some_and(|e| e <= now))
        .map(|(t, _)| t.clone())
        .collect();
    let mut frames = Vec::new();
    for topic in expired {
        frames.extend(close_channel(
            ctx,
            conn,
            channels,
            &topic,
            "Token has expired",
        ));
    }
    frames
}

/// Leaves `topic` and tells the client why.
fn close_channel(
    ctx: &SocketContext,
    conn: &Conn,
    channels: &mut HashMap<String, Channel>,
    topic: &str,
    message: &str,
) -> Vec<Direct> {
    let Some(channel) = channels.remove(topic) else {
        return Vec::new();
    };
    ctx.hub.leave(topic, conn.id);
    let name = topic.strip_prefix("realtime:").unwrap_or(topic);
    vec![
        Direct {
            join_ref: channel.join_ref.clone(),
            msg_ref: None,
            topic: topic.to_owned(),
            event: "system",
            payload: json!({ "extension": "system", "status": "error", "message": message, "channel": name }),
        },
        Direct {
            join_ref: channel.join_ref.clone(),
            msg_ref: channel.join_ref,
            topic: topic.to_owned(),
            event: "phx_close",
            payload: json!({}),
        },
    ]
}
