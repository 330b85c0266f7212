//! A small TURN client over UDP or TCP, built on Tandem's STUN codec, and a
//! server on loopback with its own relay ports.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use tandem_turn::credentials;
use tandem_turn::server::{TurnConfig, TurnServer};
use tandem_turn::stun::{Attribute, Class, Message, MessageBuilder, Method, frame_len};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;

pub const SECRET: &[u8] = b"hostile-test-secret";
pub const REALM: &str = "tandem";

/// These tests' relay ports: apart from `tests/it/turn.rs` (40000-40999)
/// and the coturn test and benchmark (49160 and up).
pub const RELAY_PORTS: RangeInclusive<u16> = 41000..=41499;

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A server on 127.0.0.1 relaying from 127.0.0.1, tweaked by `tweak`.
pub async fn server(tweak: impl FnOnce(&mut TurnConfig)) -> TurnServer {
    let mut config = TurnConfig::new(SECRET.to_vec());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.relay_ip = "127.0.0.1".parse().expect("ip");
    config.relay_ports = RELAY_PORTS;
    tweak(&mut config);
    TurnServer::start(config).await.expect("TURN server starts")
}

/// A UDP socket on `ip` whose port is not a relay port.
pub async fn bind_outside(ip: &str) -> UdpSocket {
    loop {
        let socket = UdpSocket::bind((ip, 0)).await.expect("bind");
        if !RELAY_PORTS.contains(&socket.local_addr().expect("addr").port()) {
            return socket;
        }
    }
}

/// A TCP connection to `to` from the loopback address `from` (any of
/// 127.0.0.0/8 works on Linux), standing for a distinct client IP.
pub async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from.parse().expect("ip"), 0))
        .expect("bind");
    socket.connect(to).await.expect("connect")
}

pub fn txid() -> [u8; 12] {
    rand::random()
}

pub fn error_code(m: &Message) -> Option<u16> {
    m.attributes.iter().find_map(|a| match a {
        Attribute::ErrorCode { code, .. } => Some(*code),
        _ => None,
    })
}

pub fn binding_request() -> Vec<u8> {
    MessageBuilder::new(Method::Binding, Class::Request, txid())
        .build(None, false)
        .expect("binding")
}

/// A Send indication of `data` to `peer`.
pub fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut send = MessageBuilder::new(Method::Send, Class::Indication, txid());
    send.add(&Attribute::XorPeerAddress(peer))
        .and_then(|s| s.add(&Attribute::Data(data.to_vec())))
        .expect("send attributes");
    send.build(None, false).expect("send indication")
}

/// How a client talks to the server.
pub enum Conn {
    /// Datagrams to the UDP listener.
    Udp(UdpSocket, SocketAddr),
    /// A stream to the TCP listener, with bytes read past the last frame.
    Tcp(TcpStream, Vec<u8>),
}

impl Conn {
    pub async fn udp(server: &TurnServer) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        Self::Udp(socket, server.udp_addr())
    }

    pub async fn tcp(server: &TurnServer, from: &str) -> Self {
        Self::Tcp(connect_from(from, server.tcp_addr()).await, Vec::new())
    }

    pub async fn send(&mut self, raw: &[u8]) {
        match self {
            Self::Udp(socket, to) => {
                socket.send_to(raw, *to).await.expect("send");
            }
            // A connection the server closed shows on the next read.
            Self::Tcp(stream, _) => {
                let _ = stream.write_all(raw).await;
            }
        }
    }

    /// The next datagram or frame, or `None` when the server closed the
    /// connection.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut chunk = vec![0u8; 65_536];
        match self {
            Self::Udp(socket, _) => {
                let n = socket.recv(&mut chunk).await.expect("recv");
                Some(chunk[..n].to_vec())
            }
            Self::Tcp(stream, buf) => loop {
                if let Some(len) = frame_len(buf)
                    && buf.len() >= len
                {
                    return Some(buf.drain(..len).collect());
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            },
        }
    }

    /// Sends `raw` and waits (at most 5 s) for the answer.
    pub async fn exchange(&mut self, raw: &[u8]) -> Option<(Message, Vec<u8>)> {
        self.send(raw).await;
        let answer = timeout(Duration::from_secs(5), self.recv())
            .await
            .expect("the server answers or closes")?;
        Some((Message::decode(&answer).expect("a STUN answer"), answer))
    }
}

/// A TURN client with REST-API credentials.
pub struct Client {
    pub conn: Conn,
    username: String,
    password: String,
    nonce: Option<String>,
}

impl Client {
    pub fn new(conn: Conn, user: &str) -> Self {
        let minted = credentials::mint(SECRET, user, now() + 600);
        Self {
            conn,
            username: minted.username,
            password: minted.password,
            nonce: None,
        }
    }

    fn key(&self) -> [u8; 16] {
        credentials::long_term_key(&self.username, REALM, &self.password)
    }

    /// Sends a signed request (fetching a nonce first if needed); `None`
    /// when the server closed the connection.
    pub async fn request(&mut self, method: Method, attributes: &[Attribute]) -> Option<Message> {
        if self.nonce.is_none() {
            let raw = MessageBuilder::new(method, Class::Request, txid())
                .build(None, true)
                .expect("request");
            let (challenge, _) = self.conn.exchange(&raw).await?;
            assert_eq!(error_code(&challenge), Some(401));
            self.nonce = challenge.attributes.iter().find_map(|a| match a {
                Attribute::Nonce(n) => Some(n.clone()),
                _ => None,
            });
        }
        let mut b = MessageBuilder::new(method, Class::Request, txid());
        for a in attributes {
            b.add(a).expect("attribute");
        }
        b.add(&Attribute::Username(self.username.clone()))
            .and_then(|b| b.add(&Attribute::Realm(REALM.into())))
            .and_then(|b| b.add(&Attribute::Nonce(self.nonce.clone().expect("nonce"))))
            .expect("auth attributes");
        let raw = b.build(Some(&self.key()), true).expect("request");
        let (answer, raw) = self.conn.exchange(&raw).await?;
        if answer.class == Class::Success {
            assert!(answer.verify_integrity(&raw, &self.key()), "signed answer");
        }
        Some(answer)
    }

    /// Allocate with `extra` attributes besides REQUESTED-TRANSPORT UDP.
    pub async fn allocate_with(&mut self, extra: &[Attribute]) -> Message {
        let mut attributes = vec![Attribute::RequestedTransport(17)];
        attributes.extend_from_slice(extra);
        self.request(Method::Allocate, &attributes)
            .await
            .expect("connection open")
    }

    pub async fn allocate(&mut self) -> Message {
        self.allocate_with(&[]).await
    }

    /// Allocates and returns the relayed address.
    pub async fn relayed(&mut self) -> SocketAddr {
        let answer = self.allocate().await;
        assert_eq!(answer.class, Class::Success, "{answer:?}");
        answer
            .attributes
            .iter()
            .find_map(|a| match a {
                Attribute::XorRelayedAddress(a) => Some(*a),
                _ => None,
            })
            .expect("XOR-RELAYED-ADDRESS")
    }

    pub async fn permit(&mut self, peer: SocketAddr) -> Message {
        self.request(Method::CreatePermission, &[Attribute::XorPeerAddress(peer)])
            .await
            .expect("connection open")
    }

    /// Refresh with lifetime 0: ends the allocation.
    pub async fn release(&mut self) -> Message {
        self.request(Method::Refresh, &[Attribute::Lifetime(0)])
            .await
            .expect("connection open")
    }
}
