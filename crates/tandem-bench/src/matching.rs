//! Issue 5: ranking partners for one student among 100k candidates
//! (target: under 10 ms). Each run ranks for a different seeker over the
//! same synthetic population, about 1% of it excluded (blocked or partnered).

use std::{collections::HashSet, hint::black_box, time::Instant};

use tandem_matching::{Preferences, SubjectIndex, features_for, rank, synthetic_population};

/// `tandem-bench matching` options.
#[derive(clap::Args)]
pub struct Args {
    /// Candidates in the population.
    #[arg(long, default_value_t = 100_000)]
    candidates: usize,
    /// Timed searches, each for a different seeker.
    #[arg(long, default_value_t = 200)]
    runs: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.candidates >= args.runs && args.runs > 0,
        "need candidates >= runs > 0"
    );
    let started = Instant::now();
    let population = synthetic_population(args.candidates, 2024);
    let mut index = SubjectIndex::new();
    let features = features_for(&population, &mut index);
    println!(
        "matching: {} synthetic profiles, features built in {:.0} ms ({} subjects)",
        args.candidates,
        started.elapsed().as_secs_f64() * 1000.0,
        index.len()
    );
    let prefs = Preferences::default();
    let excluded: HashSet<_> = features.iter().step_by(97).map(|f| f.id()).collect();
    let mut times = Vec::with_capacity(args.runs);
    let mut returned = 0;
    for run in 0..args.runs {
        let me = &features[run * (args.candidates / args.runs)];
        let t = Instant::now();
        let matches = rank(me, black_box(&features), &excluded, &prefs, &index);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        returned += black_box(matches).len();
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "  rank over {} candidates, {} runs ({:.1} results each): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (target < 10 ms)",
        args.candidates,
        args.runs,
        returned as f64 / args.runs as f64,
        q(0.5),
        q(0.99),
        times[times.len() - 1],
    );
    Ok(())
}
