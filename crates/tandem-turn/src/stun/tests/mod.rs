//! Codec tests: RFC 5769 vectors, per-attribute round trips, malformed
//! input and a seeded random-input sweep that must never panic.

use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

mod mutation;
mod vectors;
use vectors::{IPV4_RESPONSE, IPV6_RESPONSE, LONG_TERM_REQUEST, SAMPLE_REQUEST};

const TXID: TransactionId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address literal")
}

fn all_attributes() -> Vec<Attribute> {
    vec![
        Attribute::MappedAddress(addr("10.0.0.1:3478")),
        Attribute::XorMappedAddress(addr("192.0.2.1:32853")),
        Attribute::XorPeerAddress(addr("[2001:db8::1]:9")),
        Attribute::XorRelayedAddress(addr("203.0.113.7:50000")),
        Attribute::Username("1700000000:alice".into()),
        Attribute::Realm("tandem".into()),
        Attribute::Nonce("abcdef".into()),
        Attribute::ErrorCode {
            code: 401,
            reason: "Unauthorized".into(),
        },
        Attribute::UnknownAttributes(vec![0x0024, 0x7fff, 0x0001]),
        Attribute::Lifetime(600),
        Attribute::RequestedTransport(17),
        Attribute::Data(vec![1, 2, 3, 4, 5]),
        Attribute::ChannelNumber(0x4001),
        Attribute::Software("tandem-turn".into()),
        Attribute::DontFragment,
        Attribute::RequestedAddressFamily(AddressFamily::V6),
        Attribute::EvenPort(true),
        Attribute::EvenPort(false),
        Attribute::ReservationToken([9; 8]),
        Attribute::Unknown {
            typ: 0x8055,
            value: vec![7, 7, 7],
        },
    ]
}

#[test]
fn every_attribute_round_trips_with_integrity_and_fingerprint() {
    let mut b = MessageBuilder::new(Method::Allocate, Class::Request, TXID);
    for attr in all_attributes() {
        b.add(&attr).expect("encodable");
    }
    let raw = b.build(Some(b"key"), true).expect("fits");
    assert_eq!(raw.len() % 4, 0);
    assert_eq!(frame_len(&raw), Some(raw.len()));
    let msg = Message::decode(&raw).expect("own output decodes");
    assert_eq!(
        (msg.method, msg.class, msg.transaction_id),
        (Method::Allocate, Class::Request, TXID)
    );
    let n = all_attributes().len();
    assert_eq!(msg.attributes[..n], all_attributes()[..]);
    assert!(matches!(msg.attributes[n], Attribute::MessageIntegrity(_)));
    assert!(matches!(msg.attributes[n + 1], Attribute::Fingerprint(_)));
    assert!(msg.verify_integrity(&raw, b"key"));
    assert!(!msg.verify_integrity(&raw, b"other"));
    assert!(msg.check_fingerprint(&raw));
}

#[test]
fn each_attribute_round_trips_alone() {
    for attr in all_attributes() {
        let mut b = MessageBuilder::new(Method::Refresh, Class::Indication, TXID);
        b.add(&attr).expect("encodable");
        let raw = b.build(None, false).expect("fits");
        let msg = Message::decode(&raw).expect("decodes");
        assert_eq!(msg.attributes, vec![attr]);
    }
}

#[test]
fn attributes_after_integrity_are_ignored() {
    let mut raw = MessageBuilder::new(Method::Binding, Class::Request, TXID)
        .build(Some(b"k"), false)
        .expect("fits");
    raw.extend_from_slice(&[0x00, 0x0d, 0x00, 0x04, 0, 0, 0, 1]); // LIFETIME
    raw[3] += 8;
    let msg = Message::decode(&raw).expect("decodes");
    assert_eq!(msg.attributes.len(), 1);
    assert!(msg.verify_integrity(&raw, b"k"));
}

#[test]
fn message_type_interleaves_method_and_class() {
    assert_eq!(message_type(Method::Binding, Class::Request), 0x0001);
    assert_eq!(message_type(Method::Binding, Class::Success), 0x0101);
    assert_eq!(message_type(Method::Allocate, Class::Error), 0x0113);
    assert_eq!(message_type(Method::Send, Class::Indication), 0x0016);
    for m in 0..0x1000u16 {
        for class in [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ] {
            let method = Method::from_number(m);
            assert_eq!(
                split_message_type(message_type(method, class)),
                (method, class)
            );
        }
    }
}

#[test]
fn malformed_messages_are_rejected() {
    let ok = MessageBuilder::new(Method::Binding, Class::Request, TXID)
        .build(None, true)
        .expect("fits");
    assert_eq!(Message::decode(&[]), Err(StunError::TooShort(0)));
    assert_eq!(Message::decode(&ok[..19]), Err(StunError::TooShort(19)));
    let mut bad = ok.clone();
    bad[0] = 0x80;
    assert_eq!(Message::decode(&bad), Err(StunError::NotStun));
    let mut bad = ok.clone();
    bad[4] = 0;
    assert_eq!(Message::decode(&bad), Err(StunError::BadMagicCookie));
    let mut bad = ok.clone();
    bad[3] = 6;
    assert_eq!(Message::decode(&bad), Err(StunError::UnalignedLength(6)));
    let mut bad = ok.clone();
    bad[3] = 12;
    assert!(matches!(
        Message::decode(&bad),
        Err(StunError::LengthMismatch { .. })
    ));
    let mut bad = ok.clone();
    bad[23] = 8; // FINGERPRINT claims 8 bytes
    assert_eq!(
        Message::decode(&bad),
        Err(StunError::AttributeOverrun(0x8028))
    );
    let mut bad = ok.clone();
    bad.extend_from_slice(&[0x80, 0x22, 0, 0]);
    bad[3] += 4;
    assert_eq!(
        Message::decode(&bad),
        Err(StunError::AttributeAfterFingerprint)
    );
}

#[test]
fn malformed_attributes_are_rejected() {
    let with = |attr: &[u8]| {
        let mut raw = MessageBuilder::new(Method::Binding, Class::Success, TXID)
            .build(None, false)
            .expect("fits");
        raw.extend_from_slice(attr);
        raw[3] = u8::try_from(attr.len()).expect("small");
        Message::decode(&raw)
    };
    assert_eq!(
        with(&[0, 0x20, 0, 8, 0, 3, 0, 0, 1, 2, 3, 4]),
        Err(StunError::BadAddressFamily(3))
    );
    assert!(matches!(
        with(&[0, 0x20, 0, 4, 0, 2, 0, 0]),
        Err(StunError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        with(&[0, 0x0d, 0, 2, 0, 1, 0, 0]),
        Err(StunError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        with(&[0, 0x06, 0, 2, 0xff, 0xfe, 0, 0]),
        Err(StunError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        with(&[0, 0x09, 0, 4, 0, 0, 7, 1]),
        Err(StunError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        with(&[0x80, 0x28, 0, 4, 0, 0, 0, 0]),
        Err(StunError::BadFingerprint)
    ));
}

#[test]
fn builder_refuses_integrity_attributes_and_oversize() {
    let mut b = MessageBuilder::new(Method::Binding, Class::Request, TXID);
    assert!(b.add(&Attribute::Fingerprint(0)).is_err());
    assert!(b.add(&Attribute::MessageIntegrity([0; 20])).is_err());
    assert_eq!(
        b.add(&Attribute::Data(vec![0; 70_000])).err(),
        Some(StunError::TooLong)
    );
    b.add(&Attribute::Data(vec![0; 65_000])).expect("fits");
    assert_eq!(
        b.add(&Attribute::Data(vec![0; 1_000])).err(),
        Some(StunError::TooLong)
    );
}

#[test]
fn channel_data_round_trips_and_validates() {
    let frame = ChannelData {
        channel: 0x4000,
        data: vec![1, 2, 3, 4, 5],
    };
    let padded = frame.encode(true).expect("valid");
    assert_eq!(padded.len(), 12);
    assert_eq!(frame_len(&padded), Some(12));
    assert_eq!(packet_kind(&padded), Some(PacketKind::ChannelData));
    assert_eq!(ChannelData::decode(&padded), Ok(frame.clone()));
    assert_eq!(
        ChannelData::decode(&frame.encode(false).expect("valid")),
        Ok(frame)
    );
    assert_eq!(
        ChannelData::decode(&[0x80, 0, 0, 0]),
        Err(StunError::BadChannelNumber(0x8000))
    );
    assert!(ChannelData::decode(&[0x40, 0, 0, 4, 1]).is_err());
    assert!(ChannelData::decode(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert_eq!(ChannelData::decode(&[0x40]), Err(StunError::TooShort(1)));
    let bad = ChannelData {
        channel: 0x3fff,
        data: vec![],
    };
    assert_eq!(bad.encode(true), Err(StunError::BadChannelNumber(0x3fff)));
}

#[test]
fn packet_kind_uses_first_two_bits() {
    assert_eq!(packet_kind(&SAMPLE_REQUEST), Some(PacketKind::Stun));
    assert_eq!(packet_kind(&[0x80]), None);
    assert_eq!(packet_kind(&[0xc0]), None);
    assert_eq!(packet_kind(&[]), None);
    assert_eq!(frame_len(&SAMPLE_REQUEST[..3]), None);
    assert_eq!(frame_len(&SAMPLE_REQUEST[..4]), Some(SAMPLE_REQUEST.len()));
}

/// Attributes other than MESSAGE-INTEGRITY and FINGERPRINT.
fn plain(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|a| {
            !matches!(
                a,
                Attribute::MessageIntegrity(_) | Attribute::Fingerprint(_)
            )
        })
        .collect()
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5475_726e);
    let seeds: [&[u8]; 4] = [
        &SAMPLE_REQUEST,
        &IPV4_RESPONSE,
        &IPV6_RESPONSE,
        &LONG_TERM_REQUEST,
    ];
    for i in 0..20_000 {
        let mut buf = if i % 2 == 0 {
            let len = rng.random_range(0..160);
            (0..len).map(|_| rng.random()).collect::<Vec<u8>>()
        } else {
            seeds[i % seeds.len()].to_vec()
        };
        for _ in 0..rng.random_range(0..4) {
            if let Some(len) = buf.len().checked_sub(1) {
                let at = rng.random_range(0..=len);
                buf[at] = rng.random();
            }
        }
        if i % 4 == 0 {
            buf.truncate(rng.random_range(0..=buf.len()));
        }
        if let Ok(msg) = Message::decode(&buf) {
            let _ = msg.verify_integrity(&buf, b"key");
            let _ = msg.check_fingerprint(&buf);
            let again = msg.to_builder().and_then(|b| b.build(Some(b"k"), true));
            let again = again.expect("decoded messages re-encode");
            let again = Message::decode(&again).expect("re-encoded message decodes");
            assert_eq!(plain(&again.attributes), plain(&msg.attributes));
        }
        if let Ok(frame) = ChannelData::decode(&buf) {
            frame.encode(true).expect("decoded frame re-encodes");
        }
        let _ = frame_len(&buf);
    }
}
