//! Relevance of one candidate to the seeker, from precomputed features only.
//!
//! score = 0.4·subjects + 0.3·availability + 0.1·level + 0.1·style + 0.1·goals,
//! every component in `0..=1`, so the score is in `0..=1` too:
//!
//! - **subjects**: |mine ∩ theirs| / |mine|. Zero shared subjects is not a
//!   match at all (the candidate is dropped, not scored 0.6).
//! - **availability**: shared hours per week / 6, capped at 1. Candidates
//!   below the seeker's `min_overlap_hours` are dropped.
//! - **level**: same 1, adjacent 0.5, two apart 0, either unknown 0.5.
//! - **style**: same 1, Mixed with anything else 0.6, Quiet vs Discussion 0,
//!   either unknown 0.5.
//! - **goals**: Jaccard similarity of goal signatures.

use crate::availability::{SLOTS_PER_WEEK, slots_to_hours};
use crate::features::Features;
use crate::goals::goal_similarity;
use crate::prefs::Preferences;
use crate::subjects::SubjectIndex;

/// Weight of the shared-subject fraction.
pub const WEIGHT_SUBJECTS: f32 = 0.4;
/// Weight of the weekly availability overlap.
pub const WEIGHT_AVAILABILITY: f32 = 0.3;
/// Weight of level compatibility.
pub const WEIGHT_LEVEL: f32 = 0.1;
/// Weight of study-style compatibility.
pub const WEIGHT_STYLE: f32 = 0.1;
/// Weight of goal-keyword similarity.
pub const WEIGHT_GOALS: f32 = 0.1;
/// Weekly overlap (hours) at which the availability component saturates.
pub const SATURATION_HOURS: f32 = 6.0;

/// Level compatibility by code (0 unknown, 1 beginner, 2 intermediate, 3 advanced).
const LEVEL_TABLE: [[f32; 4]; 4] = [
    [0.5, 0.5, 0.5, 0.5],
    [0.5, 1.0, 0.5, 0.0],
    [0.5, 0.5, 1.0, 0.5],
    [0.5, 0.0, 0.5, 1.0],
];

/// Style compatibility by code (0 unknown, 1 quiet, 2 discussion, 3 mixed).
const STYLE_TABLE: [[f32; 4]; 4] = [
    [0.5, 0.5, 0.5, 0.5],
    [0.5, 1.0, 0.0, 0.6],
    [0.5, 0.0, 1.0, 0.6],
    [0.5, 0.6, 0.6, 1.0],
];

/// The seeker's side of scoring, prepared once per `rank` call.
#[derive(Debug, Clone)]
pub(crate) struct Seeker<'a> {
    pub(crate) me: &'a Features,
    /// Subjects searched for: the override from preferences, or my own.
    pub(crate) mask: u128,
    inv_subject_count: f32,
    pub(crate) min_slots: u32,
    level_row: [f32; 4],
    style_row: [f32; 4],
}

impl<'a> Seeker<'a> {
    /// Prepares scoring for `me`; `None` if there is no subject to match on.
    pub(crate) fn new(me: &'a Features, prefs: &Preferences, index: &SubjectIndex) -> Option<Self> {
        let mask = match prefs.normalized_subjects() {
            Some(subjects) => index.lookup_mask(&subjects),
            None => me.subjects,
        };
        if mask == 0 {
            return None;
        }
        Some(Self {
            me,
            mask,
            inv_subject_count: 1.0 / mask.count_ones() as f32,
            min_slots: prefs.min_overlap_slots().min(SLOTS_PER_WEEK as u32),
            level_row: LEVEL_TABLE[usize::from(me.level & 3)],
            style_row: STYLE_TABLE[usize::from(me.style & 3)],
        })
    }

    /// Relevance of `c` in `0..=1`, given the subjects it shares with the
    /// search (`self.mask & c.subjects`), or `None` if it is not a match (no
    /// shared subject, too little overlap). Exclusions are not checked.
    #[inline]
    pub(crate) fn score(&self, c: &Features, shared: u128) -> Option<f32> {
        if shared == 0 {
            return None;
        }
        let slots = self.me.slots.overlap_slots(&c.slots);
        if slots < self.min_slots {
            return None;
        }
        let availability = (slots_to_hours(slots) * (1.0 / SATURATION_HOURS)).min(1.0);
        let score = WEIGHT_SUBJECTS * shared.count_ones() as f32 * self.inv_subject_count
            + WEIGHT_AVAILABILITY * availability
            + WEIGHT_LEVEL * self.level_row[usize::from(c.level & 3)]
            + WEIGHT_STYLE * self.style_row[usize::from(c.style & 3)]
            + WEIGHT_GOALS * goal_similarity(self.me.goals, c.goals);
        Some(score.min(1.0))
    }
}

/// Whether two level or style codes are known and equal.
pub(crate) fn same_known(a: u8, b: u8) -> bool {
    a != 0 && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one() {
        let sum =
            WEIGHT_SUBJECTS + WEIGHT_AVAILABILITY + WEIGHT_LEVEL + WEIGHT_STYLE + WEIGHT_GOALS;
        assert!((sum - 1.0).abs() < 1e-6);
    }

    #[test]
    fn compatibility_tables_are_symmetric_and_follow_the_rules() {
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(LEVEL_TABLE[a][b], LEVEL_TABLE[b][a]);
                assert_eq!(STYLE_TABLE[a][b], STYLE_TABLE[b][a]);
            }
        }
        assert_eq!(LEVEL_TABLE[1][3], 0.0, "beginner vs advanced");
        assert_eq!(LEVEL_TABLE[2][3], 0.5, "adjacent");
        assert_eq!(STYLE_TABLE[1][2], 0.0, "quiet vs discussion");
        assert_eq!(STYLE_TABLE[3][1], 0.6, "mixed with quiet");
    }
}
