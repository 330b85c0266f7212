//! Achievement rules, evaluated from a user's real study sessions. Each rule
//! also says *when* it was met, so an achievement noticed late still shows
//! the moment it was earned.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use tandem_db::{Room, RoomStatus};
use uuid::Uuid;

/// Hours-studied milestones: (achievement id, hours).
const HOURS: [(&str, i64); 2] = [("hours-10", 10), ("hours-50", 50)];
/// Streak milestones: (achievement id, consecutive days).
const STREAKS: [(&str, u32); 2] = [("streak-3", 3), ("streak-7", 7)];

/// The achievements `user` has earned from `sessions` by `now`, each with the
/// moment it was earned. Only sessions that were not cancelled count, and
/// only once they have started; days are counted in the user's timezone.
pub fn earned(
    user: Uuid,
    sessions: &[Room],
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<(&'static str, DateTime<Utc>)> {
    let mut started: Vec<&Room> = sessions
        .iter()
        .filter(|s| s.status == RoomStatus::Scheduled && s.starts_at <= now)
        .collect();
    started.sort_by_key(|s| s.starts_at);
    let mut earned = Vec::new();
    let mut first = |id, at: Option<DateTime<Utc>>| {
        if let Some(at) = at {
            earned.push((id, at));
        }
    };
    first("first-session", started.first().map(|s| s.starts_at));
    first(
        "host",
        started
            .iter()
            .find(|s| s.owner_id == user)
            .map(|s| s.starts_at),
    );
    first(
        "first-partner",
        started
            .iter()
            .find(|s| s.member_count >= 2)
            .map(|s| s.starts_at),
    );
    for (id, hours) in HOURS {
        first(
            id,
            when_hours_reached(&started, Duration::hours(hours), now),
        );
    }
    for (id, days) in STREAKS {
        first(id, when_streak_reached(&started, days, tz));
    }
    earned
}

/// When the time spent in `started` (sorted) first reached `goal`.
fn when_hours_reached(
    started: &[&Room],
    goal: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut total = Duration::zero();
    for s in started {
        let length = s.ends_at.min(now) - s.starts_at;
        if total + length >= goal {
            return Some(s.starts_at + (goal - total));
        }
        total += length;
    }
    None
}

/// When `started` (sorted) first covered `days` consecutive local days.
fn when_streak_reached(started: &[&Room], days: u32, tz: Tz) -> Option<DateTime<Utc>> {
    let mut first_on_day: BTreeMap<NaiveDate, DateTime<Utc>> = BTreeMap::new();
    for s in started {
        first_on_day
            .entry(s.starts_at.with_timezone(&tz).date_naive())
            .or_insert(s.starts_at);
    }
    let (mut run, mut previous) = (0, None::<NaiveDate>);
    for (day, at) in first_on_day {
        run = match previous {
            Some(p) if p.succ_opt() == Some(day) => run + 1,
            _ => 1,
        };
        if run >= days {
            return Some(at);
        }
        previous = Some(day);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(owner: Uuid, start: DateTime<Utc>, hours: i64, members: i64) -> Room {
        Room {
            id: Uuid::now_v7(),
            owner_id: owner,
            title: "t".into(),
            subject: "s".into(),
            description: String::new(),
            starts_at: start,
            ends_at: start + Duration::hours(hours),
            capacity: 4,
            status: RoomStatus::Scheduled,
            member_count: members,
            created_at: start,
        }
    }

    #[test]
    fn milestones_are_dated_when_they_were_reached() {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let day = |n: i64| now - Duration::days(n);
        let sessions = vec![
            session(other, day(5), 4, 2),
            session(other, day(4), 4, 1),
            session(other, day(3), 4, 1),
            session(other, day(1), 1, 1),
            session(me, now + Duration::days(1), 8, 1), // not started: counts for nothing yet
        ];
        let got = earned(me, &sessions, now, chrono_tz::UTC);
        assert_eq!(
            got,
            [
                ("first-session", day(5)),
                ("first-partner", day(5)),
                ("hours-10", day(3) + Duration::hours(2)),
                ("streak-3", day(3)),
            ]
        );
    }

    #[test]
    fn cancelled_and_future_sessions_do_not_count() {
        let me = Uuid::now_v7();
        let mut cancelled = session(me, Utc::now() - Duration::days(1), 20, 3);
        cancelled.status = RoomStatus::Cancelled;
        let future = session(me, Utc::now() + Duration::hours(1), 2, 2);
        assert!(earned(me, &[cancelled, future], Utc::now(), chrono_tz::UTC).is_empty());
    }

    #[test]
    fn streak_days_follow_the_users_timezone() {
        let me = Uuid::now_v7();
        // 23:30 UTC on three consecutive days is the next morning in Tokyo:
        // still three consecutive days, just shifted.
        let base =
            DateTime::parse_from_rfc3339("2026-03-01T23:30:00Z").map(|d| d.with_timezone(&Utc));
        let base = base.expect("valid date");
        let sessions: Vec<_> = (0..3)
            .map(|d| session(me, base + Duration::days(d), 1, 1))
            .collect();
        let got = earned(
            me,
            &sessions,
            base + Duration::days(5),
            chrono_tz::Asia::Tokyo,
        );
        assert!(got.iter().any(|(id, _)| *id == "streak-3"));
    }
}
