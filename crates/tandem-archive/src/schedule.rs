//! The built-in schedule: no outside cron needed. Every instance runs it;
//! the run record's unique slot and the lease make one of them do the work.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use tandem_core::Shutdown;

use crate::{ArchiveError, Archiver, Quiet, run::Trigger};

/// A cron expression (`0 3 * * 0`: Sundays at 03:00 UTC), in UTC.
#[derive(Debug, Clone)]
pub struct Schedule(croner::Cron);

impl Schedule {
    /// Parses a five-field cron expression.
    pub fn parse(expression: &str) -> Result<Self, String> {
        croner::Cron::from_str(expression)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_next_occurrence(&after, false).ok()
    }
}

/// Runs the archive at every slot of `schedule` until `shutdown`.
pub async fn run_schedule(archiver: Archiver, schedule: Schedule, shutdown: Shutdown) {
    loop {
        let now = archiver.clock.now();
        let Some(slot) = schedule.next_after(now) else {
            tracing::warn!("the archive schedule has no next slot; scheduling stops");
            return;
        };
        let wait = (slot - now).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(wait) => {}
        }
        match archiver.begin(Trigger::Schedule(slot), false).await {
            Ok(run) => {
                let run = tokio::select! {
                    () = shutdown.wait() => return, // the lease expires; the next slot finishes the work
                    run = run.execute(&Quiet) => run,
                };
                tracing::info!(run = %run.id, status = %run.status, rows = run.rows, objects = run.objects, "scheduled archive run finished");
            }
            Err(ArchiveError::Busy | ArchiveError::SlotTaken) => {
                tracing::debug!(%slot, "archive slot taken by another instance");
            }
            Err(e) => {
                tracing::error!(%slot, error = %e, "could not start the scheduled archive run")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sundays_at_three() {
        let schedule = Schedule::parse("0 3 * * 0").expect("parse");
        let thursday = "2026-11-26T10:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        assert_eq!(
            schedule.next_after(thursday).map(|t| t.to_rfc3339()),
            Some("2026-11-29T03:00:00+00:00".into())
        );
        let slot = "2026-11-29T03:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        assert_eq!(
            schedule.next_after(slot).map(|t| t.to_rfc3339()),
            Some("2026-12-06T03:00:00+00:00".into())
        );
        assert!(Schedule::parse("not cron").is_err());
        assert!(Schedule::parse("61 3 * * 0").is_err());
    }
}
