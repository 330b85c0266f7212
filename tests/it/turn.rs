//! The embedded TURN server's security rules, spoken to over real sockets by
//! a small client built on Tandem's STUN codec: authentication (expired,
//! tampered and wrongly signed credentials, stale and replayed nonces), the
//! peer deny list, quotas, the bandwidth cap, and garbage that must neither
//! crash nor wedge the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tandem_core::{Clock, ManualClock};
use tandem_turn::credentials;
use tandem_turn::server::{TurnConfig, TurnServer};
use tandem_turn::stun::{Attribute, Class, Message, MessageBuilder, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const SECRET: &[u8] = b"turn-test-secret";
const REALM: &str = "tandem";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The test servers' relay ports: inside Linux's ephemeral range, so a
/// socket meant to stand for a local service must be bound outside them.
const RELAY_PORTS: std::ops::RangeInclusive<u16> = 40000..=40999;

/// A UDP socket on loopback whose port is not in `ports`.
async fn bind_outside(ports: &std::ops::RangeInclusive<u16>) -> UdpSocket {
    loop {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        if !ports.contains(&socket.local_addr().expect("addr").port()) {
            return socket;
        }
    }
}

async fn server(tweak: impl FnOnce(&mut TurnConfig)) -> TurnServer {
    let mut config = TurnConfig::new(SECRET.to_vec());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.relay_ip = "127.0.0.1".parse().expect("ip");
    config.relay_ports = RELAY_PORTS;
    tweak(&mut config);
    TurnServer::start(config).await.expect("TURN server starts")
}

/// A minimal TURN client over UDP.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
    nonce: Option<String>,
}

fn txid() -> [u8; 12] {
    rand::random()
}

impl Client {
    async fn new(server: &TurnServer, user: &str, expires: u64) -> Self {
        let minted = credentials::mint(SECRET, user, expires);
        Self::with(server, minted.username, minted.password).await
    }

    async fn with(server: &TurnServer, username: String, password: String) -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            server: server.udp_addr(),
            username,
            password,
            nonce: None,
        }
    }

    fn key(&self) -> [u8; 16] {
        credentials::long_term_key(&self.username, REALM, &self.password)
    }

    async fn exchange(&self, raw: &[u8]) -> (Message, Vec<u8>) {
        self.socket.send_to(raw, self.server).await.expect("send");
        let mut buf = vec![0u8; 2048];
        let n = timeout(Duration::from_secs(5), self.socket.recv(&mut buf))
            .await
            .expect("the server answers")
            .expect("recv");
        buf.truncate(n);
        (Message::decode(&buf).expect("a STUN answer"), buf)
    }

    /// Sends a signed request (fetching a nonce first if needed) and
    /// returns the answer, checking its MESSAGE-INTEGRITY on success.
    async fn request(&mut self, method: Method, attributes: &[Attribute]) -> Message {
        if self.nonce.is_none() {
            let raw = MessageBuilder::new(method, Class::Request, txid())
                .build(None, true)
                .expect("request");
            let (challenge, _) = self.exchange(&raw).await;
            assert_eq!(error_code(&challenge), Some(401));
            self.nonce = nonce_of(&challenge);
        }
        let nonce = self.nonce.clone().expect("nonce");
        let (answer, raw) = self.signed(method, attributes, &nonce, self.key()).await;
        if answer.class == Class::Success {
            assert!(answer.verify_integrity(&raw, &self.key()), "signed answer");
        }
        answer
    }

    async fn signed(
        &self,
        method: Method,
        attributes: &[Attribute],
        nonce: &str,
        key: [u8; 16],
    ) -> (Message, Vec<u8>) {
        let mut b = MessageBuilder::new(method, Class::Request, txid());
        for a in attributes {
            b.add(a).expect("attribute");
        }
        b.add(&Attribute::Username(self.username.clone()))
            .and_then(|b| b.add(&Attribute::Realm(REALM.into())))
            .and_then(|b| b.add(&Attribute::Nonce(nonce.into())))
            .expect("auth attributes");
        self.exchange(&b.build(Some(&key), true).expect("request"))
            .await
    }

    async fn allocate(&mut self) -> Message {
        self.request(Method::Allocate, &[Attribute::RequestedTransport(17)])
            .await
    }

    async fn relayed(&mut self) -> SocketAddr {
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
}

/// A Send indication of `data` to `peer`.
fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut send = MessageBuilder::new(Method::Send, Class::Indication, txid());
    send.add(&Attribute::XorPeerAddress(peer))
        .and_then(|s| s.add(&Attribute::Data(data.to_vec())))
        .expect("send attributes");
    send.build(None, false).expect("send indication")
}

fn error_code(m: &Message) -> Option<u16> {
    m.attributes.iter().find_map(|a| match a {
        Attribute::ErrorCode { code, .. } => Some(*code),
        _ => None,
    })
}

fn nonce_of(m: &Message) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        Attribute::Nonce(n) => Some(n.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn expired_tampered_and_badly_signed_credentials_are_refused() {
    let turn = server(|_| {}).await;
    let mut good = Client::new(&turn, "alice", now() + 600).await;
    assert_eq!(good.allocate().await.class, Class::Success);

    let mut expired = Client::new(&turn, "alice", now() - 1).await;
    assert_eq!(error_code(&expired.allocate().await), Some(401));

    // A later expiry with the old password: the HMAC no longer matches.
    let minted = credentials::mint(SECRET, "alice", now() + 600);
    let forged = minted.username.replacen(':', "0:", 1);
    let mut tampered = Client::with(&turn, forged, minted.password).await;
    assert_eq!(error_code(&tampered.allocate().await), Some(401));

    let other = credentials::mint(b"another secret", "alice", now() + 600);
    let mut wrong_secret = Client::with(&turn, other.username, other.password).await;
    assert_eq!(error_code(&wrong_secret.allocate().await), Some(401));

    let mut no_expiry = Client::with(&turn, "alice".into(), "x".into()).await;
    assert_eq!(error_code(&no_expiry.allocate().await), Some(401));
    assert_eq!(turn.allocations(), 1, "only the valid client got a relay");
}

/// Credential expiry and nonce lifetimes follow the server's clock (the one
/// that mints credentials in `tandem serve`), here moved by hand.
#[tokio::test]
async fn credentials_and_nonces_expire_on_the_servers_clock() {
    let clock = Arc::new(ManualClock::new());
    let turn = server(|c| c.clock = clock.clone()).await;
    let start = u64::try_from(clock.now().timestamp()).expect("after 1970");
    let mut alice = Client::new(&turn, "alice", start + 60).await;
    assert_eq!(alice.allocate().await.class, Class::Success);
    assert_eq!(
        alice.request(Method::Refresh, &[]).await.class,
        Class::Success,
        "a minute before her credentials expire, Alice refreshes"
    );

    // Ten minutes on: the nonce is stale (438, with a fresh one)...
    clock.advance(chrono::Duration::seconds(601));
    let stale = alice.request(Method::Refresh, &[]).await;
    assert_eq!(error_code(&stale), Some(438));
    alice.nonce = Some(nonce_of(&stale).expect("438 carries a fresh nonce"));
    // ...and with the fresh nonce, the expired credentials are refused.
    assert_eq!(
        error_code(&alice.request(Method::Refresh, &[]).await),
        Some(401)
    );
    let mut late = Client::new(&turn, "alice", start + 60).await;
    assert_eq!(error_code(&late.allocate().await), Some(401));
}

#[tokio::test]
async fn replayed_and_forged_nonces_get_438() {
    let turn = server(|_| {}).await;
    let mut alice = Client::new(&turn, "alice", now() + 600).await;
    assert_eq!(alice.allocate().await.class, Class::Success);
    let captured = alice.nonce.clone().expect("nonce");

    // Mallory replays Alice's nonce from her own address, with valid
    // credentials of her own: the nonce is bound to Alice's address.
    let mallory = Client::new(&turn, "mallory", now() + 600).await;
    let (answer, _) = mallory
        .signed(
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            &captured,
            mallory.key(),
        )
        .await;
    assert_eq!(error_code(&answer), Some(438));
    assert!(nonce_of(&answer).is_some(), "438 carries a fresh nonce");

    let forged = format!("{:016x}{}", u64::MAX, &captured[16..]);
    let (answer, _) = mallory
        .signed(
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            &forged,
            mallory.key(),
        )
        .await;
    assert_eq!(error_code(&answer), Some(438));
    assert_eq!(turn.allocations(), 1);
}

#[tokio::test]
async fn private_loopback_and_metadata_peers_are_refused_unless_allowed() {
    let turn = server(|_| {}).await;
    let mut client = Client::new(&turn, "alice", now() + 600).await;
    let relayed = client.relayed().await;
    // (127.0.0.1 itself is this server's relay address here: a permission
    // for it reaches relay ports only, as the next test shows.)
    for peer in [
        "127.0.0.2:6379",
        "127.1.2.3:22",
        "10.0.0.5:80",
        "192.168.1.1:53",
        "169.254.169.254:80",
        "100.64.0.1:80",
    ] {
        let peer: SocketAddr = peer.parse().expect("addr");
        let answer = client
            .request(Method::CreatePermission, &[Attribute::XorPeerAddress(peer)])
            .await;
        assert_eq!(error_code(&answer), Some(403), "{peer}");
        let answer = client
            .request(
                Method::ChannelBind,
                &[
                    Attribute::ChannelNumber(0x4001),
                    Attribute::XorPeerAddress(peer),
                ],
            )
            .await;
        assert_eq!(error_code(&answer), Some(403), "{peer}");
    }
    // A public address, and another relay of this server, are fine.
    for peer in ["198.51.100.7:5000".parse().expect("addr"), relayed] {
        let answer = client
            .request(Method::CreatePermission, &[Attribute::XorPeerAddress(peer)])
            .await;
        assert_eq!(answer.class, Class::Success, "{peer}");
    }

    let allowing = server(|c| c.allow_peers = vec!["127.0.0.2/32".parse().expect("cidr")]).await;
    let mut client = Client::new(&allowing, "alice", now() + 600).await;
    client.relayed().await;
    let answer = client
        .request(
            Method::CreatePermission,
            &[Attribute::XorPeerAddress(
                "127.0.0.1:6379".parse().expect("addr"),
            )],
        )
        .await;
    assert_eq!(answer.class, Class::Success, "allowed by the option");
}

#[tokio::test]
async fn relays_between_two_allocations_and_not_to_local_services() {
    let turn = server(|_| {}).await;
    let mut alice = Client::new(&turn, "alice", now() + 600).await;
    let mut bob = Client::new(&turn, "bob", now() + 600).await;
    let (a, b) = (alice.relayed().await, bob.relayed().await);
    for (client, peer) in [(&mut alice, b), (&mut bob, a)] {
        let answer = client
            .request(
                Method::ChannelBind,
                &[
                    Attribute::ChannelNumber(0x4000),
                    Attribute::XorPeerAddress(peer),
                ],
            )
            .await;
        assert_eq!(answer.class, Class::Success);
    }
    // ChannelData from Alice arrives at Bob as ChannelData on his channel.
    let frame = tandem_turn::stun::channel::encode(0x4000, b"hello bob", false).expect("frame");
    alice
        .socket
        .send_to(&frame, alice.server)
        .await
        .expect("send");
    let mut buf = [0u8; 1500];
    let n = timeout(Duration::from_secs(5), bob.socket.recv(&mut buf))
        .await
        .expect("relayed")
        .expect("recv");
    assert_eq!(
        tandem_turn::stun::channel::parse(&buf[..n]).expect("ChannelData"),
        (0x4000, &b"hello bob"[..])
    );

    // A Send indication to a loopback service on the relay address is
    // dropped: the permission for 127.0.0.1 only reaches relay ports.
    let service = bind_outside(&RELAY_PORTS).await;
    let target = service.local_addr().expect("addr");
    let send = send_indication(target, b"FLUSHALL");
    alice
        .socket
        .send_to(&send, alice.server)
        .await
        .expect("send");
    // The same packet to Bob's relay does arrive, so the drop above is the
    // rule, not a lost datagram.
    let to_bob = send_indication(b, b"second");
    alice
        .socket
        .send_to(&to_bob, alice.server)
        .await
        .expect("send");
    let n = timeout(Duration::from_secs(5), bob.socket.recv(&mut buf))
        .await
        .expect("relayed")
        .expect("recv");
    assert_eq!(
        tandem_turn::stun::channel::parse(&buf[..n])
            .expect("ChannelData")
            .1,
        b"second"
    );
    let mut probe = [0u8; 64];
    assert!(
        service.try_recv_from(&mut probe).is_err(),
        "nothing reached the local service"
    );
}

#[tokio::test]
async fn user_and_total_quotas_are_enforced() {
    let turn = server(|c| {
        c.user_quota = 2;
        c.total_quota = 3;
    })
    .await;
    let mut alice: Vec<Client> = Vec::new();
    for _ in 0..3 {
        alice.push(Client::new(&turn, "alice", now() + 600).await);
    }
    assert_eq!(alice[0].allocate().await.class, Class::Success);
    assert_eq!(alice[1].allocate().await.class, Class::Success);
    assert_eq!(error_code(&alice[2].allocate().await), Some(486));

    let mut bob = Client::new(&turn, "bob", now() + 600).await;
    assert_eq!(bob.allocate().await.class, Class::Success);
    let mut carol = Client::new(&turn, "carol", now() + 600).await;
    assert_eq!(error_code(&carol.allocate().await), Some(508));

    // Refresh with lifetime 0 ends an allocation and frees its quota.
    let answer = alice[0]
        .request(Method::Refresh, &[Attribute::Lifetime(0)])
        .await;
    assert_eq!(answer.class, Class::Success);
    assert_eq!(turn.allocations(), 2);
    assert_eq!(alice[2].allocate().await.class, Class::Success);
}

#[tokio::test]
async fn the_bandwidth_cap_drops_what_exceeds_it() {
    // The peer is on 127.0.0.2: the relay's own address (127.0.0.1)
    // reaches only relay ports, whatever the allow list says.
    let turn = server(|c| {
        c.bytes_per_sec = 2_000;
        c.allow_peers = vec!["127.0.0.2/32".parse().expect("cidr")];
    })
    .await;
    let peer = UdpSocket::bind("127.0.0.2:0").await.expect("bind");
    let peer_addr = peer.local_addr().expect("addr");
    let mut client = Client::new(&turn, "alice", now() + 600).await;
    client.relayed().await;
    let answer = client
        .request(
            Method::ChannelBind,
            &[
                Attribute::ChannelNumber(0x4000),
                Attribute::XorPeerAddress(peer_addr),
            ],
        )
        .await;
    assert_eq!(answer.class, Class::Success);
    let frame = tandem_turn::stun::channel::encode(0x4000, &[7u8; 500], false).expect("frame");
    for _ in 0..20 {
        client
            .socket
            .send_to(&frame, client.server)
            .await
            .expect("send");
    }
    // A Binding round trip after the burst: the server has handled every
    // frame before it answers, so the count below is final.
    let binding = MessageBuilder::new(Method::Binding, Class::Request, txid())
        .build(None, false)
        .expect("binding");
    client.exchange(&binding).await;
    let mut received = 0;
    let mut buf = [0u8; 1500];
    while peer.try_recv_from(&mut buf).is_ok() {
        received += 1;
    }
    assert!(
        (1..=5).contains(&received),
        "2,000 bytes/s lets about 4 of 20 × 500 bytes through, got {received}"
    );
}

#[tokio::test]
async fn malformed_packets_are_dropped_and_the_server_keeps_serving() {
    let turn = server(|_| {}).await;
    let client = Client::new(&turn, "alice", now() + 600).await;
    let valid = MessageBuilder::new(Method::Allocate, Class::Request, txid())
        .build(None, true)
        .expect("request");
    let mut bad_length = valid.clone();
    bad_length[3] = 0xFC;
    let mut bad_cookie = valid.clone();
    bad_cookie[4] = 0;
    let bad_attribute = {
        let mut raw = valid[..20].to_vec();
        raw[3] = 8;
        raw.extend_from_slice(&[0x00, 0x19, 0x00, 0x20, 1, 2, 3, 4]); // overruns
        raw
    };
    let mut garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        valid[..10].to_vec(),
        bad_length,
        bad_cookie,
        bad_attribute,
        vec![0x40, 0x00, 0xFF, 0xFF, 1, 2, 3],
        vec![0xFF; 300],
    ];
    for _ in 0..200 {
        let len = rand::random_range(0..200);
        let mut noise: Vec<u8> = (0..len).map(|_| rand::random()).collect();
        if let Some(first) = noise.first_mut() {
            *first &= 0x7F;
        }
        garbage.push(noise);
    }
    for packet in &garbage {
        client
            .socket
            .send_to(packet, client.server)
            .await
            .expect("send");
    }
    let binding = MessageBuilder::new(Method::Binding, Class::Request, txid())
        .build(None, false)
        .expect("binding");
    let (answer, _) = client.exchange(&binding).await;
    assert_eq!(
        (answer.method, answer.class),
        (Method::Binding, Class::Success),
        "still serving over UDP"
    );

    // Over TCP a stream that is neither STUN nor ChannelData is closed,
    // and the listener goes on accepting.
    let mut tcp = TcpStream::connect(turn.tcp_addr()).await.expect("connect");
    tcp.write_all(&[0xC0; 64]).await.expect("write");
    let mut buf = [0u8; 64];
    let closed = timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed promptly");
    assert!(matches!(closed, Ok(0) | Err(_)), "connection closed");
    let mut tcp = TcpStream::connect(turn.tcp_addr()).await.expect("connect");
    tcp.write_all(&binding).await.expect("write");
    let mut answer = vec![0u8; 512];
    let n = timeout(Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    let answer = Message::decode(&answer[..n]).expect("STUN over TCP");
    assert_eq!(answer.class, Class::Success);
}

#[tokio::test]
async fn the_default_user_quota_fits_a_relay_only_call_in_the_largest_room() {
    // `tandem serve`'s defaults, on loopback, with relay ports of its own.
    let mut config = tandem_server::config::Config::from_lookup(|_| None).expect("defaults");
    config.turn.listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.turn.relay_ip = Some("127.0.0.1".parse().expect("ip"));
    config.turn.relay_ports = 41500..=41999;
    let embedded = tandem_server::turn::start(
        &config,
        &(Arc::new(tandem_core::SystemClock) as Arc<dyn Clock>),
    )
    .await
    .expect("starts")
    .expect("embedded TURN");
    let secret = tandem_core::ExposeSecret::expose_secret(&embedded.secret).to_owned();
    // 50 seats: 49 peer connections, each allocating on the UDP and the
    // TCP TURN URL. The old default (10) failed past about five people.
    let full_call = 2 * 49;
    let minted = credentials::mint(secret.as_bytes(), "student", now() + 600);
    let mut clients = Vec::new();
    for _ in 0..full_call {
        let mut client = Client::with(
            &embedded.server,
            minted.username.clone(),
            minted.password.clone(),
        )
        .await;
        let answer = client.allocate().await;
        assert_eq!(
            answer.class,
            Class::Success,
            "allocation {}",
            clients.len() + 1
        );
        clients.push(client);
    }
    let mut one_more = Client::with(&embedded.server, minted.username, minted.password).await;
    assert_eq!(error_code(&one_more.allocate().await), Some(486));
}
