//! Fuzzes the STUN and ChannelData decoders: arbitrary bytes must never
//! panic, and anything that decodes must re-encode and decode back to the
//! same attributes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_turn::stun::{self, Attribute, ChannelData, Message};

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

fuzz_target!(|data: &[u8]| {
    let _ = stun::packet_kind(data);
    let _ = stun::frame_len(data);
    if let Ok(msg) = Message::decode(data) {
        let _ = msg.verify_integrity(data, b"fuzz-key");
        let _ = msg.check_fingerprint(data);
        let _ = msg.unknown_comprehension_required();
        // Re-encoding can only fail when MESSAGE-INTEGRITY + FINGERPRINT
        // push a near-64 KiB message over the length limit.
        if let Ok(raw) = msg.to_builder().and_then(|b| b.build(Some(b"k"), true)) {
            let again = Message::decode(&raw).expect("re-encoded message decodes");
            assert_eq!(plain(&again.attributes), plain(&msg.attributes));
            assert!(again.verify_integrity(&raw, b"k"));
            assert!(again.check_fingerprint(&raw));
        }
    }
    if let Ok(frame) = ChannelData::decode(data) {
        let raw = frame.encode(true).expect("decoded frame re-encodes");
        assert_eq!(ChannelData::decode(&raw).expect("round trip"), frame);
    }
});
