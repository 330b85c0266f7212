//! Compact, precomputed per-profile features: what the ranker actually reads.
//!
//! Converting a [`Profile`] parses timezones, normalizes and interns subjects
//! and tokenizes goals; all of that happens once per profile so ranking is
//! just bit operations over a flat slice (about 100 bytes per candidate).

use uuid::Uuid;

use crate::availability::WeekSlots;
use crate::goals::goal_signature;
use crate::profile::{Level, Profile, Style};
use crate::subjects::SubjectIndex;

/// Precomputed matching features of one profile.
///
/// Only meaningful together with the [`SubjectIndex`] it was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Features {
    pub(crate) id: Uuid,
    pub(crate) subjects: u128,
    pub(crate) slots: WeekSlots,
    pub(crate) goals: u64,
    pub(crate) level: u8,
    pub(crate) style: u8,
}

impl Features {
    /// Builds the features of `profile`, interning its subjects into `index`.
    pub fn from_profile(profile: &Profile, index: &mut SubjectIndex) -> Self {
        Self {
            id: profile.id,
            subjects: index.intern_mask(&profile.subjects),
            slots: WeekSlots::from_local(&profile.availability, &profile.timezone),
            goals: goal_signature(&profile.goals),
            level: Level::code(profile.level),
            style: Style::code(profile.study_style),
        }
    }

    /// The profile's user id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Subject bits (see [`SubjectIndex`]).
    pub fn subject_mask(&self) -> u128 {
        self.subjects
    }

    /// Free slots of the UTC week.
    pub fn slots(&self) -> &WeekSlots {
        &self.slots
    }

    /// Goal keyword signature (see [`crate::goal_signature`]).
    pub fn goal_signature(&self) -> u64 {
        self.goals
    }
}

/// Features of every profile, in order, sharing one `index`.
pub fn features_for(profiles: &[Profile], index: &mut SubjectIndex) -> Vec<Features> {
    profiles
        .iter()
        .map(|p| Features::from_profile(p, index))
        .collect()
}
