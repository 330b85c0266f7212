//! RFC 5769 §2 test vectors: MESSAGE-INTEGRITY (short- and long-term)
//! and FINGERPRINT checked over the exact bytes from the RFC.

use super::addr;
use crate::credentials::long_term_key;
use crate::stun::*;

/// RFC 5769 §2.1: request with short-term credentials.
pub(super) const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// RFC 5769 §2.2: IPv4 success response.
pub(super) const IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

/// RFC 5769 §2.3: IPv6 success response.
pub(super) const IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

/// RFC 5769 §2.4: request with long-term credentials (no FINGERPRINT).
pub(super) const LONG_TERM_REQUEST: [u8; 116] = [
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
    0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83,
    0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00, 0x15, 0x00, 0x1c,
    0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34,
    0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b,
    0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14,
    0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2,
    0x8c, 0xa8, 0x96, 0x66,
];

const SHORT_TERM_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

#[test]
fn rfc5769_sample_request() {
    let msg = Message::decode(&SAMPLE_REQUEST).expect("valid vector");
    assert_eq!((msg.method, msg.class), (Method::Binding, Class::Request));
    assert!(
        msg.attributes
            .contains(&Attribute::Username("evtj:h6vY".into()))
    );
    assert!(
        msg.attributes
            .contains(&Attribute::Software("STUN test client".into()))
    );
    // PRIORITY and ICE-CONTROLLED are ICE attributes this codec keeps raw.
    assert_eq!(msg.unknown_comprehension_required(), vec![0x0024]);
    assert!(msg.verify_integrity(&SAMPLE_REQUEST, SHORT_TERM_PASSWORD));
    assert!(!msg.verify_integrity(&SAMPLE_REQUEST, b"wrong"));
    assert!(msg.check_fingerprint(&SAMPLE_REQUEST));
}

#[test]
fn rfc5769_ipv4_and_ipv6_responses() {
    for (raw, expected) in [
        (&IPV4_RESPONSE[..], addr("192.0.2.1:32853")),
        (
            &IPV6_RESPONSE[..],
            addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
        ),
    ] {
        let msg = Message::decode(raw).expect("valid vector");
        assert_eq!((msg.method, msg.class), (Method::Binding, Class::Success));
        assert!(
            msg.attributes
                .contains(&Attribute::XorMappedAddress(expected))
        );
        assert!(
            msg.attributes
                .contains(&Attribute::Software("test vector".into()))
        );
        assert!(msg.verify_integrity(raw, SHORT_TERM_PASSWORD));
        assert!(msg.check_fingerprint(raw));
    }
}

#[test]
fn rfc5769_long_term_request() {
    let msg = Message::decode(&LONG_TERM_REQUEST).expect("valid vector");
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    assert!(msg.attributes.contains(&Attribute::Username(user.into())));
    assert!(
        msg.attributes
            .contains(&Attribute::Realm("example.org".into()))
    );
    assert!(
        msg.attributes
            .contains(&Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA".into()))
    );
    // The password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep.
    let key = long_term_key(user, "example.org", "TheMatrIX");
    assert!(msg.verify_integrity(&LONG_TERM_REQUEST, &key));
    assert!(!msg.has_fingerprint());
}

#[test]
fn tampered_vector_fails_checks() {
    let mut raw = SAMPLE_REQUEST;
    raw[30] ^= 1; // inside SOFTWARE
    assert_eq!(Message::decode(&raw), Err(StunError::BadFingerprint));
    let mut raw = LONG_TERM_REQUEST;
    raw[50] ^= 1; // inside NONCE; no FINGERPRINT so decoding succeeds
    let msg = Message::decode(&raw).expect("still well-formed");
    let key = long_term_key(
        "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
        "example.org",
        "TheMatrIX",
    );
    assert!(!msg.verify_integrity(&raw, &key));
}

/// A TURN Allocate request produced independently (by a short Python script
/// following RFC 8489/8656) and used as a fuzz seed.
const TURN_ALLOCATE: &[u8] =
    include_bytes!("../../../fuzz/corpus/stun_decode/turn_allocate_request");

#[test]
fn builder_matches_independent_turn_allocate_encoding() {
    let creds = crate::credentials::mint(b"secret", "alice", 1_700_000_000);
    let key = long_term_key(&creds.username, "tandem", &creds.password);
    let txid: TransactionId = core::array::from_fn(|i| 0xa0 + u8::try_from(i).expect("small"));
    let mut b = MessageBuilder::new(Method::Allocate, Class::Request, txid);
    for attr in [
        Attribute::RequestedTransport(17),
        Attribute::Lifetime(600),
        Attribute::Username(creds.username.clone()),
        Attribute::Realm("tandem".into()),
        Attribute::Nonce("nonce-123".into()),
    ] {
        b.add(&attr).expect("encodable");
    }
    let raw = b.build(Some(&key), true).expect("fits");
    assert_eq!(raw, TURN_ALLOCATE);
    let msg = Message::decode(TURN_ALLOCATE).expect("valid seed");
    let password =
        crate::credentials::verify(b"secret", &creds.username, 1_600_000_000).expect("not expired");
    assert!(msg.verify_integrity(
        TURN_ALLOCATE,
        &long_term_key(&creds.username, "tandem", &password)
    ));
}

#[test]
fn fuzz_seed_corpus_decodes() {
    let seeds: [&[u8]; 6] = [
        include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_sample_request"),
        include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_ipv4_response"),
        include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_ipv6_response"),
        include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_long_term_request"),
        TURN_ALLOCATE,
        include_bytes!("../../../fuzz/corpus/stun_decode/channel_data_padded"),
    ];
    assert_eq!(seeds[0], SAMPLE_REQUEST);
    assert_eq!(seeds[3], LONG_TERM_REQUEST);
    for seed in &seeds[..5] {
        Message::decode(seed).expect("STUN seed decodes");
    }
    let frame = ChannelData::decode(seeds[5]).expect("ChannelData seed decodes");
    assert_eq!((frame.channel, frame.data.len()), (0x4001, 5));
}
