//! What a simulation found: per-step summaries, the verdict, the AI jobs'
//! fate, a JSON file and two SVG plots.

use std::{fmt::Write as _, path::Path, time::Duration};

use serde::Serialize;

use super::{
    Args,
    model::{Action, Community},
    session::{JobState, Sim},
    stats::{ActionStats, Tick},
};

/// One step of the run.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The load model.
    pub community: Community,
    /// Sessions starting per second.
    pub arrivals_per_second: f64,
    /// Sessions open at once.
    pub concurrent_sessions: f64,
    /// Sessions started during the step (besides the warm start).
    pub sessions_started: u64,
    /// Sessions that found no free account (a simulator limit; fails the step).
    pub sessions_starved: u64,
    /// The measured window, seconds since the run began.
    pub window: (f64, f64),
    /// Per-action results over the window.
    pub actions: Vec<ActionStats>,
    /// Failed requests during the step, as `action status count` (status 0: no answer).
    pub failures: Vec<(String, u16, u64)>,
    /// Whether every action kept p99 under the target with no errors.
    pub passed: bool,
}

impl StepReport {
    pub fn new(
        sim: &Sim,
        args: &Args,
        community: &Community,
        started: u64,
        from: Duration,
        to: Duration,
    ) -> Self {
        let actions = sim.recorder.summary(from, to);
        let starved = sim.starved.load(std::sync::atomic::Ordering::Relaxed);
        let failures = std::mem::take(&mut *sim.failures.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|((action, status), n)| (action.name().to_owned(), status, n))
            .collect();
        let passed = !actions.is_empty()
            && starved == 0
            && actions
                .iter()
                .all(|a| a.errors == 0 && a.p99_ms < args.p99_ms);
        Self {
            community: community.clone(),
            arrivals_per_second: community.arrivals_per_second(),
            concurrent_sessions: community.concurrent_sessions(),
            sessions_started: started,
            sessions_starved: starved,
            window: (from.as_secs_f64(), to.as_secs_f64()),
            actions,
            failures,
            passed,
        }
    }
}

/// What became of the AI jobs the sessions queued.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Jobs {
    /// Queued (202 answers).
    pub queued: u64,
    /// Finished with a result.
    pub completed: u64,
    /// Failed for good.
    pub failed: u64,
    /// Still waiting or running 60 s after the run (a backlog).
    pub unfinished: u64,
    /// Unknown to the queue: lost.
    pub lost: u64,
}

/// Waits up to 60 s for the job watchers still polling, then counts the jobs.
pub async fn check_jobs(sim: &Sim) -> Jobs {
    let mut watchers =
        std::mem::take(&mut *sim.job_watchers.lock().unwrap_or_else(|e| e.into_inner()));
    let mut lost = 0;
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(state) = watchers.join_next().await {
            if matches!(state, Ok(JobState::Missing)) {
                lost += 1;
            }
        }
    })
    .await;
    let (completed, failed) = *sim.jobs_finished.lock().unwrap_or_else(|e| e.into_inner());
    Jobs {
        queued: sim.jobs_queued.load(std::sync::atomic::Ordering::Relaxed),
        completed,
        failed,
        unfinished: watchers.len() as u64,
        lost,
    }
}

/// Whether the simulated students are still signed in at the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sessions {
    /// Accounts checked (`GET /api/users/me` with their cookie).
    pub checked: u64,
    /// Accounts whose session no longer works.
    pub lost: u64,
}

/// Checks every account's session cookie (with the same retries as requests).
pub async fn check_sessions(sim: &Sim) -> Sessions {
    let accounts = sim
        .accounts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut sessions = Sessions::default();
    for account in accounts {
        sessions.checked += 1;
        if !sim.signed_in(&account.cookie).await {
            sessions.lost += 1;
        }
    }
    sessions
}

/// The whole run, as written to the result file.
#[derive(Serialize)]
pub struct Report {
    /// The command line that reproduces it.
    pub command: String,
    /// Its options.
    pub args: Args,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// The largest DAU whose step held, if any.
    pub sustained_dau: Option<u32>,
    /// The AI jobs.
    pub jobs: Jobs,
    /// Sessions still valid at the end (with `--check-sessions`).
    pub sessions: Option<Sessions>,
    /// Injected failures and the recovery from each.
    pub chaos: Vec<super::chaos::Report>,
    /// Per second and action: requests, errors, p99.
    pub timeline: Vec<Tick>,
}

impl Report {
    pub fn new(
        args: &Args,
        steps: Vec<StepReport>,
        jobs: Jobs,
        sessions: Option<Sessions>,
        chaos: Vec<super::chaos::Report>,
        timeline: Vec<Tick>,
    ) -> Self {
        let sustained_dau = steps
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.community.dau)
            .max();
        Self {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            args: args.clone(),
            steps,
            sustained_dau,
            jobs,
            sessions,
            chaos,
            timeline,
        }
    }

    /// Errors if a session or job was lost, or a request failed for good.
    pub fn ensure_clean(&self) -> anyhow::Result<()> {
        let errors: u64 = self
            .steps
            .iter()
            .flat_map(|s| &s.actions)
            .map(|a| a.errors)
            .sum();
        let lost_sessions = self.sessions.as_ref().map_or(0, |s| s.lost);
        let failed_chaos = self.chaos.iter().filter(|c| !c.ok).count();
        anyhow::ensure!(
            self.sessions.as_ref().is_none_or(|s| s.checked > 0),
            "not clean: sessions were to be checked, but no account was signed in to check"
        );
        anyhow::ensure!(
            errors == 0
                && lost_sessions == 0
                && self.jobs.lost == 0
                && self.jobs.unfinished == 0
                && failed_chaos == 0,
            "not clean: {errors} failed requests, {lost_sessions} lost sessions, {} lost and {} unfinished jobs, {failed_chaos} chaos commands failed",
            self.jobs.lost,
            self.jobs.unfinished
        );
        Ok(())
    }

    /// Writes the JSON file and, beside it, the latency and throughput plots.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, serde_json::to_vec(self)?)?;
        std::fs::write(out.with_extension("latency.svg"), self.latency_svg())?;
        std::fs::write(out.with_extension("throughput.svg"), self.throughput_svg())?;
        Ok(())
    }

    pub fn print_verdict(&self, out: &Path) {
        let speed = self.args.speed;
        match self.sustained_dau {
            Some(dau) => println!(
                "verdict: {dau} DAU sustained at {speed}x speed (p99 < {} ms on every action, no errors)",
                self.args.p99_ms
            ),
            None => println!(
                "verdict: no step held at {speed}x speed (p99 < {} ms, no errors)",
                self.args.p99_ms
            ),
        }
        let j = &self.jobs;
        println!(
            "AI jobs: {} queued, {} completed, {} failed, {} unfinished, {} lost",
            j.queued, j.completed, j.failed, j.unfinished, j.lost
        );
        if let Some(s) = &self.sessions {
            println!("sessions: {} checked, {} lost", s.checked, s.lost);
        }
        for c in &self.chaos {
            println!(
                "chaos at {:.1} s: {} -> {} retried, {} failed, recovered in {:.1} s",
                c.at_seconds, c.command, c.retried, c.errors, c.recovery_seconds
            );
        }
        println!("reproduce: {}", self.command);
        println!(
            "results: {} (+ .latency.svg, .throughput.svg)",
            out.display()
        );
    }

    /// p99 per second for each action, the target dashed, steps marked.
    fn latency_svg(&self) -> String {
        let (w, h, left, bottom) = (960.0, 420.0, 60.0, 40.0);
        let last = self
            .timeline
            .iter()
            .map(|t| t.second)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let top = (self.args.p99_ms * 2.0).max(1.0);
        let x = |s: f64| left + s / last * (w - left - 140.0); // legend on the right
        let y = |ms: f64| (h - bottom) - ms.min(top) / top * (h - bottom - 20.0);
        let mut svg = svg_open(w, h, "p99 latency per second and action (ms)");
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{t}" y2="{t}" stroke="#c00" stroke-dasharray="6 4"/><text x="{}" y="{}" font-size="11" fill="#c00">p99 target {} ms</text>"##,
            w - 20.0,
            w - 150.0,
            y(self.args.p99_ms) - 4.0,
            self.args.p99_ms,
            t = y(self.args.p99_ms)
        );
        for step in &self.steps {
            let sx = x(step.window.0);
            let _ = write!(
                svg,
                r##"<line x1="{sx}" x2="{sx}" y1="20" y2="{}" stroke="#999"/><text x="{}" y="32" font-size="11">{} DAU</text>"##,
                h - bottom,
                sx + 3.0,
                step.community.dau
            );
        }
        for (i, action) in Action::ALL.iter().enumerate() {
            let points: Vec<String> = self
                .timeline
                .iter()
                .filter(|t| t.action == *action)
                .map(|t| format!("{:.1},{:.1}", x(t.second as f64), y(t.p99_ms)))
                .collect();
            if points.is_empty() {
                continue;
            }
            let color = COLORS[i % COLORS.len()];
            let _ = write!(
                svg,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"##,
                points.join(" ")
            );
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" font-size="11" fill="{color}">{}</text>"##,
                w - 110.0,
                50.0 + 14.0 * i as f64,
                action.name()
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{left}" y="{}" font-size="11">0 s</text><text x="{}" y="{}" font-size="11">{last} s</text><text x="8" y="{}" font-size="11">{top} ms</text>"##,
            h - 22.0,
            w - 60.0,
            h - 22.0,
            y(top) + 4.0
        );
        svg + "</svg>\n"
    }

    /// Requests per second per action in the last step that held (or the last).
    fn throughput_svg(&self) -> String {
        let step = self
            .steps
            .iter()
            .rev()
            .find(|s| s.passed)
            .or(self.steps.last());
        let actions = step.map(|s| s.actions.clone()).unwrap_or_default();
        let (w, bar, left) = (760.0, 22.0, 110.0);
        let h = 60.0 + bar * actions.len() as f64;
        let most = actions.iter().map(|a| a.per_second).fold(1.0, f64::max);
        let title = match step {
            Some(s) => format!(
                "requests/s per action at {} DAU, {}x speed",
                s.community.dau, s.community.speed
            ),
            None => "no steps".into(),
        };
        let mut svg = svg_open(w, h, &title);
        for (i, a) in actions.iter().enumerate() {
            let top = 40.0 + bar * i as f64;
            let len = a.per_second / most * (w - left - 120.0);
            let _ = write!(
                svg,
                r##"<text x="8" y="{}" font-size="12">{}</text><rect x="{left}" y="{top}" width="{len:.1}" height="{}" fill="{}"/><text x="{}" y="{}" font-size="11">{:.1}/s, p99 {:.1} ms{}</text>"##,
                top + 15.0,
                a.action.name(),
                bar - 6.0,
                COLORS[i % COLORS.len()],
                left + len + 6.0,
                top + 15.0,
                a.per_second,
                a.p99_ms,
                if a.errors > 0 {
                    format!(", {} errors", a.errors)
                } else {
                    String::new()
                }
            );
        }
        svg + "</svg>\n"
    }
}

const COLORS: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939",
];

fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="16" font-size="13" font-weight="bold">{title}</text>"##
    )
}

/// One line per action for the step, then its verdict.
pub fn print_step(step: &StepReport) {
    let c = &step.community;
    println!(
        "\n{} DAU at {}x: {:.2} sessions/s, ~{:.0} open at once, {} started",
        c.dau, c.speed, step.arrivals_per_second, step.concurrent_sessions, step.sessions_started
    );
    println!(
        "{:<11} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "action", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms"
    );
    for a in &step.actions {
        println!(
            "{:<11} {:>9.1} {:>7} {:>8} {:>9.1} {:>9.1} {:>9.1}",
            a.action.name(),
            a.per_second,
            a.errors,
            a.retried,
            a.p50_ms,
            a.p95_ms,
            a.p99_ms
        );
    }
    for (action, status, n) in &step.failures {
        println!("{n} failed {action} requests answered {status}");
    }
    if step.sessions_starved > 0 {
        println!("{} sessions found no free account", step.sessions_starved);
    }
    println!("step {}", if step.passed { "held" } else { "FAILED" });
}
