//! Supabase Realtime / Phoenix frames, as `@supabase/realtime-js` 2.x sends
//! and expects them (see `docs/realtime-protocol.md`).
//!
//! - vsn 1.0.0: text frames, JSON objects `{join_ref, ref, topic, event, payload}`.
//! - vsn 2.0.0: text frames are JSON arrays `[join_ref, ref, topic, event, payload]`;
//!   binary frames carry user broadcasts: kind 3 from the client, kind 4 from
//!   the server, with u8 lengths.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use uuid::Uuid;

/// Binary frame kind of a user broadcast pushed by a client.
const KIND_CLIENT_BROADCAST: u8 = 3;
/// Binary frame kind of a user broadcast pushed by the server.
const KIND_SERVER_BROADCAST: u8 = 4;
/// Payload encodings in binary frames.
const ENCODING_BINARY: u8 = 0;
const ENCODING_JSON: u8 = 1;

/// The serializer a client negotiated with `vsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    /// `1.0.0`: JSON objects only.
    V1,
    /// `2.0.0`: JSON arrays plus binary user broadcasts (the client default).
    V2,
}

impl Vsn {
    /// Parses the `vsn` query parameter (absent means 1.0.0, as in Phoenix).
    pub fn parse(vsn: Option<&str>) -> Option<Self> {
        match vsn {
            None | Some("1.0.0") => Some(Self::V1),
            Some("2.0.0") => Some(Self::V2),
            Some(_) => None,
        }
    }

    /// Index for per-serializer encoding caches.
    pub fn slot(self) -> usize {
        match self {
            Self::V1 => 0,
            Self::V2 => 1,
        }
    }
}

/// A broadcast's user payload: JSON, or raw bytes (binary frames only).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON payload.
    Json(Value),
    /// Raw bytes (a client sent an ArrayBuffer).
    Binary(Bytes),
}

/// A frame from a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The channel's join reference.
    pub join_ref: Option<String>,
    /// This message's reference (replies echo it).
    pub msg_ref: Option<String>,
    /// Topic (`realtime:…` or `phoenix`).
    pub topic: String,
    /// Event (`phx_join`, `broadcast`, `presence`, `heartbeat`, …).
    pub event: String,
    /// Payload. For binary broadcasts: `{type:"broadcast", event}` plus `body`.
    pub payload: Value,
    /// The user payload of a binary broadcast.
    pub body: Option<Body>,
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// Not valid JSON, or not the shape this serializer uses.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A binary frame shorter than its header says.
    #[error("truncated binary frame")]
    Truncated,
    /// A binary kind clients may not send.
    #[error("unsupported binary frame kind {0}")]
    UnsupportedKind(u8),
    /// A binary frame on a 1.0.0 connection.
    #[error("binary frames need vsn 2.0.0")]
    BinaryOnV1,
}

fn malformed(why: impl Into<String>) -> FrameError {
    FrameError::Malformed(why.into())
}

fn opt_string(v: &Value) -> Result<Option<String>, FrameError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(malformed("refs must be strings or null")),
    }
}

fn string(v: &Value, what: &str) -> Result<String, FrameError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| malformed(format!("{what} must be a string")))
}

/// Decodes a text frame.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Inbound, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let (join_ref, msg_ref, topic, event, payload) = match (vsn, value) {
        (Vsn::V2, Value::Array(mut parts)) if parts.len() == 5 => {
            let payload = parts.pop().unwrap_or(Value::Null);
            let event = string(&parts[3], "event")?;
            let topic = string(&parts[2], "topic")?;
            (
                opt_string(&parts[0])?,
                opt_string(&parts[1])?,
                topic,
                event,
                payload,
            )
        }
        (Vsn::V1, Value::Object(mut map)) => {
            let topic = string(map.get("topic").unwrap_or(&Value::Null), "topic")?;
            let event = string(map.get("event").unwrap_or(&Value::Null), "event")?;
            (
                opt_string(map.get("join_ref").unwrap_or(&Value::Null))?,
                opt_string(map.get("ref").unwrap_or(&Value::Null))?,
                topic,
                event,
                map.remove("payload").unwrap_or(Value::Null),
            )
        }
        (Vsn::V2, _) => return Err(malformed("expected [join_ref, ref, topic, event, payload]")),
        (Vsn::V1, _) => return Err(malformed("expected {topic, event, payload, ref, join_ref}")),
    };
    if !payload.is_object() {
        return Err(malformed("payload must be an object"));
    }
    Ok(Inbound {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
        body: None,
    })
}

/// Decodes a binary frame (kind 3: a client's user broadcast).
pub fn decode_binary(vsn: Vsn, frame: &[u8]) -> Result<Inbound, FrameError> {
    if vsn == Vsn::V1 {
        return Err(FrameError::BinaryOnV1);
    }
    let (&kind, rest) = frame.split_first().ok_or(FrameError::Truncated)?;
    if kind != KIND_CLIENT_BROADCAST {
        return Err(FrameError::UnsupportedKind(kind));
    }
    let header = rest.get(..6).ok_or(FrameError::Truncated)?;
    let lens = [header[0], header[1], header[2], header[3], header[4]].map(usize::from);
    let encoding = header[5];
    let mut cursor = &rest[6..];
    let mut take = |len: usize| -> Result<&[u8], FrameError> {
        let (field, tail) = (
            cursor.get(..len).ok_or(FrameError::Truncated)?,
            &cursor[len..],
        );
        cursor = tail;
        Ok(field)
    };
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("header fields must be UTF-8"))
    };
    let join_ref = text(take(lens[0])?)?;
    let msg_ref = text(take(lens[1])?)?;
    let topic = text(take(lens[2])?)?;
    let user_event = text(take(lens[3])?)?;
    let _metadata = take(lens[4])?;
    let body = match encoding {
        ENCODING_JSON => {
            Body::Json(serde_json::from_slice(cursor).map_err(|e| malformed(e.to_string()))?)
        }
        ENCODING_BINARY => Body::Binary(Bytes::copy_from_slice(cursor)),
        other => return Err(malformed(format!("unknown payload encoding {other}"))),
    };
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Inbound {
        join_ref: non_empty(join_ref),
        msg_ref: non_empty(msg_ref),
        topic,
        event: "broadcast".into(),
        payload: json!({ "type": "broadcast", "event": user_event }),
        body: Some(body),
    })
}

/// A frame the server sends.
#[derive(Debug, Clone)]
pub enum Outgoing<'a> {
    /// A reply or push as a text frame.
    Text {
        /// Join ref of the channel (or none).
        join_ref: Option<&'a str>,
        /// The ref being replied to (or none for pushes).
        msg_ref: Option<&'a str>,
        /// Topic.
        topic: &'a str,
        /// Event.
        event: &'a str,
        /// Payload.
        payload: &'a Value,
    },
    /// A user broadcast.
    Broadcast {
        /// Topic.
        topic: &'a str,
        /// The user's event name.
        event: &'a str,
        /// The user's payload.
        body: &'a Body,
        /// Who sent it (none: the server), as `meta.sender` beside the
        /// payload: outside anything the sender controls.
        sender: Option<Uuid>,
    },
}

/// An encoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Send as a text frame.
    Text(String),
    /// Send as a binary frame.
    Binary(Bytes),
}

/// Encodes `message` for a client on `vsn`. `None` when it cannot be
/// represented there (binary payloads for 1.0.0 clients, fields over 255 bytes).
pub fn encode(vsn: Vsn, message: &Outgoing<'_>) -> Option<Frame> {
    match (vsn, message) {
        (Vsn::V2, Outgoing::Broadcast { topic, event, body, sender }) => {
            encode_kind4(topic, event, body, *sender)
        }
        (_, Outgoing::Broadcast { topic, event, body, sender }) => {
            let Body::Json(payload) = body else {
                return None;
            };
            let mut payload = json!({ "type": "broadcast", "event": event, "payload": payload });
            if let (Some(sender), Some(fields)) = (sender, payload.as_object_mut()) {
                fields.insert("meta".into(), json!({ "sender": sender }));
            }
            encode(
                vsn,
                &Outgoing::Text { join_ref: None, msg_ref: None, topic, event: "broadcast", payload: &payload },
            )
        }
        (Vsn::V2, Outgoing::Text { join_ref, msg_ref, topic, event, payload }) => {
            Some(Frame::Text(json!([join_ref, msg_ref, topic, event, payload]).to_string()))
        }
        (Vsn::V1, Outgoing::Text { join_ref, msg_ref, topic, event, payload }) => Some(Frame::Text(
            json!({ "join_ref": join_ref, "ref": msg_ref, "topic": topic, "event": event, "payload": payload })
                .to_string(),
        )),
    }
}

fn encode_kind4(topic: &str, event: &str, body: &Body, sender: Option<Uuid>) -> Option<Frame> {
    let topic_len = u8::try_from(topic.len()).ok()?;
    let event_len = u8::try_from(event.len()).ok()?;
    let (encoding, payload) = match body {
        Body::Json(value) => (ENCODING_JSON, Bytes::from(serde_json::to_vec(value).ok()?)),
        Body::Binary(bytes) => (ENCODING_BINARY, bytes.clone()),
    };
    // realtime-js hands the metadata JSON to listeners as `meta`.
    let meta = sender.map(|s| format!(r#"{{"sender":"{s}"}}"#));
    let meta = meta.as_deref().unwrap_or_default();
    let meta_len = u8::try_from(meta.len()).ok()?;
    let mut out =
        BytesMut::with_capacity(5 + topic.len() + event.len() + meta.len() + payload.len());
    out.put_slice(&[
        KIND_SERVER_BROADCAST,
        topic_len,
        event_len,
        meta_len,
        encoding,
    ]);
    out.put_slice(topic.as_bytes());
    out.put_slice(event.as_bytes());
    out.put_slice(meta.as_bytes());
    out.put_slice(&payload);
    Some(Frame::Binary(out.freeze()))
}

/// A `phx_reply` payload.
pub fn reply(ok: bool, response: Value) -> Value {
    json!({ "status": if ok { "ok" } else { "error" }, "response": response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_text_frames_round_trip() {
        let got = decode_text(
            Vsn::V2,
            r#"["1","2","realtime:room1","phx_join",{"config":{}}]"#,
        );
        let inbound = got.expect("valid");
        assert_eq!(inbound.join_ref.as_deref(), Some("1"));
        assert_eq!(inbound.msg_ref.as_deref(), Some("2"));
        assert_eq!(inbound.topic, "realtime:room1");
        assert_eq!(inbound.event, "phx_join");
        let payload = reply(true, json!({"postgres_changes": []}));
        let frame = encode(
            Vsn::V2,
            &Outgoing::Text {
                join_ref: Some("1"),
                msg_ref: Some("2"),
                topic: "realtime:room1",
                event: "phx_reply",
                payload: &payload,
            },
        );
        assert_eq!(
            frame,
            Some(Frame::Text(r#"["1","2","realtime:room1","phx_reply",{"response":{"postgres_changes":[]},"status":"ok"}]"#.into()))
        );
    }

    #[test]
    fn v1_objects_decode_and_heartbeats_need_no_join_ref() {
        let hb = decode_text(
            Vsn::V1,
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}"#,
        )
        .expect("valid");
        assert_eq!(
            (hb.join_ref, hb.msg_ref.as_deref(), hb.topic.as_str()),
            (None, Some("3"), "phoenix")
        );
        let frame = encode(
            Vsn::V1,
            &Outgoing::Broadcast {
                topic: "realtime:r",
                event: "e",
                body: &Body::Json(json!({"a": 1})),
                sender: None,
            },
        );
        let Some(Frame::Text(text)) = frame else {
            panic!("v1 broadcasts are text")
        };
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            back["payload"],
            json!({"type": "broadcast", "event": "e", "payload": {"a": 1}})
        );
        assert_eq!(back["join_ref"], Value::Null);
    }

    #[test]
    fn kind3_frames_from_realtime_js_decode() {
        // Bytes observed from @supabase/realtime-js 2.109.0: send({type:'broadcast', event:'ev', payload:{a:1}}).
        let mut frame = vec![3, 1, 1, 14, 2, 0, 1];
        frame.extend_from_slice(b"67realtime:room1ev{\"a\":1}");
        let inbound = decode_binary(Vsn::V2, &frame).expect("valid");
        assert_eq!(inbound.join_ref.as_deref(), Some("6"));
        assert_eq!(inbound.msg_ref.as_deref(), Some("7"));
        assert_eq!(inbound.topic, "realtime:room1");
        assert_eq!(inbound.payload["event"], "ev");
        assert_eq!(inbound.body, Some(Body::Json(json!({"a": 1}))));
    }

    #[test]
    fn kind4_frames_have_the_documented_layout() {
        let body = Body::Json(json!({"a": 1}));
        let Some(Frame::Binary(bytes)) = encode(
            Vsn::V2,
            &Outgoing::Broadcast {
                topic: "realtime:r",
                event: "ev",
                body: &body,
                sender: None,
            },
        ) else {
            panic!("v2 broadcasts are binary")
        };
        let mut expected = vec![4, 10, 2, 0, 1];
        expected.extend_from_slice(b"realtime:rev{\"a\":1}");
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert!(
            encode(
                Vsn::V1,
                &Outgoing::Broadcast {
                    topic: "t",
                    event: "e",
                    body: &Body::Binary(Bytes::from_static(b"x")),
                    sender: None,
                }
            )
            .is_none()
        );
        let long = "t".repeat(256);
        assert!(
            encode(
                Vsn::V2,
                &Outgoing::Broadcast {
                    topic: &long,
                    event: "e",
                    body: &body,
                    sender: None,
                }
            )
            .is_none()
        );
    }

    #[test]
    fn broadcasts_name_their_sender_beside_the_payload() {
        let sender = Uuid::now_v7();
        let body = Body::Json(json!({"meta": {"sender": "forged"}}));
        let out = Outgoing::Broadcast {
            topic: "realtime:r",
            event: "ev",
            body: &body,
            sender: Some(sender),
        };
        let Some(Frame::Binary(bytes)) = encode(Vsn::V2, &out) else {
            panic!("v2 broadcasts are binary")
        };
        let meta = format!(r#"{{"sender":"{sender}"}}"#);
        assert_eq!(usize::from(bytes[3]), meta.len());
        assert_eq!(&bytes[5 + 10 + 2..][..meta.len()], meta.as_bytes());
        let Some(Frame::Text(text)) = encode(Vsn::V1, &out) else {
            panic!("v1 broadcasts are text")
        };
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(back["payload"]["meta"]["sender"], sender.to_string());
        assert_eq!(back["payload"]["payload"]["meta"]["sender"], "forged");
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let v2_bad = [
            "",
            "garbage",
            "[]",
            r#"["1","2","t","e"]"#,
            r#"["1","2",3,"e",{}]"#,
            r#"["1","2","t","e",[]]"#,
            r#"[{},"2","t","e",{}]"#,
            r#"{"topic":"t","event":"e","payload":{}}"#,
        ];
        for text in v2_bad {
            assert!(decode_text(Vsn::V2, text).is_err(), "v2 accepted {text:?}");
        }
        let v1_bad = [
            "",
            r#"["1","2","t","e",{}]"#,
            r#"{"topic":"t","payload":{}}"#,
            r#"{"topic":"t","event":"e","payload":"x"}"#,
        ];
        for text in v1_bad {
            assert!(decode_text(Vsn::V1, text).is_err(), "v1 accepted {text:?}");
        }
        assert_eq!(decode_binary(Vsn::V2, &[]), Err(FrameError::Truncated));
        assert_eq!(
            decode_binary(Vsn::V2, &[3, 1, 1]),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            decode_binary(Vsn::V2, &[3, 9, 0, 0, 0, 0, 1, b'x']),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            decode_binary(Vsn::V2, &[4, 0, 0, 0, 0]),
            Err(FrameError::UnsupportedKind(4))
        );
        assert_eq!(decode_binary(Vsn::V1, &[3]), Err(FrameError::BinaryOnV1));
        assert!(matches!(
            decode_binary(Vsn::V2, &[3, 0, 0, 1, 1, 0, 1, b't', b'e', b'{']),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode_binary(Vsn::V2, &[3, 0, 0, 1, 1, 0, 7, b't', b'e']),
            Err(FrameError::Malformed(_))
        ));
    }
}
