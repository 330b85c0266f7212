//! Failures injected during a simulation (`--chaos SECONDS=COMMAND`): an
//! instance killed, Redis restarted, the replica paused. Each is timed, and
//! its recovery measured from the requests around it: how long until the
//! last request that failed or needed a retry.

use std::{sync::Arc, time::Duration};

use serde::Serialize;

use super::session::Sim;

/// A failure to inject.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Seconds into the measured window.
    pub after: Duration,
    /// Shell command.
    pub command: String,
}

/// Parses `SECONDS=COMMAND` options.
pub fn parse(options: &[String]) -> anyhow::Result<Vec<Planned>> {
    let mut plan = options
        .iter()
        .map(|o| {
            let (at, command) = o
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--chaos {o:?}: expected SECONDS=COMMAND"))?;
            let seconds: f64 = at
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--chaos {o:?}: bad seconds"))?;
            Ok(Planned {
                after: Duration::from_secs_f64(seconds.max(0.0)),
                command: command.to_owned(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    plan.sort_by_key(|p| p.after);
    Ok(plan)
}

/// An injected failure, as it happened.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it started, since the run began.
    pub at: Duration,
    /// The command.
    pub command: String,
    /// Whether the command succeeded.
    pub ok: bool,
}

/// Runs the plan; `window` is when the measured window starts (run time).
pub async fn run(sim: Arc<Sim>, plan: Vec<Planned>, window: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    for planned in plan {
        let due = window + planned.after;
        tokio::time::sleep(due.saturating_sub(sim.recorder.elapsed())).await;
        let at = sim.recorder.elapsed();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&planned.command)
            .stdin(std::process::Stdio::null())
            .status()
            .await;
        let ok = status.is_ok_and(|s| s.success());
        eprintln!(
            "simulate: chaos at {:.1} s: {} ({})",
            at.as_secs_f64(),
            planned.command,
            if ok { "ok" } else { "FAILED" }
        );
        events.push(Event {
            at,
            command: planned.command,
            ok,
        });
    }
    events
}

/// One injected failure in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds since the run began.
    pub at_seconds: f64,
    /// The command.
    pub command: String,
    /// Whether it ran.
    pub ok: bool,
    /// Requests that failed for good between this event and the next.
    pub errors: u64,
    /// Requests that needed a retry in that time.
    pub retried: u64,
    /// Seconds from the event to the last request that failed or was
    /// retried (0: nobody noticed).
    pub recovery_seconds: f64,
}

/// Measures each event's effect, up to the next event (or `end`).
pub fn settle(sim: &Sim, events: Vec<Event>, end: Duration) -> Vec<Report> {
    let ends: Vec<Duration> = events.iter().skip(1).map(|e| e.at).chain([end]).collect();
    events
        .into_iter()
        .zip(ends)
        .map(|(event, until)| {
            let (errors, retried, last) = sim.recorder.disturbance(event.at, until);
            Report {
                at_seconds: event.at.as_secs_f64(),
                recovery_seconds: last.map_or(0.0, |l| l.saturating_sub(event.at).as_secs_f64()),
                command: event.command,
                ok: event.ok,
                errors,
                retried,
            }
        })
        .collect()
}
