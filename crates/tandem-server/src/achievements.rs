//! Achievement rules, evaluated from a user's real study sessions.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use tandem_db::StudySession;

/// What a user has done, as the rules see it.
#[derive(Debug, Default, PartialEq)]
pub struct Progress {
    /// Member of at least one (not cancelled) session.
    pub joined_any: bool,
    /// Scheduled at least one session.
    pub hosted_any: bool,
    /// Shared a session with someone else.
    pub had_partner: bool,
    /// Time spent in sessions that have started.
    pub studied: Duration,
    /// Longest run of consecutive local days with a session.
    pub longest_streak: u32,
}

impl Progress {
    /// Derives progress from `user`'s sessions, with days in `tz`.
    pub fn from_sessions(
        user: uuid::Uuid,
        sessions: &[StudySession],
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Self {
        let live: Vec<&StudySession> = sessions
            .iter()
            .filter(|s| s.status == "scheduled")
            .collect();
        let started: Vec<&&StudySession> = live.iter().filter(|s| s.starts_at <= now).collect();
        let studied = started
            .iter()
            .map(|s| s.ends_at.min(now) - s.starts_at)
            .fold(Duration::zero(), |a, b| a + b);
        let days: BTreeSet<NaiveDate> = started
            .iter()
            .map(|s| s.starts_at.with_timezone(&tz).date_naive())
            .collect();
        Self {
            joined_any: !live.is_empty(),
            hosted_any: sessions.iter().any(|s| s.owner_id == user),
            had_partner: live.iter().any(|s| s.member_count >= 2),
            studied,
            longest_streak: longest_run(&days),
        }
    }

    /// Ids of the achievements this progress earns.
    pub fn earned(&self) -> Vec<&'static str> {
        let hours = self.studied.num_minutes() / 60;
        [
            ("first-session", self.joined_any),
            ("host", self.hosted_any),
            ("first-partner", self.had_partner),
            ("hours-10", hours >= 10),
            ("hours-50", hours >= 50),
            ("streak-3", self.longest_streak >= 3),
            ("streak-7", self.longest_streak >= 7),
        ]
        .into_iter()
        .filter_map(|(id, done)| done.then_some(id))
        .collect()
    }
}

fn longest_run(days: &BTreeSet<NaiveDate>) -> u32 {
    let (mut best, mut run, mut previous) = (0, 0, None::<NaiveDate>);
    for day in days {
        run = match previous {
            Some(p) if p.succ_opt() == Some(*day) => run + 1,
            _ => 1,
        };
        best = best.max(run);
        previous = Some(*day);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(owner: uuid::Uuid, start: DateTime<Utc>, hours: i64, members: i64) -> StudySession {
        StudySession {
            id: uuid::Uuid::now_v7(),
            owner_id: owner,
            title: "t".into(),
            subject: "s".into(),
            description: String::new(),
            starts_at: start,
            ends_at: start + Duration::hours(hours),
            capacity: 4,
            status: "scheduled".into(),
            member_count: members,
            created_at: start,
        }
    }

    #[test]
    fn streaks_hours_and_partners_come_from_sessions() {
        let me = uuid::Uuid::now_v7();
        let other = uuid::Uuid::now_v7();
        let now = Utc::now();
        let day = |n: i64| now - Duration::days(n);
        let sessions = vec![
            session(other, day(5), 4, 2),
            session(other, day(4), 4, 1),
            session(other, day(3), 4, 1),
            session(other, day(1), 1, 1),
            session(other, now + Duration::days(1), 8, 1), // not started: no hours
        ];
        let progress = Progress::from_sessions(me, &sessions, now, chrono_tz::UTC);
        assert_eq!(progress.longest_streak, 3);
        assert_eq!(progress.studied, Duration::hours(13));
        assert!(progress.had_partner && progress.joined_any && !progress.hosted_any);
        assert_eq!(
            progress.earned(),
            ["first-session", "first-partner", "hours-10", "streak-3"]
        );
    }

    #[test]
    fn cancelled_sessions_do_not_count() {
        let me = uuid::Uuid::now_v7();
        let mut s = session(me, Utc::now() - Duration::days(1), 20, 3);
        s.status = "cancelled".into();
        let progress = Progress::from_sessions(me, &[s], Utc::now(), chrono_tz::UTC);
        assert_eq!(progress.earned(), ["host"]);
    }
}
