//! A bounded, seeded fuzz run of the option parser: random option strings
//! (made of real keys and values, near misses and junk) never panic, and
//! every accepted option set, on any source the source limits allow, plans
//! an output within the output pixel budget and side cap, or is refused
//! with `OutputTooLarge`/`AvifTooLarge` before anything is allocated.

use rand::{Rng, SeedableRng, rngs::StdRng};
use tandem_images::{Fit, Limits, Options, OutputFormat, Policy, TransformError, plan};

/// One of `items`, chosen by the seeded `rng`.
fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

const KEYS: &[&str] = &[
    "width", "w", "height", "h", "fit", "quality", "q", "format", "f", "dpr", "anim", "metadata",
    "onerror", "blur", "", " width", "WIDTH", "w\u{0}", "é",
];
const VALUES: &[&str] = &[
    "16",
    "256",
    "720",
    "1920",
    "2048",
    "0",
    "1",
    "2",
    "3",
    "4",
    "50",
    "80",
    "90",
    "-1",
    "99999999999",
    "4294967296",
    "contain",
    "cover",
    "pad",
    "crop",
    "scale-down",
    "auto",
    "jpeg",
    "webp",
    "png",
    "avif",
    "gif",
    "",
    " ",
    "=",
    "2048 ",
    "1e3",
    "0x10",
    "١٢",
];

fn random_options(rng: &mut StdRng) -> String {
    let parts = rng.random_range(0..8);
    let mut s = String::new();
    for i in 0..parts {
        if i > 0 {
            s.push_str(pick(rng, &[",", ",", ",", ",,", " , ", ";"]));
        }
        match rng.random_range(0..10) {
            0 => {
                // Raw junk bytes as text.
                let len = rng.random_range(0..12);
                s.extend(
                    (0..len)
                        .map(|_| char::from_u32(rng.random_range(0..0x2FF) as u32).unwrap_or('?')),
                );
            }
            1 => s.push_str(pick(rng, KEYS)),
            _ => {
                s.push_str(pick(rng, KEYS));
                s.push_str(pick(rng, &["=", "=", "==", " = "]));
                s.push_str(pick(rng, VALUES));
            }
        }
    }
    s
}

#[test]
fn random_option_strings_never_panic_and_accepted_ones_fit_the_budget() {
    let policy = Policy::default();
    let limits = Limits::default();
    // Sources at the corners of what the source limits allow.
    let sources = [
        (1, 1),
        (1, 1024),
        (1024, 1),
        (1, 12_000),
        (12_000, 1),
        (3333, 12_000),
        (12_000, 3333),
        (640, 480),
        (1024, 1024),
    ];
    let mut rng = StdRng::seed_from_u64(0x7A4D_E1A6_0000_0018);
    let (mut accepted, mut planned, mut refused) = (0, 0, 0);
    for _ in 0..20_000 {
        let text = random_options(&mut rng);
        let Ok(options) = Options::parse(&text, &policy) else {
            continue;
        };
        accepted += 1;
        let _ = options.canonical();
        for &(sw, sh) in &sources {
            match plan(sw, sh, &options, &limits) {
                Ok(p) => {
                    planned += 1;
                    for (w, h) in [p.resized, p.output] {
                        let pixels = u64::from(w) * u64::from(h);
                        assert!(pixels <= limits.max_output_pixels, "{text:?} on {sw}x{sh}");
                        assert!(w.max(h) <= limits.max_output_side, "{text:?} on {sw}x{sh}");
                        assert!(w >= 1 && h >= 1, "{text:?} on {sw}x{sh}");
                        if options.format == OutputFormat::Avif {
                            assert!(pixels <= limits.max_avif_pixels, "{text:?}");
                        }
                    }
                    if let (Fit::Pad | Fit::Cover, Some(bw), Some(bh)) =
                        (options.fit, options.width, options.height)
                    {
                        assert_eq!(p.output, (bw, bh), "{text:?} on {sw}x{sh}");
                    }
                }
                Err(
                    TransformError::OutputTooLarge { .. } | TransformError::AvifTooLarge { .. },
                ) => {
                    refused += 1;
                }
                Err(other) => panic!("{text:?} on {sw}x{sh}: {other}"),
            }
        }
    }
    // The run explored both sides of the budget.
    assert!(accepted > 1_000, "accepted {accepted}");
    assert!(
        planned > 1_000 && refused > 100,
        "planned {planned}, refused {refused}"
    );
}
