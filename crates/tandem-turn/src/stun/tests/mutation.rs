//! A bounded, seeded mutation fuzzer for the decoders, run by `cargo test`
//! on stable (the cargo-fuzz target in `fuzz/` needs nightly): valid
//! messages (the fuzz corpus, RFC 5769 vectors and random TURN messages
//! built from every attribute) are mutated the way a fuzzer would (bit
//! flips, boundary values in length fields, truncation, splices, inserted
//! attribute headers, a header length re-fitted to the mutated body) and
//! fed to every decoder. Nothing may panic, and whatever decodes must
//! re-encode to the same attributes, as the cargo-fuzz target asserts.
//!
//! `TANDEM_FUZZ_ITERATIONS` runs longer (default 100,000: under 10 s in a
//! debug build on a busy 2-core machine); `TANDEM_FUZZ_SEED` another seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::binding;

const CORPUS: [&[u8]; 6] = [
    include_bytes!("../../../fuzz/corpus/stun_decode/channel_data_padded"),
    include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_ipv4_response"),
    include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_ipv6_response"),
    include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_long_term_request"),
    include_bytes!("../../../fuzz/corpus/stun_decode/rfc5769_sample_request"),
    include_bytes!("../../../fuzz/corpus/stun_decode/turn_allocate_request"),
];

/// Values that sit on the edges of length and type checks.
const INTERESTING: [u16; 12] = [0, 1, 3, 4, 7, 8, 19, 20, 0x7FFF, 0x8000, 0xFFFC, 0xFFFF];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random valid message: any method and class, a random subset of every
/// attribute kind, with or without MESSAGE-INTEGRITY and FINGERPRINT.
fn random_message(rng: &mut StdRng) -> Vec<u8> {
    let method = Method::from_number(rng.random_range(0..0x010));
    let class = [
        Class::Request,
        Class::Indication,
        Class::Success,
        Class::Error,
    ][rng.random_range(0..4)];
    let mut b = MessageBuilder::new(method, class, rng.random());
    let attributes = all_attributes();
    for _ in 0..rng.random_range(0..8) {
        let a = &attributes[rng.random_range(0..attributes.len())];
        let _ = b.add(a);
    }
    let key: Option<&[u8]> = rng.random_bool(0.5).then_some(b"key");
    b.build(key, rng.random_bool(0.5)).unwrap_or_default()
}

/// Offsets of attribute headers in a well-formed message body.
fn attribute_offsets(buf: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = HEADER_LEN;
    while at + 4 <= buf.len() {
        offsets.push(at);
        let len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        at += 4 + len.div_ceil(4) * 4;
    }
    offsets
}

fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    if let Some(slot) = buf.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

/// One to four mutations of `buf`.
fn mutate(rng: &mut StdRng, buf: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..rng.random_range(1..=4) {
        let offsets = attribute_offsets(buf);
        let attribute = (!offsets.is_empty()).then(|| offsets[rng.random_range(0..offsets.len())]);
        let boundary = INTERESTING[rng.random_range(0..INTERESTING.len())];
        match rng.random_range(0..10) {
            0 if !buf.is_empty() => {
                let at = rng.random_range(0..buf.len());
                buf[at] ^= 1 << rng.random_range(0..8);
            }
            1 if !buf.is_empty() => {
                let at = rng.random_range(0..buf.len());
                buf[at] = [0, 0x7F, 0x80, 0xFF, rng.random()][rng.random_range(0..5)];
            }
            2 => put_u16(buf, 2, boundary),
            3 => {
                if let Some(at) = attribute {
                    put_u16(buf, at + 2, boundary);
                }
            }
            4 => {
                if let Some(at) = attribute {
                    // Another type, often comprehension-required or known.
                    let typ = [boundary, rng.random(), rng.random_range(0..0x30)];
                    put_u16(buf, at, typ[rng.random_range(0..3)]);
                }
            }
            5 => buf.truncate(rng.random_range(0..=buf.len())),
            6 => buf.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
            7 => {
                // Splice: our head, another message's tail.
                let cut = rng.random_range(0..=buf.len());
                let from = rng.random_range(0..=other.len());
                buf.truncate(cut);
                buf.extend_from_slice(&other[from..]);
            }
            8 => {
                // An attribute header inserted at an attribute boundary.
                let at = attribute.unwrap_or(buf.len().min(HEADER_LEN));
                let mut header = Vec::with_capacity(4);
                header.extend_from_slice(&rng.random_range(0..0x30u16).to_be_bytes());
                header.extend_from_slice(&boundary.to_be_bytes());
                buf.splice(at..at, header);
            }
            _ => {}
        }
        if rng.random_bool(0.5) && buf.len() >= HEADER_LEN {
            // Re-fit the header length so decoding goes past the header.
            let body = u16::try_from(buf.len() - HEADER_LEN).unwrap_or(u16::MAX);
            put_u16(buf, 2, body);
        }
    }
}

/// Every decoder on `buf`; the round-trip properties of the fuzz target.
fn exercise(buf: &[u8]) {
    let _ = packet_kind(buf);
    let _ = frame_len(buf);
    let _ = binding::answer(buf, "192.0.2.1:5000".parse().expect("addr"));
    if let Ok(msg) = Message::decode(buf) {
        let _ = msg.verify_integrity(buf, b"key");
        let _ = msg.check_fingerprint(buf);
        let _ = msg.unknown_comprehension_required();
        if let Ok(raw) = msg.to_builder().and_then(|b| b.build(Some(b"k"), true)) {
            let again = Message::decode(&raw).expect("a re-encoded message decodes");
            assert_eq!(plain(&again.attributes), plain(&msg.attributes));
            assert!(again.verify_integrity(&raw, b"k"));
            assert!(again.check_fingerprint(&raw));
        }
    }
    if let Ok(frame) = ChannelData::decode(buf) {
        let raw = frame.encode(true).expect("a decoded frame re-encodes");
        assert_eq!(ChannelData::decode(&raw).expect("round trip"), frame);
    }
    let _ = channel::parse(buf);
}

#[test]
fn mutated_valid_messages_never_panic_the_decoders() {
    let seed = env_number("TANDEM_FUZZ_SEED", 0x4875_6e74);
    let iterations = env_number("TANDEM_FUZZ_ITERATIONS", 100_000);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut decoded = 0u64;
    for i in 0..iterations {
        let mut buf = match i % 5 {
            0 | 1 => CORPUS[rng.random_range(0..CORPUS.len())].to_vec(),
            2 | 3 => random_message(&mut rng),
            _ => (0..rng.random_range(0..128))
                .map(|_| rng.random())
                .collect(),
        };
        let other = random_message(&mut rng);
        mutate(&mut rng, &mut buf, &other);
        exercise(&buf);
        decoded += u64::from(Message::decode(&buf).is_ok());
    }
    // The mutations must leave enough intact to reach past the header
    // checks, or the run tests little.
    assert!(
        decoded * 20 >= iterations,
        "only {decoded} of {iterations} mutated inputs decoded (seed {seed})"
    );
}
