//! Study insights computed from a user's real sessions, without any model.
//!
//! [`progress_analysis`] summarises hours, streaks, attendance and the
//! weekly trend; [`engagement_prediction`] turns the same signals into a
//! deterministic "still active next week" score. Both are pure functions of
//! an [`Activity`], so they are cheap, testable and explainable. When an AI
//! provider is configured, [`summary_prompt`] asks it for a short friendly
//! write-up of the reports.
//!
//! Conventions shared by both reports:
//! - Only sessions that have started (`starts_at <= now`) count; a session
//!   still running counts up to `now`.
//! - Hours come from *attended* sessions only, clipped to each window.
//! - Weeks are rolling 7-day windows ending at `now` (so "this week" is the
//!   last 7 days, the same for every timezone).
//! - The trend is fitted only over the weeks since the first joined session
//!   (3 to 8 of them; flat with less history), so newcomers are not
//!   "improving" just because they had no sessions before signing up.
//! - Study *days* (for streaks) are calendar days in the user's timezone,
//!   taken from each attended session's start, matching how achievements
//!   count streaks.

mod engagement;
mod progress;
mod prompt;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

pub use engagement::{
    EngagementReport, EngagementSignals, LOW_RISK_FROM, MEDIUM_RISK_FROM, Risk,
    engagement_prediction,
};
pub use progress::{ProgressReport, TREND_THRESHOLD, TrendLabel, progress_analysis};
pub use prompt::summary_prompt;

/// How many weeks the weekly series and the trend cover.
pub const TREND_WEEKS: usize = 8;
/// The fewest weeks of history (since the first joined session) a trend
/// is computed from; with less, the trend is flat.
pub const MIN_TREND_WEEKS: usize = 3;

/// Everything the insights look at for one user.
#[derive(Clone, Debug)]
pub struct Activity {
    /// The moment of analysis; sessions starting later are ignored.
    pub now: DateTime<Utc>,
    /// The user's timezone, which decides where one study day ends.
    pub timezone: Tz,
    /// The study sessions the user joined, in any order.
    pub sessions: Vec<Attendance>,
}

/// One study session the user joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attendance {
    /// When the session started.
    pub starts_at: DateTime<Utc>,
    /// When it ended (or is planned to end).
    pub ends_at: DateTime<Utc>,
    /// Whether the user actually took part; `false` is a no-show.
    pub attended: bool,
}

impl Activity {
    /// Joined sessions that have started by `now`.
    fn started(&self) -> impl Iterator<Item = &Attendance> {
        self.sessions.iter().filter(|s| s.starts_at <= self.now)
    }

    /// Started sessions the user attended.
    fn attended(&self) -> impl Iterator<Item = &Attendance> {
        self.started().filter(|s| s.attended)
    }

    /// Hours of attended study inside `[from, to)`, never past `now`.
    fn hours_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let to = to.min(self.now);
        self.attended()
            .map(|s| {
                let overlap = s.ends_at.min(to) - s.starts_at.max(from);
                overlap.num_seconds().max(0) as f64 / 3600.0
            })
            .sum()
    }

    /// Hours in the last `days` days.
    fn hours_last_days(&self, days: i64) -> f64 {
        self.hours_between(self.now - Duration::days(days), self.now)
    }

    /// Hours per rolling week for the last [`TREND_WEEKS`] weeks, oldest
    /// first; the last entry is the last 7 days.
    fn weekly_hours(&self) -> Vec<f64> {
        (0..TREND_WEEKS as i64)
            .rev()
            .map(|ago| {
                let to = self.now - Duration::weeks(ago);
                self.hours_between(to - Duration::weeks(1), to)
            })
            .collect()
    }

    /// Least-squares slope of the weekly hours, in h/week per week, over
    /// the weeks since the user's first joined session (at most
    /// [`TREND_WEEKS`]): weeks before someone signed up are not "zero
    /// effort", so they must not make every newcomer look improving. With
    /// fewer than [`MIN_TREND_WEEKS`] weeks of history the slope is 0.
    fn trend_slope(&self) -> f64 {
        let Some(first) = self.started().map(|s| s.starts_at).min() else {
            return 0.0;
        };
        let weeks = ((self.now - first).num_weeks() + 1).min(TREND_WEEKS as i64) as usize;
        if weeks < MIN_TREND_WEEKS {
            return 0.0;
        }
        let weekly = self.weekly_hours();
        slope(&weekly[weekly.len() - weeks..])
    }

    /// (joined, attended) among started sessions.
    fn attendance_counts(&self) -> (u32, u32) {
        self.started().fold((0, 0), |(joined, attended), s| {
            (joined + 1, attended + u32::from(s.attended))
        })
    }

    /// Attended / joined, or `None` when nothing was joined yet.
    fn attendance_rate(&self) -> Option<f64> {
        let (joined, attended) = self.attendance_counts();
        (joined > 0).then(|| f64::from(attended) / f64::from(joined))
    }

    /// (current, longest) runs of consecutive local study days. The current
    /// streak is still alive when the last study day was today or yesterday.
    fn streaks(&self) -> (u32, u32) {
        let days: BTreeSet<NaiveDate> = self
            .attended()
            .map(|s| s.starts_at.with_timezone(&self.timezone).date_naive())
            .collect();
        let (mut longest, mut run, mut previous) = (0, 0, None::<NaiveDate>);
        for &day in &days {
            run = match previous {
                Some(p) if p.succ_opt() == Some(day) => run + 1,
                _ => 1,
            };
            longest = longest.max(run);
            previous = Some(day);
        }
        let today = self.now.with_timezone(&self.timezone).date_naive();
        let alive = previous.is_some_and(|last| last == today || last.succ_opt() == Some(today));
        (if alive { run } else { 0 }, longest)
    }
}

/// Least-squares slope of `ys` against 0, 1, 2, …; 0 for fewer than 2 points.
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den
}

/// `x` rounded to two decimals, for reports meant to be read.
fn round2(x: f64) -> f64 {
    // `+ 0.0` turns a rounded -0.0 into 0.0, which JSON clients compare as 0.
    (x * 100.0).round() / 100.0 + 0.0
}

/// "6.5 h", "4 h": one decimal, without a trailing ".0".
fn fmt_hours(hours: f64) -> String {
    let text = format!("{hours:.1}");
    format!("{} h", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn rounding_never_yields_negative_zero() {
        // JSON clients compare -0 and 0 as different values.
        assert!(round2(-0.001).is_sign_positive());
        assert_eq!(round2(1.234), 1.23);
    }

    /// A fixed "now": Wednesday 2025-03-12 18:00 UTC.
    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-12T18:00:00Z")
            .expect("valid test timestamp")
            .with_timezone(&Utc)
    }

    /// An attended session starting at 12:00 UTC `days_ago` days before
    /// `now()` (so up to 6 hours stay inside that day and before `now`).
    pub(crate) fn studied(days_ago: i64, hours: f64) -> Attendance {
        let starts_at = now() - Duration::days(days_ago) - Duration::hours(6);
        Attendance {
            starts_at,
            ends_at: starts_at + Duration::seconds((hours * 3600.0) as i64),
            attended: true,
        }
    }

    /// A no-show `days_ago` days before `now()`.
    pub(crate) fn missed(days_ago: i64) -> Attendance {
        Attendance {
            attended: false,
            ..studied(days_ago, 1.0)
        }
    }

    pub(crate) fn activity(sessions: Vec<Attendance>) -> Activity {
        Activity {
            now: now(),
            timezone: chrono_tz::UTC,
            sessions,
        }
    }

    #[test]
    fn slope_fits_a_line() {
        assert!((slope(&[1.0, 2.0, 3.0, 4.0]) - 1.0).abs() < 1e-9);
        assert!((slope(&[6.0, 4.0, 2.0]) + 2.0).abs() < 1e-9);
        assert_eq!(slope(&[5.0]), 0.0);
    }

    #[test]
    fn weeks_before_the_first_session_do_not_make_a_trend() {
        // Two weeks on the platform: too little history for a trend.
        let newcomer = activity(vec![studied(1, 3.0), studied(8, 1.0)]);
        assert!(newcomer.weekly_hours()[6] > 0.0);
        assert_eq!(newcomer.trend_slope(), 0.0);
        // Back after five idle weeks: those zeros are real, the trend counts them.
        let returning = activity(vec![studied(50, 6.0), studied(43, 6.0), studied(1, 1.0)]);
        let expected = slope(&[6.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!((returning.trend_slope() - expected).abs() < 1e-9);
        assert!(expected < 0.0);
    }

    #[test]
    fn hours_are_formatted_compactly() {
        assert_eq!(fmt_hours(6.5), "6.5 h");
        assert_eq!(fmt_hours(4.0), "4 h");
        assert_eq!(fmt_hours(0.04), "0 h");
    }

    #[test]
    fn streak_days_follow_the_users_timezone() {
        // 2025-03-11 23:30 UTC and 2025-03-12 01:00 UTC are two UTC days but
        // one Tokyo day (08:30 and 10:00 on 2025-03-12, UTC+9).
        let late = now() - Duration::hours(18) - Duration::minutes(30);
        let early = late + Duration::minutes(90);
        let session = |at: DateTime<Utc>| Attendance {
            starts_at: at,
            ends_at: at + Duration::hours(1),
            attended: true,
        };
        let mut activity = activity(vec![session(late), session(early)]);
        activity.timezone = chrono_tz::UTC;
        assert_eq!(activity.streaks().1, 2, "two UTC days");
        activity.timezone = chrono_tz::Asia::Tokyo;
        assert_eq!(activity.streaks().1, 1, "one Tokyo day");
    }
}
