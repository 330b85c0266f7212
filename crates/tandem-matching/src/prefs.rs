//! The searching user's preferences, and a stable cache key for them.
//!
//! Results are cached under `partners:{userId}:{hash}`, so equal preferences
//! must produce the same key in every process and release: the key is an
//! FNV-1a 64 hash of a canonical encoding (subjects normalized, deduplicated
//! and sorted; the overlap threshold in whole slots; the effective limit),
//! prefixed with [`SCORING_VERSION`] so changing the algorithm retires old
//! cache entries.

use serde::{Deserialize, Serialize};

use crate::availability::SLOT_MINUTES;
use crate::hash::Fnv64;
use crate::subjects::normalize_subject;

/// Result count when none is requested.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest result count served.
pub const MAX_LIMIT: usize = 50;
/// Bumped whenever scoring changes meaningfully; part of every cache key.
pub const SCORING_VERSION: u8 = 1;
/// Longest overlap threshold honoured: a whole week.
const MAX_OVERLAP_HOURS: f32 = 168.0;

/// Optional filters for one search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Preferences {
    /// Search for these subjects instead of the user's profile subjects.
    /// `None`, or a list with no non-blank entry, means "use my profile".
    pub subjects: Option<Vec<String>>,
    /// Candidates sharing fewer weekly hours than this are excluded.
    /// Negative or NaN counts as 0.
    pub min_overlap_hours: f32,
    /// Number of results; 0 means [`DEFAULT_LIMIT`], capped at [`MAX_LIMIT`].
    pub limit: usize,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            subjects: None,
            min_overlap_hours: 0.0,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Preferences {
    /// The number of results actually returned at most.
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }

    /// Subject override, normalized, deduplicated and sorted; `None` when the
    /// profile's own subjects apply.
    pub fn normalized_subjects(&self) -> Option<Vec<String>> {
        let mut subjects: Vec<String> = self
            .subjects
            .as_deref()?
            .iter()
            .map(|s| normalize_subject(s))
            .filter(|s| !s.is_empty())
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        (!subjects.is_empty()).then_some(subjects)
    }

    /// Minimum shared slots implied by `min_overlap_hours` (rounded up).
    pub(crate) fn min_overlap_slots(&self) -> u32 {
        let hours = self.min_overlap_hours;
        let hours = if hours.is_nan() {
            0.0
        } else {
            hours.clamp(0.0, MAX_OVERLAP_HOURS)
        };
        // At most 168 h * 2 = 336 slots, so the cast is exact.
        (hours * 60.0 / f32::from(SLOT_MINUTES)).ceil() as u32
    }

    /// Stable hex key of the normalized preferences, for result caching.
    /// Preferences that rank identically map to the same key.
    pub fn hash_key(&self) -> String {
        let mut h = Fnv64::new();
        h.write(&[SCORING_VERSION]);
        match self.normalized_subjects() {
            None => h.write(&[0]),
            Some(subjects) => {
                h.write(&[1]);
                h.write(&(subjects.len() as u64).to_le_bytes());
                for s in &subjects {
                    h.write(&(s.len() as u64).to_le_bytes());
                    h.write(s.as_bytes());
                }
            }
        }
        h.write(&self.min_overlap_slots().to_le_bytes());
        h.write(&(self.effective_limit() as u64).to_le_bytes());
        format!("{:016x}", h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(subjects: Option<&[&str]>, min: f32, limit: usize) -> Preferences {
        Preferences {
            subjects: subjects.map(|s| s.iter().map(|s| s.to_string()).collect()),
            min_overlap_hours: min,
            limit,
        }
    }

    #[test]
    fn hash_key_is_stable_and_canonical() {
        let a = prefs(Some(&["Physics", " mathematics"]), 2.0, 10);
        let b = prefs(Some(&["MATHEMATICS", "physics", "Physics "]), 1.75, 0);
        assert_eq!(a.hash_key(), a.clone().hash_key());
        assert_eq!(a.hash_key(), b.hash_key(), "same meaning, same key");
        assert_eq!(a.hash_key().len(), 16);
        assert!(a.hash_key().chars().all(|c| c.is_ascii_hexdigit()));
        // Blank overrides mean "use my profile".
        let none = prefs(None, 0.0, 10);
        assert_eq!(none.hash_key(), prefs(Some(&[" "]), -3.0, 10).hash_key());
        assert_eq!(none.hash_key(), Preferences::default().hash_key());
    }

    #[test]
    fn hash_key_differs_for_different_prefs() {
        let base = prefs(Some(&["physics"]), 2.0, 10);
        let keys = [
            base.hash_key(),
            prefs(Some(&["chemistry"]), 2.0, 10).hash_key(),
            prefs(None, 2.0, 10).hash_key(),
            prefs(Some(&["physics"]), 3.0, 10).hash_key(),
            prefs(Some(&["physics"]), 2.0, 20).hash_key(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn limits_and_thresholds_are_sanitized() {
        assert_eq!(prefs(None, 0.0, 0).effective_limit(), DEFAULT_LIMIT);
        assert_eq!(prefs(None, 0.0, 500).effective_limit(), MAX_LIMIT);
        assert_eq!(prefs(None, 0.0, 3).effective_limit(), 3);
        assert_eq!(prefs(None, f32::NAN, 3).min_overlap_slots(), 0);
        assert_eq!(prefs(None, 1.2, 3).min_overlap_slots(), 3);
        assert_eq!(prefs(None, 1e9, 3).min_overlap_slots(), 336);
    }
}
