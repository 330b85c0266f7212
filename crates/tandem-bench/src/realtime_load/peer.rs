//! The two protocols the realtime benchmark speaks: Supabase Realtime
//! (vsn 2.0.0, Tandem's server) and Socket.IO 4 over Engine.IO v4 (the Node
//! peer in `bench/node-socketio`). Same scenario for both: join a channel,
//! broadcast `{"t": <send time µs>}` to everyone else in it.

use std::io;

use serde_json::json;

use super::wire::{BINARY, TEXT, Ws};

/// A protocol, with what it needs to connect.
pub enum Proto {
    /// Supabase Realtime vsn 2.0.0 with a Tandem access token.
    Supabase { token: String },
    /// Socket.IO 4 (Engine.IO v4, WebSocket transport only).
    SocketIo,
}

/// What a received frame means to the benchmark.
pub enum Event {
    /// A broadcast sent at this time (µs since the epoch).
    Delivery(u64),
    /// A frame to answer with (Engine.IO ping → pong).
    Answer(&'static [u8]),
    /// Anything else.
    Other,
}

fn refused(what: String) -> io::Error {
    io::Error::other(what)
}

impl Proto {
    /// The WebSocket path with its query.
    pub fn path(&self) -> String {
        match self {
            Self::Supabase { token } => {
                format!("/realtime/v1/websocket?apikey={token}&vsn=2.0.0")
            }
            Self::SocketIo => "/socket.io/?EIO=4&transport=websocket".to_owned(),
        }
    }

    /// Connects to `addr` and joins `channel`, with broadcasts to self off.
    pub async fn join(&self, addr: &str, channel: &str) -> io::Result<Ws> {
        let mut ws = Ws::connect(addr, &self.path()).await?;
        match self {
            Self::Supabase { .. } => {
                let join = json!(["1", "1", format!("realtime:{channel}"), "phx_join",
                    {"config": {"broadcast": {"self": false}}}]);
                ws.send(TEXT, join.to_string().as_bytes()).await?;
                loop {
                    let (_, frame) = ws.next().await?;
                    let text = String::from_utf8_lossy(frame);
                    if text.contains("phx_reply") {
                        if text.contains("\"ok\"") {
                            break;
                        }
                        return Err(refused(format!("join refused: {text}")));
                    }
                }
            }
            Self::SocketIo => {
                // Engine.IO open ("0{…}"), then connect to namespace "/" and
                // wait for its "40{…}", then join with an ack (id 0).
                expect_prefix(&mut ws, b"0").await?;
                ws.send(TEXT, b"40").await?;
                expect_prefix(&mut ws, b"40").await?;
                let join = format!("420{}", json!(["join", channel]));
                ws.send(TEXT, join.as_bytes()).await?;
                expect_prefix(&mut ws, b"430").await?;
            }
        }
        Ok(ws)
    }

    /// The frame a publisher sends for broadcast number `n` at time `t`.
    pub fn publish(&self, channel: &str, n: u64, t: u64) -> Vec<u8> {
        match self {
            Self::Supabase { .. } => json!([null, n.to_string(), format!("realtime:{channel}"),
                "broadcast", {"type": "broadcast", "event": "b", "payload": {"t": t}}])
            .to_string()
            .into_bytes(),
            Self::SocketIo => format!("42{}", json!(["broadcast", channel, {"t": t}])).into_bytes(),
        }
    }

    /// The application heartbeat a client sends on its own, if any.
    pub fn heartbeat(&self) -> Option<&'static [u8]> {
        match self {
            Self::Supabase { .. } => Some(br#"[null,"hb","phoenix","heartbeat",{}]"#),
            // Engine.IO v4: the server pings, the client answers.
            Self::SocketIo => None,
        }
    }

    /// Reads a frame without a JSON parser (the generator must stay much
    /// cheaper than the servers it measures).
    pub fn on_frame(&self, opcode: u8, frame: &[u8]) -> Event {
        match self {
            // Kind 4: [4, topic len, event len, ... ] then the user payload.
            Self::Supabase { .. } if opcode == BINARY => {
                let Some(header) = frame.get(..5) else {
                    return Event::Other;
                };
                let skip =
                    5 + usize::from(header[1]) + usize::from(header[2]) + usize::from(header[3]);
                frame
                    .get(skip..)
                    .and_then(|p| p.strip_prefix(b"{\"t\":"))
                    .and_then(leading_number)
                    .map_or(Event::Other, Event::Delivery)
            }
            Self::SocketIo if opcode == TEXT => {
                if frame == b"2" {
                    return Event::Answer(b"3");
                }
                frame
                    .strip_prefix(br#"42["b",{"t":"#)
                    .and_then(leading_number)
                    .map_or(Event::Other, Event::Delivery)
            }
            _ => Event::Other,
        }
    }
}

fn leading_number(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()
}

/// Reads frames until one starts with `prefix` (answering Engine.IO pings).
async fn expect_prefix(ws: &mut Ws, prefix: &[u8]) -> io::Result<()> {
    loop {
        let (_, frame) = ws.next().await?;
        if frame.starts_with(prefix) {
            return Ok(());
        }
        if frame == b"2" {
            ws.send(TEXT, b"3").await?;
            continue;
        }
        if frame.starts_with(b"44") || frame.starts_with(b"1") {
            return Err(refused(format!(
                "Socket.IO refused: {}",
                String::from_utf8_lossy(frame)
            )));
        }
    }
}
