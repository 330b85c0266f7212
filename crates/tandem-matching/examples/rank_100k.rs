//! Rough timing of `rank` over 100k synthetic candidates.
//!
//! Run with `cargo run --release --example rank_100k -p tandem-matching`.
//! Prints the median and p99 (and the minimum, the least disturbed run) of
//! 200 wall-clock timed calls, each for a different seeker.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use tandem_matching::{Preferences, SubjectIndex, features_for, rank, synthetic_population};

const CANDIDATES: usize = 100_000;
const RUNS: usize = 200;

fn main() {
    let started = Instant::now();
    let population = synthetic_population(CANDIDATES, 2024);
    let mut index = SubjectIndex::new();
    let features = features_for(&population, &mut index);
    println!(
        "built {CANDIDATES} profiles + features in {:?} ({} subjects)",
        started.elapsed(),
        index.len()
    );

    let prefs = Preferences::default();
    // Roughly 1% of users blocked or already matched.
    let excluded: HashSet<_> = features.iter().step_by(97).map(|f| f.id()).collect();
    let mut times = Vec::with_capacity(RUNS);
    let mut returned = 0;
    for run in 0..RUNS {
        let me = &features[run * (CANDIDATES / RUNS)];
        let t = Instant::now();
        let matches = rank(me, black_box(&features), &excluded, &prefs, &index);
        times.push(t.elapsed());
        returned += black_box(matches).len();
    }
    times.sort_unstable();
    let p99 = times[(RUNS * 99).div_ceil(100) - 1];
    println!(
        "rank over {CANDIDATES} candidates ({RUNS} runs, {:.1} results/run): \
         median {:?}, p99 {:?}, min {:?}",
        returned as f64 / RUNS as f64,
        times[RUNS / 2],
        p99,
        times[0]
    );
}
