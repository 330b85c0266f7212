//! A bounded, seeded random test of the frame decoder (issue 18's fuzz run,
//! on stable Rust): random bytes and mutations of valid frames of both
//! serializers never panic, and whatever is accepted has the shape the
//! socket relies on. Deterministic: a failure names its seed and case.

use rand::{Rng, SeedableRng, rngs::StdRng};
use tandem_realtime::protocol::{FrameError, Inbound, Vsn, decode_binary, decode_text};

/// Cases per seed, and seeds: a few seconds in a debug build.
const CASES: usize = 20_000;
const SEEDS: [u64; 5] = [1, 2, 3, 0x5eed, 0xdead_beef];

const TEXT_SEEDS: [&str; 6] = [
    r#"["1","2","realtime:room1","phx_join",{"config":{"broadcast":{"self":true}}}]"#,
    r#"[null,"3","phoenix","heartbeat",{}]"#,
    r#"["1","4","realtime:r","broadcast",{"type":"broadcast","event":"e","payload":{"a":[1,2,{"b":null}]}}]"#,
    r#"{"topic":"realtime:r","event":"phx_join","payload":{"config":{}},"ref":"1","join_ref":"1"}"#,
    r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":7}"#,
    r#"["1","5","realtime:r","presence",{"type":"presence","event":"track","payload":{"n":"é"}}]"#,
];

fn binary_seed() -> Vec<u8> {
    let mut frame = vec![3, 1, 1, 14, 2, 0, 1];
    frame.extend_from_slice(b"67realtime:room1ev{\"a\":1}");
    frame
}

/// One random change: flip, overwrite, insert, delete, truncate or repeat.
fn mutate(rng: &mut StdRng, data: &mut Vec<u8>) {
    let at = rng.random_range(0..data.len() + 1);
    match rng.random_range(0..6) {
        0 if at < data.len() => data[at] ^= 1 << rng.random_range(0..8),
        1 if at < data.len() => data[at] = rng.random::<u8>(),
        2 => data.insert(at, rng.random::<u8>()),
        3 if at < data.len() => {
            data.remove(at);
        }
        4 => data.truncate(at),
        _ => {
            let tail = data[at..].to_vec();
            data.extend_from_slice(&tail);
        }
    }
}

fn check(inbound: &Result<Inbound, FrameError>, binary: bool) {
    if let Ok(m) = inbound {
        assert!(
            m.payload.is_object(),
            "accepted a non-object payload: {m:?}"
        );
        if binary {
            assert_eq!(m.event, "broadcast");
            assert!(m.body.is_some());
            assert!(m.payload["event"].is_string());
        }
    } else if let Err(e) = inbound {
        // Errors become close reasons: they must render.
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn mutated_and_random_frames_never_panic() {
    let mut accepted = 0;
    for seed in SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        for case in 0..CASES {
            let vsn = if rng.random_range(0..4) == 0 {
                Vsn::V1
            } else {
                Vsn::V2
            };
            let binary = rng.random_range(0..3) == 0;
            let mut data = match (binary, rng.random_range(0..8)) {
                (_, 0) => (0..rng.random_range(0..64))
                    .map(|_| rng.random::<u8>())
                    .collect(),
                (true, _) => binary_seed(),
                (false, _) => TEXT_SEEDS[rng.random_range(0..TEXT_SEEDS.len())]
                    .as_bytes()
                    .to_vec(),
            };
            for _ in 0..1 + rng.random_range(0..4) {
                mutate(&mut rng, &mut data);
            }
            let outcome = std::panic::catch_unwind(|| {
                let result = if binary {
                    decode_binary(vsn, &data)
                } else {
                    decode_text(vsn, &String::from_utf8_lossy(&data))
                };
                check(&result, binary);
                result.is_ok()
            });
            match outcome {
                Ok(ok) => accepted += usize::from(ok),
                Err(_) => panic!("seed {seed}, case {case}: decoder panicked on {data:?}"),
            }
        }
    }
    assert!(
        accepted > 0,
        "no mutation kept a frame valid: the seeds are broken"
    );
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let frame = format!(r#"["1","2","realtime:r","broadcast",{{"payload":{deep}}}]"#);
    assert!(decode_text(Vsn::V2, &frame).is_err());
    let mut binary = vec![3, 0, 0, 1, 1, 0, 1, b't', b'e'];
    binary.extend_from_slice(deep.as_bytes());
    assert!(decode_binary(Vsn::V2, &binary).is_err());
    assert!(matches!(
        decode_text(Vsn::V1, &"{".repeat(50_000)),
        Err(FrameError::Malformed(_))
    ));
}
