//! Finding 23: a permission to the relay's own address reaches only the
//! relay ports, also when that address is public (outside every denied
//! range) or inside a network the operator allowed: not the TURN listener,
//! not another service on the host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tandem_turn::server::detect_relay_ip;
use tandem_turn::server::policy::{PeerPolicy, Reach};
use tandem_turn::stun::{Attribute, Class, Message};
use tokio::time::timeout;

use crate::client::{
    Client, Conn, RELAY_PORTS, bind_outside, binding_request, send_indication, server,
};

/// Through Alice's relay: a datagram to a local service on `ip` and a
/// Binding request to the TURN listener itself must go nowhere, while the
/// same packets to Bob's relay arrive.
async fn attack_own_address(turn: &tandem_turn::server::TurnServer, ip: IpAddr) {
    let mut alice = Client::new(Conn::udp(turn).await, "alice");
    let mut bob = Client::new(Conn::udp(turn).await, "bob");
    let alice_relay = alice.relayed().await;
    let bob_relay = bob.relayed().await;
    let service = bind_outside(&ip.to_string()).await;
    let target = service.local_addr().expect("addr");
    let listener = SocketAddr::new(ip, turn.udp_addr().port());
    assert_eq!(alice.permit(target).await.class, Class::Success);
    // The reply to a request relayed to the listener would come back from
    // the listener's port: Alice permits it so that it would arrive.
    assert_eq!(alice.permit(listener).await.class, Class::Success);

    alice.conn.send(&send_indication(target, b"FLUSHALL")).await;
    alice
        .conn
        .send(&send_indication(listener, &binding_request()))
        .await;
    // The same packet to Bob's relay does arrive (Bob permits Alice's
    // relay first), so a drop above is the rule, not a lost datagram.
    assert_eq!(bob.permit(alice_relay).await.class, Class::Success);
    alice
        .conn
        .send(&send_indication(bob_relay, b"marker"))
        .await;
    let got = timeout(Duration::from_secs(5), bob.conn.recv())
        .await
        .expect("relayed to Bob")
        .expect("datagram");
    let data = Message::decode(&got).expect("a Data indication");
    assert!(
        data.attributes
            .iter()
            .any(|a| matches!(a, Attribute::Data(d) if d == b"marker"))
    );
    let mut probe = [0u8; 64];
    assert!(
        service.try_recv_from(&mut probe).is_err(),
        "nothing reached the local service"
    );
    // Had the Binding request reached the listener, its answer would come
    // back to Alice as a Data indication within a round trip or two.
    let echoed = timeout(Duration::from_millis(500), alice.conn.recv()).await;
    assert!(
        echoed.is_err(),
        "the TURN listener answered through the relay: {echoed:?}"
    );
}

#[tokio::test]
async fn an_allowed_own_address_reaches_only_relay_ports() {
    // The operator allows all of loopback (as one might allow 10.0.0.0/8
    // around a relay at 10.0.0.5): the relay's own address stays fenced.
    let turn = server(|c| c.allow_peers = vec!["127.0.0.0/8".parse().expect("cidr")]).await;
    attack_own_address(&turn, "127.0.0.1".parse().expect("ip")).await;
}

#[tokio::test]
async fn a_public_relay_address_reaches_only_relay_ports() {
    let ip = detect_relay_ip();
    let open = PeerPolicy {
        allow: Vec::new(),
        own: Vec::new(),
        relay_ports: RELAY_PORTS,
    };
    if !ip.is_ipv4() || open.reach(ip) != Reach::Any {
        eprintln!("SKIPPED: this host's address {ip} is not a public IPv4 one");
        return;
    }
    let turn = server(|c| {
        c.listen = SocketAddr::new(ip, 0);
        c.relay_ip = ip;
    })
    .await;
    attack_own_address(&turn, ip).await;
}
