//! `rank`: the public entry point that turns features into partner matches.
//!
//! One pass over the candidates computes numeric scores only; strings
//! (subject names, reasons) are produced for the final few results.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::availability::slots_to_hours;
use crate::features::Features;
use crate::goals::goal_similarity;
use crate::prefs::Preferences;
use crate::score::{Seeker, same_known};
use crate::select::{POOL_FACTOR, Pool, Scored, diversify};
use crate::subjects::SubjectIndex;

/// Goal similarity from which "similar goals" is listed as a reason.
const SIMILAR_GOALS: f32 = 0.3;

/// One recommended study partner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// The candidate's user id.
    pub id: Uuid,
    /// Relevance in `0..=1` (before the diversity adjustment, so results are
    /// in recommendation order, which need not be strictly by score).
    pub score: f32,
    /// Normalized names of the subjects searched for that the candidate has.
    pub shared_subjects: Vec<String>,
    /// Weekly hours both are free at the same time.
    pub overlap_hours: f32,
    /// Short human-readable explanations, e.g. "2 shared subjects".
    pub reasons: Vec<String>,
}

/// Best study partners for `me` among `candidates`, at most
/// `prefs.effective_limit()` of them, in recommendation order.
///
/// Relevance is `0.4·subjects + 0.3·availability + 0.1·level + 0.1·style +
/// 0.1·goals` (see the `WEIGHT_*` constants). The best `POOL_FACTOR × limit`
/// (at most `limit` per distinct set of shared subjects) are then re-ranked
/// for diversity with penalty
/// [`DIVERSITY_LAMBDA`](crate::DIVERSITY_LAMBDA) on subject similarity to
/// results already chosen.
///
/// Never returns `me.id` or anyone in `excluded` (blocked users, existing
/// partners). Candidates sharing no searched subject, or with less weekly
/// overlap than `prefs.min_overlap_hours`, are not matches. All features must
/// come from the same `index`.
pub fn rank(
    me: &Features,
    candidates: &[Features],
    excluded: &HashSet<Uuid>,
    prefs: &Preferences,
    index: &SubjectIndex,
) -> Vec<Match> {
    let Some(seeker) = Seeker::new(me, prefs, index) else {
        return Vec::new();
    };
    let limit = prefs.effective_limit();
    let mut pool = Pool::new(seeker.mask, limit);
    for (i, c) in candidates.iter().enumerate() {
        let shared = seeker.mask & c.subjects;
        let Some(score) = seeker.score(c, shared) else {
            continue;
        };
        let group = pool.group_of(shared);
        // Exclusions are hashed lookups: only pay for them when the
        // candidate could actually enter the pool.
        if score < pool.floor(group) || c.id == me.id || excluded.contains(&c.id) {
            continue;
        }
        let entry = Scored {
            score,
            id: c.id,
            index: i,
            shared,
        };
        pool.offer(group, entry);
    }
    diversify(pool.into_best(limit * POOL_FACTOR), limit)
        .into_iter()
        .map(|s| describe(&seeker, &candidates[s.index], s, index))
        .collect()
}

/// Builds the human-facing [`Match`] for one selected candidate.
fn describe(seeker: &Seeker<'_>, c: &Features, s: Scored, index: &SubjectIndex) -> Match {
    let mut shared_subjects: Vec<String> = (0..128u8)
        .filter(|&bit| s.shared & (1u128 << bit) != 0)
        .filter_map(|bit| index.name(bit).map(str::to_owned))
        .collect();
    shared_subjects.sort_unstable();
    let slots = seeker.me.slots.overlap_slots(&c.slots);
    let overlap_hours = slots_to_hours(slots);

    let mut reasons = Vec::with_capacity(5);
    let n = s.shared.count_ones();
    reasons.push(match n {
        1 => "1 shared subject".to_owned(),
        n => format!("{n} shared subjects"),
    });
    if slots > 0 {
        reasons.push(format!("{} h/week overlap", format_hours(slots)));
    }
    if same_known(seeker.me.level, c.level) {
        reasons.push("same level".to_owned());
    }
    if same_known(seeker.me.style, c.style) {
        reasons.push("same study style".to_owned());
    }
    if goal_similarity(seeker.me.goals, c.goals) >= SIMILAR_GOALS {
        reasons.push("similar goals".to_owned());
    }
    Match {
        id: c.id,
        score: s.score,
        shared_subjects,
        overlap_hours,
        reasons,
    }
}

/// Half-hour slot count as hours: "6" or "6.5".
fn format_hours(slots: u32) -> String {
    if slots.is_multiple_of(2) {
        format!("{}", slots / 2)
    } else {
        format!("{}.5", slots / 2)
    }
}
