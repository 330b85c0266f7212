//! Frames a connection writes: replies and pushes of its own, and the
//! hub's pushes encoded for its serializer (with the sender's stamp).

use axum::extract::ws::Message;
use futures_util::SinkExt;
use serde_json::{Value, json};

use crate::{
    hub::Outbound,
    protocol::{self, Frame, Inbound, Outgoing, Vsn},
};

/// A frame to send directly to this connection.
pub(super) struct Direct {
    /// The channel's join ref (or none).
    pub(super) join_ref: Option<String>,
    /// The ref replied to (none for pushes).
    pub(super) msg_ref: Option<String>,
    /// Topic.
    pub(super) topic: String,
    /// Event.
    pub(super) event: &'static str,
    /// Payload.
    pub(super) payload: Value,
}

/// A `phx_reply` to `m`.
pub(super) fn reply(m: &Inbound, ok: bool, response: Value) -> Direct {
    Direct {
        join_ref: m.join_ref.clone(),
        msg_ref: m.msg_ref.clone(),
        topic: m.topic.clone(),
        event: "phx_reply",
        payload: protocol::reply(ok, response),
    }
}

/// A refusal of `m`, with a reason the client can act on.
pub(super) fn error(m: &Inbound, reason: &str) -> Direct {
    reply(m, false, json!({ "reason": reason }))
}

/// Writes `frames` in order.
pub(super) async fn send_all(
    sink: &mut super::Sink,
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

/// An encoded frame as a WebSocket message.
pub(super) fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

/// A hub push for a client on `vsn`: user broadcasts carry their sender.
pub(super) fn encode_push(vsn: Vsn, o: &Outbound) -> Option<Frame> {
    match &o.body {
        Some(body) => {
            let event = o.payload["event"].as_str().unwrap_or_default();
            protocol::encode(
                vsn,
                &Outgoing::Broadcast {
                    topic: &o.topic,
                    event,
                    body,
                    sender: o.sender,
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
