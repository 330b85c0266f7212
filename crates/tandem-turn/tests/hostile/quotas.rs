//! Finding 16: EVEN-PORT reservations hold relay ports and count against
//! the per-user and total quotas; and a quota of 0 means no cap.

use tandem_turn::stun::{Attribute, Class};

use crate::client::{Client, Conn, error_code, server};

fn token(answer: &tandem_turn::stun::Message) -> [u8; 8] {
    answer
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::ReservationToken(t) => Some(*t),
            _ => None,
        })
        .expect("RESERVATION-TOKEN")
}

async fn client(turn: &tandem_turn::server::TurnServer, user: &str) -> Client {
    Client::new(Conn::udp(turn).await, user)
}

#[tokio::test]
async fn even_port_reservations_count_against_the_user_quota() {
    let turn = server(|c| c.user_quota = 3).await;
    // The attack: Allocate with EVEN-PORT R, delete the allocation, again.
    // Each round used to leave one more port reserved beyond the quota.
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let mut mallory = client(&turn, "mallory").await;
        let answer = mallory.allocate_with(&[Attribute::EvenPort(true)]).await;
        outcomes.push(error_code(&answer));
        if answer.class == Class::Success {
            assert_eq!(mallory.release().await.class, Class::Success);
        }
        assert!(
            turn.allocations() + turn.reservations() <= 3,
            "{} allocations + {} reservations",
            turn.allocations(),
            turn.reservations()
        );
    }
    assert_eq!(
        outcomes,
        [None, None, Some(486), Some(486), Some(486), Some(486)]
    );
    assert_eq!(turn.reservations(), 2);
    // Another user is not affected.
    client(&turn, "alice").await.relayed().await;
}

#[tokio::test]
async fn redeeming_a_reservation_takes_no_more_quota() {
    let turn = server(|c| c.user_quota = 2).await;
    let mut rtp = client(&turn, "alice").await;
    let answer = rtp.allocate_with(&[Attribute::EvenPort(true)]).await;
    assert_eq!(answer.class, Class::Success, "{answer:?}");
    let reserved = token(&answer);
    // Two ports held: a plain Allocate is over the quota...
    let mut other = client(&turn, "alice").await;
    assert_eq!(error_code(&other.allocate().await), Some(486));
    // ...but the RTCP half of the pair redeems the reserved one.
    let mut rtcp = client(&turn, "alice").await;
    let answer = rtcp
        .allocate_with(&[Attribute::ReservationToken(reserved)])
        .await;
    assert_eq!(answer.class, Class::Success, "{answer:?}");
    assert_eq!((turn.allocations(), turn.reservations()), (2, 0));
    assert_eq!(error_code(&other.allocate().await), Some(486));
    assert_eq!(rtp.release().await.class, Class::Success);
    assert_eq!(other.allocate().await.class, Class::Success);
}

#[tokio::test]
async fn even_port_reservations_count_against_the_total_quota() {
    let turn = server(|c| c.total_quota = 3).await;
    let mut alice = client(&turn, "alice").await;
    let answer = alice.allocate_with(&[Attribute::EvenPort(true)]).await;
    assert_eq!(answer.class, Class::Success, "{answer:?}");
    let mut bob = client(&turn, "bob").await;
    let answer = bob.allocate_with(&[Attribute::EvenPort(true)]).await;
    assert_eq!(error_code(&answer), Some(508), "two ports, one left");
    assert_eq!(bob.allocate().await.class, Class::Success);
    let mut carol = client(&turn, "carol").await;
    assert_eq!(error_code(&carol.allocate().await), Some(508));
    assert_eq!(turn.allocations() + turn.reservations(), 3);
}

#[tokio::test]
async fn a_zero_quota_means_no_cap() {
    let turn = server(|c| {
        c.user_quota = 0;
        c.total_quota = 0;
    })
    .await;
    // A relay-only mesh call allocates once per peer and TURN URL: more
    // than the old default of 10 for one student.
    for _ in 0..12 {
        client(&turn, "alice").await.relayed().await;
    }
    assert_eq!(turn.allocations(), 12);
}
