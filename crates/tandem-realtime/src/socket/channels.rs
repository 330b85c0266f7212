//! What a connection does on its channels: join (authorized, the presence
//! key forced to the user), leave, broadcast (stamped with the sender,
//! server event names refused), presence (bounded), token refresh and
//! expiry.

use serde_json::{Map, Value, json};
use tokio::time::{Duration, Instant};

use super::{
    Local, SocketContext,
    frames::{Direct, error, reply},
};
use crate::{
    access::Identity,
    hub::Outbound,
    protocol::{Body, Inbound},
};

/// A joined channel.
pub(super) struct Channel {
    join_ref: Option<String>,
    echo: bool,
    ack: bool,
    /// Who joined it, with what credential.
    pub(super) identity: Identity,
    /// Expiry (unix s) of the access token it joined with; none for cookies.
    expires: Option<u64>,
    /// Last `typing` broadcast let through.
    last_typing: Option<Instant>,
    /// Last presence update applied, and the newest one waiting for its turn.
    last_presence: Option<Instant>,
    pending_presence: Option<Map<String, Value>>,
}

/// Acts on one frame from the client; returns the frames to answer with.
pub(super) async fn handle(ctx: &SocketContext, local: &mut Local, m: Inbound) -> Vec<Direct> {
    if m.topic == "phoenix" {
        return match m.event.as_str() {
            "heartbeat" => vec![reply(&m, true, json!({}))],
            _ => vec![error(&m, "unknown event")],
        };
    }
    if m.event != "phx_join"
        && let (Some(sent), Some(current)) = (
            m.join_ref.as_deref(),
            local
                .channels
                .get(&m.topic)
                .and_then(|c| c.join_ref.as_deref()),
        )
        && sent != current
    {
        // A message for an earlier join of this topic (the client rejoined
        // since): acting on it would mix up the two joins.
        return vec![error(&m, "stale join_ref: this channel was joined again")];
    }
    match m.event.as_str() {
        "phx_join" => join(ctx, local, &m).await,
        "phx_leave" => {
            if local.channels.remove(&m.topic).is_some() {
                ctx.hub.leave(&m.topic, local.conn.id);
            }
            vec![reply(&m, true, json!({}))]
        }
        "access_token" => refresh_token(ctx, local, &m),
        _ => {
            let conn = local.conn.id;
            let Some(channel) = local.channels.get_mut(&m.topic) else {
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
/// token, else the session cookie. Returns the identity and token expiry.
fn identify(ctx: &SocketContext, m: &Inbound) -> Option<(Identity, Option<u64>)> {
    let now = ctx.signer.now();
    let token = m.payload["access_token"].as_str().or(ctx.apikey.as_deref());
    if let Some(claims) = token.and_then(|t| ctx.signer.claims(t, now)) {
        let identity = Identity {
            user: claims.user,
            session: claims.session,
        };
        return Some((identity, Some(claims.expires)));
    }
    ctx.cookie.clone().map(|identity| (identity, None))
}

async fn join(ctx: &SocketContext, local: &mut Local, m: &Inbound) -> Vec<Direct> {
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
    if !local.channels.contains_key(&m.topic) && local.channels.len() >= ctx.limits.max_channels {
        return vec![error(m, "too many channels on this connection")];
    }
    let Some((identity, expires)) = identify(ctx, m) else {
        return vec![error(
            m,
            "unauthorized: log in, or join with a valid access_token",
        )];
    };
    // Hear of this user's revocations before checking: one announced while
    // the checks run is queued, and acted on once the channel is joined.
    local.watch(&ctx.hub, identity.user);
    if identity.session.is_some() && !ctx.authorizer.session_live(&identity).await {
        return vec![error(m, "unauthorized: this login session has ended")];
    }
    if !ctx.authorizer.may_join(identity.user, name).await {
        return vec![error(m, "unauthorized: you may not join this channel")];
    }
    local.anonymous = None;
    local.join_by = None;
    // The presence key is the user id whatever the client asked for
    // (`config.presence.key`): no one can appear online as someone else.
    let config = &m.payload["config"];
    let channel = Channel {
        join_ref: m.join_ref.clone(),
        echo: config["broadcast"]["self"].as_bool().unwrap_or(false),
        ack: config["broadcast"]["ack"].as_bool().unwrap_or(false),
        identity,
        expires,
        last_typing: None,
        last_presence: None,
        pending_presence: None,
    };
    local.channels.insert(m.topic.clone(), channel);
    let state = ctx.hub.join(&m.topic, &local.conn);
    let state = ctx.presence.state(&m.topic, state).await;
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

fn ack_or_nothing(channel: &Channel, m: &Inbound) -> Vec<Direct> {
    if channel.ack {
        vec![reply(m, true, json!({}))]
    } else {
        Vec::new()
    }
}

fn broadcast(
    ctx: &SocketContext,
    conn: crate::ConnId,
    channel: &mut Channel,
    m: Inbound,
) -> Vec<Direct> {
    let event = m.payload["event"].as_str().unwrap_or_default().to_owned();
    if event.is_empty() || event.len() > 255 {
        return vec![error(
            &m,
            "a broadcast needs an event name of at most 255 bytes",
        )];
    }
    if ctx.reserved_events.contains(&event.as_str()) {
        metrics::counter!("tandem_realtime_refused_total", "why" => "reserved_event").increment(1);
        return vec![error(&m, "this event name is reserved for the server")];
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
            return ack_or_nothing(channel, &m);
        }
        channel.last_typing = Some(now);
    }
    let body = m
        .body
        .clone()
        .unwrap_or_else(|| Body::Json(m.payload.get("payload").cloned().unwrap_or(Value::Null)));
    let exclude = (!channel.echo).then_some(conn);
    let sender = Some(channel.identity.user);
    let message = Outbound::from_sender(&m.topic, &event, body, sender, exclude);
    if !ctx.hub.publish_limited(&message) {
        return vec![error(&m, "channel rate limit exceeded: slow down")];
    }
    ack_or_nothing(channel, &m)
}

fn presence(
    ctx: &SocketContext,
    conn: crate::ConnId,
    channel: &mut Channel,
    m: &Inbound,
) -> Vec<Direct> {
    match m.payload["event"].as_str() {
        Some("track") => {
            let meta = &m.payload["payload"];
            // Frames are at most 64 KiB: measuring by encoding is bounded.
            let size = serde_json::to_vec(meta).map_or(usize::MAX, |v| v.len());
            if size > ctx.limits.presence_meta_bytes {
                metrics::counter!("tandem_realtime_refused_total", "why" => "presence_size")
                    .increment(1);
                let limit = ctx.limits.presence_meta_bytes;
                return vec![error(
                    m,
                    &format!("presence meta too large: at most {limit} bytes of JSON"),
                )];
            }
            let meta: Map<String, Value> = meta.as_object().cloned().unwrap_or_default();
            let now = Instant::now();
            if channel
                .last_presence
                .is_some_and(|t| now - t < ctx.limits.presence_interval)
            {
                // Coalesced: the newest update is applied when the interval ends.
                channel.pending_presence = Some(meta);
            } else {
                let key = channel.identity.user.to_string();
                if let Err(refused) = ctx.hub.track(&m.topic, conn, &key, meta) {
                    metrics::counter!("tandem_realtime_refused_total", "why" => "presence_full")
                        .increment(1);
                    return vec![error(m, &refused.to_string())];
                }
                channel.last_presence = Some(now);
            }
            vec![reply(m, true, json!({}))]
        }
        Some("untrack") => {
            channel.pending_presence = None;
            ctx.hub.untrack(&m.topic, conn);
            vec![reply(m, true, json!({}))]
        }
        _ => vec![error(m, "presence events are track and untrack")],
    }
}

/// A refreshed token extends the channel; a bad one closes it.
fn refresh_token(ctx: &SocketContext, local: &mut Local, m: &Inbound) -> Vec<Direct> {
    let Some(channel) = local.channels.get_mut(&m.topic) else {
        return Vec::new();
    };
    let token = m.payload["access_token"].as_str().unwrap_or_default();
    match ctx.signer.claims(token, ctx.signer.now()) {
        Some(claims) if claims.user == channel.identity.user => {
            channel.expires = Some(claims.expires);
            channel.identity.session = claims.session;
            Vec::new()
        }
        _ => close_channel(ctx, local, &m.topic, "Invalid access token"),
    }
}

/// When the connection next has something to do on its own: the idle
/// check, the join deadline, a coalesced presence update, or a token expiry.
pub(super) fn next_due(ctx: &SocketContext, local: &Local, last_heard: Instant) -> Instant {
    let limits = &ctx.limits;
    let now = Instant::now();
    let unix = ctx.signer.now();
    let mut due = last_heard + limits.idle_timeout;
    if let Some(by) = local.join_by {
        due = due.min(by);
    }
    for channel in local.channels.values() {
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
pub(super) fn flush_presence(ctx: &SocketContext, local: &mut Local) {
    let now = Instant::now();
    for (topic, channel) in &mut local.channels {
        let due = channel
            .last_presence
            .is_none_or(|t| now - t >= ctx.limits.presence_interval);
        if due && let Some(meta) = channel.pending_presence.take() {
            channel.last_presence = Some(now);
            metrics::counter!("tandem_realtime_throttled_total", "kind" => "presence").increment(1);
            let key = channel.identity.user.to_string();
            if let Err(refused) = ctx.hub.track(topic, local.conn.id, &key, meta) {
                tracing::debug!(%refused, topic, "realtime: coalesced presence update refused");
            }
        }
    }
}

/// Closes channels whose access token expired, as Supabase does: a `system`
/// error, then `phx_close`.
pub(super) fn expire_tokens(ctx: &SocketContext, local: &mut Local) -> Vec<Direct> {
    let now = ctx.signer.now();
    let expired: Vec<String> = local
        .channels
        .iter()
        .filter(|(_, c)| c.expires.is_some_and(|e| e <= now))
        .map(|(t, _)| t.clone())
        .collect();
    let mut frames = Vec::new();
    for topic in expired {
        frames.extend(close_channel(ctx, local, &topic, "Token has expired"));
    }
    frames
}

/// Leaves `topic` and tells the client why.
pub(super) fn close_channel(
    ctx: &SocketContext,
    local: &mut Local,
    topic: &str,
    message: &str,
) -> Vec<Direct> {
    let Some(channel) = local.channels.remove(topic) else {
        return Vec::new();
    };
    ctx.hub.leave(topic, local.conn.id);
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
