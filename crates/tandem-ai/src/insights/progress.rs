//! The progress report: how much, how regularly and in which direction a
//! user has been studying, plus a few plain-language highlights.
//!
//! The trend is the least-squares slope of the weekly totals (the last
//! eight weeks, or fewer since the first joined session), in hours per
//! week, per week. It is labelled `improving` at +0.25 or more,
//! `declining` at −0.25 or less, `steady` in between: ±0.25 h/week each
//! week adds up to about ±1.75 h/week across the eight weeks, roughly one
//! extra or missing session, which is the smallest change worth mentioning.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Activity, fmt_hours, round2};

/// The slope (h/week per week) at which the trend stops being `steady`.
pub const TREND_THRESHOLD: f64 = 0.25;

/// The direction of weekly study time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendLabel {
    /// Rising by at least [`TREND_THRESHOLD`] h/week each week.
    Improving,
    /// Changing by less than [`TREND_THRESHOLD`] either way.
    Steady,
    /// Falling by at least [`TREND_THRESHOLD`] h/week each week.
    Declining,
}

impl TrendLabel {
    /// The label for a weekly-hours slope.
    pub fn from_slope(slope: f64) -> Self {
        if slope >= TREND_THRESHOLD {
            Self::Improving
        } else if slope <= -TREND_THRESHOLD {
            Self::Declining
        } else {
            Self::Steady
        }
    }
}

/// What a user has achieved and how it is going. Hours are rounded to two
/// decimals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    /// Hours of attended study, ever.
    pub total_hours: f64,
    /// Hours in the last 7 days.
    pub hours_last_7_days: f64,
    /// Hours in the last 28 days.
    pub hours_last_28_days: f64,
    /// Hours per rolling week for the last 8 weeks, oldest first.
    pub weekly_hours: Vec<f64>,
    /// Consecutive local study days up to today (or yesterday).
    pub current_streak_days: u32,
    /// The longest run of consecutive local study days.
    pub longest_streak_days: u32,
    /// Sessions joined that have started.
    pub sessions_joined: u32,
    /// Of those, sessions actually attended.
    pub sessions_attended: u32,
    /// Attended / joined; `None` before the first session.
    pub attendance_rate: Option<f64>,
    /// Least-squares slope of `weekly_hours` since the first joined
    /// session, in h/week per week (0 with under 3 weeks of history).
    pub trend_slope: f64,
    /// The slope in words.
    pub trend: TrendLabel,
    /// Short sentences worth showing the user.
    pub highlights: Vec<String>,
}

/// Analyses `activity`; see the module docs for the definitions.
pub fn progress_analysis(activity: &Activity) -> ProgressReport {
    let weekly = activity.weekly_hours();
    let trend_slope = activity.trend_slope();
    let (current, longest) = activity.streaks();
    let (joined, attended) = activity.attendance_counts();
    let mut report = ProgressReport {
        total_hours: round2(activity.hours_between(DateTime::<Utc>::MIN_UTC, activity.now)),
        hours_last_7_days: round2(activity.hours_last_days(7)),
        hours_last_28_days: round2(activity.hours_last_days(28)),
        weekly_hours: weekly.iter().copied().map(round2).collect(),
        current_streak_days: current,
        longest_streak_days: longest,
        sessions_joined: joined,
        sessions_attended: attended,
        attendance_rate: activity.attendance_rate().map(round2),
        trend_slope: round2(trend_slope),
        trend: TrendLabel::from_slope(trend_slope),
        highlights: Vec::new(),
    };
    report.highlights = highlights(&report);
    report
}

/// Up to four short sentences about the report, most useful first.
fn highlights(r: &ProgressReport) -> Vec<String> {
    if r.sessions_joined == 0 {
        return vec!["No study sessions yet: join one to get started.".to_owned()];
    }
    let trend = match r.trend {
        TrendLabel::Improving => {
            Some("Your weekly study time has been rising over the last 8 weeks.")
        }
        TrendLabel::Declining => {
            Some("Your weekly study time has been falling over the last 8 weeks.")
        }
        TrendLabel::Steady => None,
    };
    let mut out: Vec<String> = [
        week_highlight(r),
        streak_highlight(r),
        trend.map(str::to_owned),
        attendance_highlight(r),
    ]
    .into_iter()
    .flatten()
    .collect();
    if out.is_empty() {
        out.push(format!(
            "You have studied {} in total.",
            fmt_hours(r.total_hours)
        ));
    }
    out
}

/// This week against the week before.
fn week_highlight(r: &ProgressReport) -> Option<String> {
    let this_week = r.hours_last_7_days;
    let last_week = r.weekly_hours.iter().rev().nth(1).copied().unwrap_or(0.0);
    let (now, before) = (fmt_hours(this_week), fmt_hours(last_week));
    if this_week == 0.0 && last_week == 0.0 {
        return None;
    }
    Some(if this_week == 0.0 {
        format!("No study this week yet, after {before} the week before.")
    } else if this_week > last_week {
        format!("You studied {now} this week, up from {before}.")
    } else if this_week < last_week {
        format!("You studied {now} this week, down from {before}.")
    } else {
        format!("You studied {now} this week, the same as the week before.")
    })
}

/// The running streak, or the best one when none is running.
fn streak_highlight(r: &ProgressReport) -> Option<String> {
    let (current, longest) = (r.current_streak_days, r.longest_streak_days);
    if current >= 2 {
        let best = if current == longest {
            ", your longest yet"
        } else {
            ""
        };
        Some(format!("You are on a {current}-day study streak{best}."))
    } else if longest >= 3 {
        Some(format!(
            "Your best streak so far is {longest} days in a row."
        ))
    } else {
        None
    }
}

/// Praise for reliable attendance, a nudge for poor attendance.
fn attendance_highlight(r: &ProgressReport) -> Option<String> {
    let (attended, joined) = (r.sessions_attended, r.sessions_joined);
    match r.attendance_rate {
        _ if joined < 3 => None,
        Some(rate) if rate >= 0.9 => Some(format!(
            "You showed up to {attended} of the {joined} sessions you joined."
        )),
        Some(rate) if rate < 0.7 => Some(format!(
            "You attended {attended} of the {joined} sessions you joined; \
             showing up is half the work."
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::tests::{activity, missed, studied};
    use super::*;

    #[test]
    fn hours_streaks_and_attendance_add_up() {
        let report = progress_analysis(&activity(vec![
            studied(0, 1.5), // today
            studied(1, 2.0),
            studied(2, 1.0),
            // day 3: nothing, which breaks the streak
            studied(4, 1.0),
            studied(5, 1.0),
            studied(6, 1.0),
            studied(7, 0.5),
            studied(20, 3.0),
            studied(40, 2.0),
            missed(8),
            missed(9),
        ]));
        assert_eq!(report.total_hours, 13.0);
        assert_eq!(report.hours_last_7_days, 7.5, "days 0..=6");
        assert_eq!(report.hours_last_28_days, 11.0);
        assert_eq!(report.weekly_hours.len(), 8);
        assert_eq!(report.weekly_hours[7], 7.5);
        assert_eq!(report.weekly_hours[6], 0.5);
        assert_eq!(report.weekly_hours.iter().sum::<f64>(), 13.0);
        assert_eq!(
            report.current_streak_days, 3,
            "today, yesterday, two days ago"
        );
        assert_eq!(report.longest_streak_days, 4, "days 4 to 7");
        assert_eq!((report.sessions_joined, report.sessions_attended), (11, 9));
        assert_eq!(report.attendance_rate, Some(0.82));
        assert!(
            report.highlights[0].contains("7.5 h this week, up from 0.5 h"),
            "{:?}",
            report.highlights
        );
    }

    #[test]
    fn a_session_in_progress_counts_only_up_to_now() {
        let now = super::super::tests::now();
        let running = super::super::Attendance {
            starts_at: now - Duration::minutes(30),
            ends_at: now + Duration::hours(2),
            attended: true,
        };
        let future = studied(-1, 2.0);
        let report = progress_analysis(&activity(vec![running, future]));
        assert_eq!(report.total_hours, 0.5);
        assert_eq!(report.sessions_joined, 1, "future sessions do not count");
    }

    #[test]
    fn a_streak_survives_until_the_end_of_the_next_day_only() {
        let yesterday = progress_analysis(&activity(vec![studied(1, 1.0), studied(2, 1.0)]));
        assert_eq!(yesterday.current_streak_days, 2);
        let stale = progress_analysis(&activity(vec![studied(2, 1.0), studied(3, 1.0)]));
        assert_eq!(stale.current_streak_days, 0);
        assert_eq!(stale.longest_streak_days, 2);
    }

    #[test]
    fn rising_and_falling_weeks_get_the_right_label() {
        // One session per week, week w (0 = oldest) lasting w + 1 hours.
        let rising: Vec<_> = (0..8)
            .map(|w| studied(7 * (7 - w) + 1, (w + 1) as f64))
            .collect();
        let report = progress_analysis(&activity(rising));
        assert_eq!(
            report.weekly_hours,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
        );
        assert_eq!(report.trend_slope, 1.0);
        assert_eq!(report.trend, TrendLabel::Improving);

        let falling: Vec<_> = (0..8)
            .map(|w| studied(7 * (7 - w) + 1, (8 - w) as f64))
            .collect();
        let report = progress_analysis(&activity(falling));
        assert_eq!(report.trend_slope, -1.0);
        assert_eq!(report.trend, TrendLabel::Declining);

        let steady: Vec<_> = (0..8).map(|w| studied(7 * (7 - w) + 1, 2.0)).collect();
        assert_eq!(
            progress_analysis(&activity(steady)).trend,
            TrendLabel::Steady
        );
    }

    #[test]
    fn highlights_speak_plainly() {
        let report = progress_analysis(&activity(vec![
            studied(1, 1.0),
            studied(2, 1.0),
            studied(3, 1.0),
            studied(8, 4.0),
            missed(9),
            missed(10),
        ]));
        assert_eq!(
            report.highlights,
            vec![
                "You studied 3 h this week, down from 4 h.",
                "You are on a 3-day study streak, your longest yet.",
                "You attended 4 of the 6 sessions you joined; showing up is half the work.",
            ]
        );
        let idle = progress_analysis(&activity(vec![studied(9, 2.5)]));
        assert_eq!(
            idle.highlights[0],
            "No study this week yet, after 2.5 h the week before."
        );
    }

    #[test]
    fn nobody_gets_a_friendly_start_and_no_rate() {
        let report = progress_analysis(&activity(Vec::new()));
        assert_eq!(report.attendance_rate, None);
        assert_eq!(report.total_hours, 0.0);
        assert_eq!(report.trend, TrendLabel::Steady);
        assert_eq!(report.highlights.len(), 1);
    }

    #[test]
    fn the_report_serializes_in_camel_case() {
        let json = serde_json::to_value(progress_analysis(&activity(vec![studied(1, 1.0)])))
            .expect("report serializes");
        assert_eq!(json["hoursLast7Days"], 1.0);
        assert_eq!(json["trend"], "steady");
        assert!(json["attendanceRate"].is_number());
    }
}
