//! Study-partner matching for Tandem: pure, synchronous, no I/O.
//!
//! The server loads candidate [`Profile`]s, converts each once into compact
//! [`Features`] (subject bitmask, UTC availability bitset, goal signature)
//! against a shared [`SubjectIndex`], and calls [`rank`] per search. Ranking
//! is a single pass of bit operations plus small bounded heaps, so 100k
//! candidates take about 1–3 ms on one core (see `examples/rank_100k.rs`);
//! only the final handful of results get strings.
//!
//! The `WEIGHT_*` constants are the scoring weights (see [`rank`]); local
//! availability is mapped to UTC with each timezone's offset in a fixed
//! winter reference week (see [`WeekSlots::from_local`]).

mod availability;
mod features;
mod goals;
mod hash;
mod prefs;
mod profile;
mod rank;
mod score;
mod select;
mod subjects;
mod synthetic;

pub use availability::{
    SLOT_MINUTES, SLOTS_PER_WEEK, WeekSlots, parse_timezone, reference_offset_minutes,
};
pub use features::{Features, features_for};
pub use goals::{goal_signature, goal_similarity};
pub use prefs::{DEFAULT_LIMIT, MAX_LIMIT, Preferences, SCORING_VERSION};
pub use profile::{Level, MINUTES_PER_DAY, Profile, Style, Window};
pub use rank::{Match, rank};
pub use score::{
    SATURATION_HOURS, WEIGHT_AVAILABILITY, WEIGHT_GOALS, WEIGHT_LEVEL, WEIGHT_STYLE,
    WEIGHT_SUBJECTS,
};
pub use select::{DIVERSITY_LAMBDA, POOL_FACTOR};
pub use subjects::{SUBJECT_CAPACITY, SubjectIndex, normalize_subject};
pub use synthetic::synthetic_population;

#[cfg(test)]
mod tests;
