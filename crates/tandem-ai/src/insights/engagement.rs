//! Engagement prediction: how likely a user is to study again next week.
//!
//! A hand-tuned logistic model over four signals, deterministic and
//! explainable (no training data exists yet; the weights are a documented
//! starting point to recalibrate once outcomes are recorded):
//!
//! ```text
//! z = −0.5 + recency + frequency + trend + attendance
//! recency    = 2.5 − 0.25 · min(days since last attended session, 28)
//!              (never attended: 28 days)         → +2.5 … −4.5
//! frequency  = 0.9 · ln(1 + sessions attended in the last 28 days) − 1.0
//!                                                → −1.0 at 0, +1.0 at ~8
//! trend      = 0.8 · clamp(weekly-hours slope, −2, 2)   → −1.6 … +1.6
//!              (the progress report's trend slope)
//! attendance = 2.0 · (attended / joined − 0.75)  (nothing joined: 0)
//! score      = 1 / (1 + e^−z)
//! ```
//!
//! Each term is near zero for an "ordinary" user (studied about ten days
//! ago, a few sessions a month, flat trend, shows up three times in four),
//! so a term's sign says whether it helps or hurts. Risk is `low` from a
//! score of 0.7, `medium` from 0.4, `high` below.

use serde::Serialize;

use super::{Activity, round2};

/// Score at or above which risk is low.
pub const LOW_RISK_FROM: f64 = 0.7;
/// Score at or above which risk is medium (below: high).
pub const MEDIUM_RISK_FROM: f64 = 0.4;

/// How likely a user is to drop off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Likely to stay active.
    Low,
    /// Could go either way.
    Medium,
    /// Likely to drop off without a nudge.
    High,
}

impl Risk {
    /// The risk band for a score.
    pub fn from_score(score: f64) -> Self {
        if score >= LOW_RISK_FROM {
            Self::Low
        } else if score >= MEDIUM_RISK_FROM {
            Self::Medium
        } else {
            Self::High
        }
    }
}

/// The inputs the score was computed from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngagementSignals {
    /// Days since the last attended session ended; `None` if never.
    pub days_since_last_session: Option<f64>,
    /// Attended sessions that started in the last 28 days.
    pub sessions_last_28_days: u32,
    /// Slope of the weekly totals since the first joined session (at most
    /// 8 weeks), h/week per week.
    pub trend_slope: f64,
    /// Attended / joined; `None` before the first session.
    pub attendance_rate: Option<f64>,
}

/// The prediction, its band and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngagementReport {
    /// Probability-like chance (0..1) of being active next week.
    pub score: f64,
    /// The score's band.
    pub risk: Risk,
    /// Up to three signals that moved the score most, in words.
    pub top_factors: Vec<String>,
    /// The raw signals.
    pub signals: EngagementSignals,
}

/// Predicts next-week engagement from `activity`; see the module docs.
pub fn engagement_prediction(activity: &Activity) -> EngagementReport {
    let signals = signals(activity);
    let terms = terms(&signals);
    let z = -0.5 + terms.iter().map(|(impact, _)| impact).sum::<f64>();
    let score = 1.0 / (1.0 + (-z).exp());
    let mut ranked: Vec<_> = terms
        .into_iter()
        .filter(|(impact, _)| impact.abs() >= 0.05)
        .collect();
    ranked.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    let top_factors = ranked
        .into_iter()
        .take(3)
        .map(|(impact, text)| {
            let effect = if impact > 0.0 { "raises" } else { "lowers" };
            format!("{text} ({effect} the chance of staying active)")
        })
        .collect();
    EngagementReport {
        score: (score * 1000.0).round() / 1000.0,
        risk: Risk::from_score(score),
        top_factors,
        signals: EngagementSignals {
            days_since_last_session: signals.days_since_last_session.map(round2),
            trend_slope: round2(signals.trend_slope),
            attendance_rate: signals.attendance_rate.map(round2),
            ..signals
        },
    }
}

/// The model's inputs, unrounded.
fn signals(activity: &Activity) -> EngagementSignals {
    let now = activity.now;
    let last_end = activity.attended().map(|s| s.ends_at.min(now)).max();
    let month_ago = now - chrono::Duration::days(28);
    EngagementSignals {
        days_since_last_session: last_end
            .map(|end| (now - end).num_seconds().max(0) as f64 / 86_400.0),
        sessions_last_28_days: activity
            .attended()
            .filter(|s| s.starts_at > month_ago)
            .count() as u32,
        trend_slope: activity.trend_slope(),
        attendance_rate: activity.attendance_rate(),
    }
}

/// Each signal's contribution to the logit, with its description.
fn terms(s: &EngagementSignals) -> [(f64, String); 4] {
    let days = s.days_since_last_session.unwrap_or(28.0).min(28.0);
    let recency = match s.days_since_last_session {
        None => "No attended sessions yet".to_owned(),
        Some(d) if d < 1.0 => "Last studied less than a day ago".to_owned(),
        Some(d) => format!("Last studied {} ago", plural(d.floor() as u64, "day")),
    };
    let n = s.sessions_last_28_days;
    let slope = s.trend_slope;
    let trend = if slope >= 0.0 {
        format!("Weekly study time rising by {slope:.1} h per week")
    } else {
        format!("Weekly study time falling by {:.1} h per week", -slope)
    };
    let (attendance_impact, attendance) = match s.attendance_rate {
        Some(rate) => (
            2.0 * (rate - 0.75),
            format!("Attended {:.0}% of the sessions joined", rate * 100.0),
        ),
        None => (0.0, "No sessions joined yet".to_owned()),
    };
    [
        (2.5 - 0.25 * days, recency),
        (
            0.9 * f64::from(n).ln_1p() - 1.0,
            format!("{} in the last 28 days", plural(u64::from(n), "session")),
        ),
        (0.8 * slope.clamp(-2.0, 2.0), trend),
        (attendance_impact, attendance),
    ]
}

/// "1 day", "3 days".
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{activity, missed, studied};
    use super::*;

    #[test]
    fn an_active_improving_user_outscores_one_gone_for_three_weeks() {
        // Rising: 1 h a week two months ago, several sessions a week lately.
        let mut active: Vec<_> = (0..8).map(|w| studied(7 * (7 - w) + 3, 1.0)).collect();
        active.extend([
            studied(1, 2.0),
            studied(2, 1.5),
            studied(4, 2.0),
            studied(9, 1.5),
        ]);
        let active = engagement_prediction(&activity(active));

        let gone = vec![
            studied(21, 2.0),
            studied(23, 2.0),
            studied(30, 2.0),
            missed(22),
        ];
        let gone = engagement_prediction(&activity(gone));

        assert!(active.score > gone.score, "{active:?} vs {gone:?}");
        assert_eq!(active.risk, Risk::Low);
        assert_eq!(gone.risk, Risk::High);
        assert!(active.signals.trend_slope > 0.0);
        assert_eq!(
            gone.signals.days_since_last_session.map(f64::floor),
            Some(21.0)
        );
        assert!(
            gone.top_factors[0].starts_with("Last studied 21 days ago (lowers"),
            "{:?}",
            gone.top_factors
        );
    }

    #[test]
    fn the_score_is_deterministic_and_bounded() {
        let sessions = vec![studied(3, 1.0), studied(10, 1.0), missed(5)];
        let a = engagement_prediction(&activity(sessions.clone()));
        let b = engagement_prediction(&activity(sessions));
        assert_eq!(a, b);
        assert!((0.0..=1.0).contains(&a.score));
        assert_eq!(a.signals.sessions_last_28_days, 2);
        assert_eq!(a.signals.attendance_rate, Some(0.67));
        assert!(a.top_factors.len() <= 3);
    }

    #[test]
    fn a_newcomer_is_high_risk_with_an_honest_reason() {
        let report = engagement_prediction(&activity(Vec::new()));
        assert_eq!(report.risk, Risk::High);
        assert_eq!(report.signals.days_since_last_session, None);
        assert!(report.top_factors[0].starts_with("No attended sessions yet"));
    }

    #[test]
    fn risk_bands_follow_the_documented_thresholds() {
        assert_eq!(Risk::from_score(0.7), Risk::Low);
        assert_eq!(Risk::from_score(0.69), Risk::Medium);
        assert_eq!(Risk::from_score(0.4), Risk::Medium);
        assert_eq!(Risk::from_score(0.39), Risk::High);
    }
}
