//! `tandem-bench simulate`: a day of a study community replayed against one
//! or more Tandem URLs. Each step runs the peak hour of a given number of
//! daily active users (see [`model`]) for a measured window and reports
//! throughput, p50/p95/p99 per action and errors; `--find-max` raises the
//! DAU until a step fails and reports the largest that held (p99 under
//! `--p99-ms` for every action, no errors). Results go to a JSON file with
//! two SVG plots beside it.
//!
//! Every simulated student shares this machine's IP, so run the target with
//! the per-IP limits raised (`TANDEM_API_MAX_PER_MINUTE`,
//! `TANDEM_LOGIN_MAX_PER_IP`, `TANDEM_REGISTER_MAX_PER_IP`); `bench/simulate.sh`
//! does.

mod channel;
mod chaos;
mod model;
mod report;
mod session;
mod setup;
mod stats;

use std::{path::PathBuf, sync::Arc, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Exp};

use model::{Community, SCRIPT, SCRIPT_SECONDS, Step};
use session::Sim;

/// `tandem-bench simulate` options.
#[derive(clap::Args, Clone, serde::Serialize)]
pub struct Args {
    /// Tandem base URL (repeat for several instances; sessions are spread over them).
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Daily active users (with --find-max, the first step).
    #[arg(long, default_value_t = 2_000)]
    dau: u32,
    /// Raise the DAU by --step after every step that holds, until one fails.
    #[arg(long)]
    find_max: bool,
    /// Factor between steps.
    #[arg(long, default_value_t = 1.5)]
    step: f64,
    /// Never simulate more DAU than this.
    #[arg(long, default_value_t = 2_000_000)]
    max_dau: u32,
    /// Time compression: 10 runs the day ten times as fast.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Unmeasured seconds at the start of each step.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Share of a day's sessions in its busiest hour.
    #[arg(long, default_value_t = 0.15)]
    peak_share: f64,
    /// App visits per user per day.
    #[arg(long, default_value_t = 2.0)]
    sessions_per_user: f64,
    /// The p99 every action must stay under, in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    p99_ms: f64,
    /// A failure to inject, `SECONDS=COMMAND`: COMMAND runs (`sh -c`) that
    /// many seconds into the first step's measured window. Repeatable.
    #[arg(long = "chaos", value_name = "SECONDS=COMMAND")]
    chaos: Vec<String>,
    /// At the end, check that every simulated student is still signed in.
    #[arg(long)]
    check_sessions: bool,
    /// Fail (exit status 1) if a session or job was lost or a request failed for good.
    #[arg(long)]
    require_clean: bool,
    /// Result file (JSON); the plots go beside it (`.latency.svg`, `.throughput.svg`).
    #[arg(long, default_value = "simulation.json")]
    out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.speed > 0.0 && args.step > 1.0,
        "--speed must be > 0 and --step > 1"
    );
    let community = |dau| Community {
        dau,
        peak_share: args.peak_share,
        sessions_per_user: args.sessions_per_user,
        speed: args.speed,
    };
    let mut chaos = chaos::parse(&args.chaos)?;
    let sim = Arc::new(Sim::new(args.urls.clone(), community(args.dau)));
    setup::prepare(&sim).await?;
    let mut steps = Vec::new();
    let mut events = None;
    let mut dau = args.dau;
    loop {
        let plan = std::mem::take(&mut chaos);
        let (step, ran) = run_step(&sim, &args, community(dau), plan).await?;
        events = events.or(ran);
        let passed = step.passed;
        report::print_step(&step);
        steps.push(step);
        let next = ((f64::from(dau) * args.step).round() as u32).min(args.max_dau);
        if !args.find_max || !passed || next <= dau {
            break;
        }
        dau = next;
    }
    let jobs = report::check_jobs(&sim).await;
    let sessions = if args.check_sessions {
        Some(report::check_sessions(&sim).await)
    } else {
        None
    };
    let chaos = match events {
        Some(events) => chaos::settle(&sim, events.await?, sim.recorder.elapsed()),
        None => Vec::new(),
    };
    let report = report::Report::new(&args, steps, jobs, sessions, chaos, sim.recorder.timeline());
    report.write(&args.out)?;
    report.print_verdict(&args.out);
    if args.require_clean {
        report.ensure_clean()?;
    }
    Ok(())
}

/// A step's chaos, running: the events as they happened.
type ChaosRun = tokio::task::JoinHandle<Vec<chaos::Event>>;

/// Runs one step: warm start, Poisson arrivals for warm-up + window (with
/// `plan`'s failures injected), drain.
async fn run_step(
    sim: &Arc<Sim>,
    args: &Args,
    community: Community,
    plan: Vec<chaos::Planned>,
) -> anyhow::Result<(report::StepReport, Option<ChaosRun>)> {
    let concurrent = community.concurrent_sessions();
    setup::top_up_accounts(sim, (concurrent * 1.3).ceil() as usize + 5).await?;
    sim.set_community(community.clone());
    sim.starved.store(0, std::sync::atomic::Ordering::Relaxed);
    let began = sim.recorder.elapsed();
    let measured_from = began + Duration::from_secs(args.warmup);
    let until = measured_from + Duration::from_secs(args.seconds);
    let events =
        (!plan.is_empty()).then(|| tokio::spawn(chaos::run(sim.clone(), plan, measured_from)));
    let mut rng = StdRng::from_os_rng();
    let mut sessions = tokio::task::JoinSet::new();
    // Warm start: the sessions a steady state would have open, each midway.
    for _ in 0..concurrent.round() as usize {
        let at = start_index(rng.random_range(0.0..SCRIPT_SECONDS));
        sessions.spawn(session::session(sim.clone(), at));
    }
    let gaps = Exp::new(community.arrivals_per_second().max(1e-6))?;
    let mut started = 0u64;
    let mut next = began;
    while next < until {
        next += Duration::from_secs_f64(gaps.sample(&mut rng));
        let wait = next.saturating_sub(sim.recorder.elapsed());
        tokio::time::sleep(wait).await;
        sessions.spawn(session::session(sim.clone(), 0));
        started += 1;
        while sessions.try_join_next().is_some() {}
    }
    let ended = sim.recorder.elapsed();
    sim.stop_sessions();
    let drain = tokio::time::timeout(Duration::from_secs(30), async {
        while sessions.join_next().await.is_some() {}
    });
    if drain.await.is_err() {
        eprintln!(
            "simulate: {} sessions still running 30 s after the step; aborted",
            sessions.len()
        );
        sessions.abort_all();
    }
    sim.resume_sessions();
    let step = report::StepReport::new(sim, args, &community, started, measured_from, ended);
    Ok((step, events))
}

/// The script step a session `offset` seconds into its visit is at.
fn start_index(offset: f64) -> usize {
    let mut elapsed = 0.0;
    for (i, step) in SCRIPT.iter().enumerate() {
        if let Step::Pause(p) = step {
            elapsed += p;
            if elapsed > offset {
                return i + 1;
            }
        }
    }
    SCRIPT.len()
}
