//! Input types: what the server loads from the database for one student.
//!
//! These are plain owned values so callers can build them from any storage
//! row or API payload. The ranker never looks at them directly: they are
//! converted once into compact [`crate::Features`].

use chrono::Weekday;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Minutes in one day: the largest allowed [`Window::end_minute`].
pub const MINUTES_PER_DAY: u16 = 1440;

/// Self-reported proficiency in the profile's subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    /// Just starting out.
    Beginner,
    /// Comfortable with the basics.
    Intermediate,
    /// Deep knowledge; often able to explain to others.
    Advanced,
}

impl Level {
    /// Compact code used in [`crate::Features`]; 0 is reserved for "unknown".
    pub(crate) fn code(level: Option<Self>) -> u8 {
        match level {
            None => 0,
            Some(Self::Beginner) => 1,
            Some(Self::Intermediate) => 2,
            Some(Self::Advanced) => 3,
        }
    }
}

/// How the student likes to study together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Style {
    /// Working side by side in silence.
    Quiet,
    /// Talking problems through.
    Discussion,
    /// Either, depending on the day.
    Mixed,
}

impl Style {
    /// Compact code used in [`crate::Features`]; 0 is reserved for "unknown".
    pub(crate) fn code(style: Option<Self>) -> u8 {
        match style {
            None => 0,
            Some(Self::Quiet) => 1,
            Some(Self::Discussion) => 2,
            Some(Self::Mixed) => 3,
        }
    }
}

/// One weekly recurring free period, in the profile's own local time.
///
/// Minutes count from local midnight; `end_minute` is exclusive. A valid
/// window has `start_minute < end_minute <= 1440`; invalid windows are
/// ignored when features are built (see [`Window::is_valid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Local day of the week.
    pub day: Weekday,
    /// First free minute of the local day (0..1440).
    pub start_minute: u16,
    /// First minute that is no longer free (exclusive, at most 1440).
    pub end_minute: u16,
}

impl Window {
    /// A window from `start` to `end` (local minutes), or `None` if invalid.
    pub fn new(day: Weekday, start_minute: u16, end_minute: u16) -> Option<Self> {
        let w = Self {
            day,
            start_minute,
            end_minute,
        };
        w.is_valid().then_some(w)
    }

    /// Whether `start_minute < end_minute <= 1440`.
    pub fn is_valid(&self) -> bool {
        self.start_minute < self.end_minute && self.end_minute <= MINUTES_PER_DAY
    }
}

/// A candidate (or the seeker) as stored: owned, unnormalized user input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The user's id.
    pub id: Uuid,
    /// Subjects as typed by the user; normalized (trim, collapse spaces,
    /// lowercase) when features are built.
    pub subjects: Vec<String>,
    /// Proficiency, if the user gave one.
    pub level: Option<Level>,
    /// Free-text study goals; only keywords are kept.
    pub goals: String,
    /// Preferred study style, if the user gave one.
    pub study_style: Option<Style>,
    /// IANA timezone name such as `Europe/Berlin`; unknown names mean UTC.
    pub timezone: String,
    /// Weekly free periods in `timezone`.
    pub availability: Vec<Window>,
}
