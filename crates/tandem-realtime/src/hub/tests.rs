//! The hub: fan-out, ordering, slow consumers, rates, presence, revocations.

use serde_json::json;

use super::*;

#[tokio::test]
async fn broadcasts_reach_subscribers_in_order_except_the_excluded() {
    let hub = Hub::new(16);
    let (a, mut a_in) = hub.connect();
    let (b, mut b_in) = hub.connect();
    hub.join("realtime:room", &a);
    hub.join("realtime:room", &b);
    for i in 0..3 {
        hub.publish(&Outbound::new(
            "realtime:room",
            "broadcast",
            json!(i),
            Some(a.id),
        ));
    }
    for i in 0..3 {
        assert_eq!(
            b_in.rx.recv().await.map(|m| m.payload.clone()),
            Some(json!(i))
        );
    }
    assert!(
        a_in.rx.try_recv().is_err(),
        "excluded sender got its own broadcast"
    );
}

#[tokio::test]
async fn one_message_is_shared_and_encoded_once() {
    let hub = Hub::new(16);
    let (a, mut a_in) = hub.connect();
    let (b, mut b_in) = hub.connect();
    hub.join("t", &a);
    hub.join("t", &b);
    hub.publish(&Outbound::new("t", "broadcast", json!({}), None));
    let (ma, mb) = (
        a_in.rx.recv().await.expect("a"),
        b_in.rx.recv().await.expect("b"),
    );
    assert!(Arc::ptr_eq(&ma, &mb));
    let mut encodings = 0;
    for m in [&ma, &mb] {
        m.encoded(1, |_| {
            encodings += 1;
            Some(Frame::Text("x".into()))
        });
    }
    assert_eq!(encodings, 1);
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_stalling_others() {
    let hub = Hub::new(2);
    let (slow, slow_in) = hub.connect();
    let (fast, mut fast_in) = hub.connect();
    hub.join("t", &slow);
    hub.join("t", &fast);
    for i in 0..10 {
        hub.publish(&Outbound::new("t", "broadcast", json!(i), None));
        assert_eq!(
            fast_in.rx.recv().await.map(|m| m.payload.clone()),
            Some(json!(i))
        );
    }
    slow_in.overflowed.notified().await;
    assert_eq!(hub.subscribers("t"), 1);
}

#[tokio::test(start_paused = true)]
async fn client_broadcasts_are_limited_per_channel() {
    let hub = Hub::new(64).with_channel_rate(5);
    let (a, mut a_in) = hub.connect();
    hub.join("busy", &a);
    hub.join("quiet", &a);
    let send =
        |topic: &str| hub.publish_limited(&Outbound::new(topic, "broadcast", json!({}), None));
    let passed = (0..8).filter(|_| send("busy")).count();
    assert_eq!(passed, 5, "a burst of the channel's rate, then refusals");
    assert!(send("quiet"), "another channel has its own budget");
    tokio::time::advance(std::time::Duration::from_millis(400)).await;
    assert!(send("busy"), "the budget refills over time");
    let mut delivered = 0;
    while a_in.rx.try_recv().is_ok() {
        delivered += 1;
    }
    assert_eq!(delivered, 7);
}

#[tokio::test]
async fn presence_is_announced_and_cleaned_up_on_leave() {
    let hub = Hub::new(16);
    let (a, _a_in) = hub.connect();
    let (b, mut b_in) = hub.connect();
    hub.join("t", &a);
    hub.join("t", &b);
    hub.track("t", a.id, "ada", Map::new()).expect("room");
    let join = b_in.rx.recv().await.expect("diff");
    assert_eq!(join.event, "presence_diff");
    assert!(join.payload["joins"]["ada"].is_object());
    assert!(hub.join("t", &b)["ada"].is_object(), "state on rejoin");
    hub.leave("t", a.id);
    let leave = b_in.rx.recv().await.expect("diff");
    assert!(leave.payload["leaves"]["ada"].is_object());
    hub.leave("t", b.id);
    assert_eq!(hub.subscribers("t"), 0);
}

#[tokio::test]
async fn presence_is_bounded_per_key_and_per_topic() {
    let hub = Hub::new(16).with_presence_limits(PresenceLimits {
        per_topic: 3,
        per_key: 2,
    });
    let conns: Vec<_> = (0..4).map(|_| hub.connect()).collect();
    for (conn, _) in &conns {
        hub.join("t", conn);
    }
    let track = |i: usize, key: &str| hub.track("t", conns[i].0.id, key, Map::new());
    assert_eq!(track(0, "ada"), Ok(()));
    assert_eq!(track(1, "ada"), Ok(()));
    assert_eq!(track(2, "ada"), Err(PresenceRefused::KeyFull));
    assert_eq!(
        track(0, "ada"),
        Ok(()),
        "a re-track replaces, it adds nothing"
    );
    assert_eq!(track(2, "bob"), Ok(()));
    assert_eq!(track(3, "cy"), Err(PresenceRefused::TopicFull));
}

#[tokio::test]
async fn revocations_reach_the_users_connections_here_and_from_elsewhere() {
    let hub = Hub::new(16);
    let (ada, mut ada_in) = hub.connect();
    let (bob, mut bob_in) = hub.connect();
    let (ada_id, bob_id) = (Uuid::now_v7(), Uuid::now_v7());
    hub.watch(ada_id, &ada);
    hub.watch(bob_id, &bob);
    let (tx, mut forwarded) = mpsc::channel(4);
    hub.forward_to(tx);
    let leave = Revocation::Topic {
        user: ada_id,
        topic: "realtime:room:1".into(),
    };
    hub.revoke(leave.clone());
    assert_eq!(ada_in.revocations.rx.recv().await.as_deref(), Some(&leave));
    assert!(bob_in.revocations.rx.try_recv().is_err(), "only the user's");
    let relayed = forwarded.recv().await.expect("sent to other instances");
    assert_eq!(relayed.topic, CONTROL_TOPIC);

    // What another instance relays is acted on here.
    let logout = Revocation::Sessions {
        user: bob_id,
        only: None,
        keep: None,
    };
    let payload = serde_json::to_value(&logout).expect("json");
    hub.deliver_remote(&Outbound::new(CONTROL_TOPIC, REVOKE_EVENT, payload, None));
    assert_eq!(bob_in.revocations.rx.recv().await.as_deref(), Some(&logout));
    hub.unwatch(bob_id, bob.id);
    hub.revoke(logout);
    assert!(bob_in.revocations.rx.try_recv().is_err(), "unwatched");
}
