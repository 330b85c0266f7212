//! Finding 12: TURN over TCP. Connections that trickle bytes without ever
//! authenticating, or that authenticate and then sit idle without an
//! allocation, are closed; one address cannot hold more than its share; a
//! server full of an attacker's connections still lets honest clients in.

use std::time::Duration;

use tandem_turn::stun::{Attribute, Class, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::client::{Client, Conn, binding_request, connect_from, server};

/// Waits (at most `limit`) for the server to close `stream`, writing one
/// byte every 100 ms meanwhile, as the attack does; how long it took, or
/// `None` if the connection was still open at the limit.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut buf = [0u8; 512];
    let outcome = timeout(limit, async {
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // an answer; keep going
                },
                _ = tick.tick() => {
                    if stream.write_all(&[0]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    outcome.ok().map(|()| start.elapsed())
}

/// A STUN header announcing a 64 KiB body that never comes.
fn endless_header() -> Vec<u8> {
    let mut header = binding_request()[..20].to_vec();
    header[2] = 0xFF;
    header[3] = 0xF0;
    header
}

#[tokio::test]
async fn unauthenticated_tcp_connections_are_closed_at_the_deadline_however_they_trickle() {
    let turn = server(|c| c.tcp_auth_timeout = Duration::from_millis(600)).await;
    // One byte of an endless message every 100 ms, as in the finding
    // (there every 20 s, under the old 30 s idle timeout).
    let mut trickle = connect_from("127.0.0.1", turn.tcp_addr()).await;
    trickle.write_all(&endless_header()).await.expect("write");
    // Complete, valid Binding requests every 100 ms: answered, but they
    // are no authentication.
    let mut binder = Conn::tcp(&turn, "127.0.0.1").await;
    let (answer, _) = binder.exchange(&binding_request()).await.expect("answered");
    assert_eq!(answer.class, Class::Success);
    let Conn::Tcp(mut binder, _) = binder else {
        unreachable!("a TCP connection")
    };
    let (trickled, bound) =
        tokio::join!(closed_within(&mut trickle, Duration::from_secs(5)), async {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut buf = [0u8; 512];
            timeout(Duration::from_secs(5), async {
                loop {
                    tick.tick().await;
                    if binder.write_all(&binding_request()).await.is_err() {
                        return;
                    }
                    if matches!(binder.read(&mut buf).await, Ok(0) | Err(_)) {
                        return;
                    }
                }
            })
            .await
            .ok()
            .map(|()| start.elapsed())
        });
    let trickled = trickled.expect("the trickling connection was closed");
    let bound = bound.expect("the Binding-only connection was closed");
    assert!(trickled >= Duration::from_millis(500), "{trickled:?}");
    assert!(bound >= Duration::from_millis(500), "{bound:?}");
    assert_eq!(turn.tcp_connections(), 0);
}

#[tokio::test]
async fn authenticated_tcp_clients_without_an_allocation_idle_out_and_allocations_stay() {
    let turn = server(|c| c.tcp_idle_timeout = Duration::from_millis(400)).await;
    // Authenticates (a Refresh with valid credentials, 437: no allocation),
    // then sends nothing.
    let mut idle = Client::new(Conn::tcp(&turn, "127.0.0.1").await, "mallory");
    let answer = idle
        .request(Method::Refresh, &[Attribute::Lifetime(600)])
        .await
        .expect("answered");
    assert_eq!(crate::client::error_code(&answer), Some(437));
    let mut honest = Client::new(Conn::tcp(&turn, "127.0.0.1").await, "alice");
    honest.relayed().await;

    let Conn::Tcp(stream, _) = &mut idle.conn else {
        unreachable!("a TCP connection")
    };
    let mut buf = [0u8; 64];
    let closed = timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("closed within 5 s, not after the old 30 s");
    assert!(matches!(closed, Ok(0) | Err(_)));
    // The allocation's connection outlived the idle timeout (it is now
    // over), and still works.
    let answer = honest
        .request(Method::Refresh, &[Attribute::Lifetime(600)])
        .await
        .expect("still open");
    assert_eq!(answer.class, Class::Success);
    assert_eq!(turn.allocations(), 1);
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_tcp_connections() {
    let turn = server(|c| c.tcp_max_per_ip = 4).await;
    let (mut held, mut served) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let mut conn = Conn::tcp(&turn, "127.0.0.2").await;
        served.push(conn.exchange(&binding_request()).await.is_some());
        held.push(conn);
    }
    assert_eq!(served.iter().filter(|s| **s).count(), 4, "{served:?}");
    assert_eq!(turn.tcp_connections(), 4);
    // Another address is served meanwhile, over TCP, with an allocation.
    let mut honest = Client::new(Conn::tcp(&turn, "127.0.0.1").await, "alice");
    honest.relayed().await;
}

#[tokio::test]
async fn a_server_full_of_unauthenticated_connections_still_serves_honest_clients() {
    // The old rule: 2 × total quota (at least 16) connections lock every
    // TCP client out. Here 16 from 8 addresses fill the table.
    let turn = server(|c| {
        c.total_quota = 3;
        c.tcp_max_connections = 16;
        c.tcp_max_per_ip = 2;
    })
    .await;
    let mut attack = Vec::new();
    for i in 0..8 {
        for _ in 0..2 {
            let mut conn = Conn::tcp(&turn, &format!("127.0.0.{}", 10 + i)).await;
            assert!(conn.exchange(&binding_request()).await.is_some(), "served");
            attack.push(conn);
        }
    }
    assert_eq!(turn.tcp_connections(), 16);
    let mut alice = Client::new(Conn::tcp(&turn, "127.0.0.1").await, "alice");
    alice.relayed().await;
    let mut bob = Client::new(Conn::tcp(&turn, "127.0.0.1").await, "bob");
    bob.relayed().await;
    assert_eq!(turn.tcp_connections(), 16, "two attackers made room");
    // A second wave cannot push out authenticated clients.
    for i in 0..8 {
        for _ in 0..2 {
            let mut conn = Conn::tcp(&turn, &format!("127.0.0.{}", 30 + i)).await;
            assert!(conn.exchange(&binding_request()).await.is_some(), "served");
            attack.push(conn);
        }
    }
    for client in [&mut alice, &mut bob] {
        let answer = client
            .request(Method::Refresh, &[Attribute::Lifetime(600)])
            .await
            .expect("an authenticated connection is never evicted");
        assert_eq!(answer.class, Class::Success);
    }
    assert_eq!(turn.allocations(), 2);
}
