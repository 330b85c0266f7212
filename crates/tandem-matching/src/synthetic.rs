//! Deterministic synthetic profiles for benchmarks and tests.
//!
//! Not real data and not meant for production: a plausible mix of subjects
//! (with popularity skew and messy capitalization/spacing, to exercise
//! normalization), levels, styles, goals, timezones and weekly windows, so
//! ranking can be timed over 100k candidates without a database.

use chrono::Weekday;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Builder;

use crate::profile::{Level, Profile, Style, Window};

/// Subjects with relative popularity weights.
const SUBJECTS: [(&str, u32); 12] = [
    ("Mathematics", 14),
    ("Computer Science", 14),
    ("Physics", 9),
    ("Biology", 9),
    ("Economics", 9),
    ("Chemistry", 8),
    ("Medicine", 8),
    ("Languages", 8),
    ("Law", 7),
    ("History", 5),
    ("Literature", 5),
    ("Music", 4),
];

const TIMEZONES: [&str; 9] = [
    "Europe/Berlin",
    "Europe/London",
    "Europe/Madrid",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
];

const GOAL_WORDS: [&str; 16] = [
    "exam",
    "finals",
    "calculus",
    "thesis",
    "homework",
    "revision",
    "algorithms",
    "essay",
    "vocabulary",
    "grammar",
    "lab",
    "report",
    "statistics",
    "interview",
    "olympiad",
    "bar",
];

const DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// `n` reproducible synthetic profiles; the same `seed` always yields the
/// same population (for a given `rand` version). For benchmarks and tests.
pub fn synthetic_population(n: usize, seed: u64) -> Vec<Profile> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| synthetic_profile(&mut rng)).collect()
}

fn synthetic_profile(rng: &mut StdRng) -> Profile {
    let subject_count = rng.random_range(1..=3);
    let subjects = (0..subject_count).map(|_| messy_subject(rng)).collect();
    let goals = (0..rng.random_range(0..=4))
        .map(|_| GOAL_WORDS[rng.random_range(0..GOAL_WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ");
    let availability = (0..rng.random_range(1..=4))
        .filter_map(|_| random_window(rng))
        .collect();
    Profile {
        id: Builder::from_random_bytes(rng.random()).into_uuid(),
        subjects,
        level: pick_option(
            rng,
            &[Level::Beginner, Level::Intermediate, Level::Advanced],
        ),
        goals,
        study_style: pick_option(rng, &[Style::Quiet, Style::Discussion, Style::Mixed]),
        timezone: TIMEZONES[rng.random_range(0..TIMEZONES.len())].to_owned(),
        availability,
    }
}

/// A popularity-weighted subject, sometimes with odd case or spacing.
fn messy_subject(rng: &mut StdRng) -> String {
    let total: u32 = SUBJECTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    let mut name = SUBJECTS[0].0;
    for (subject, weight) in SUBJECTS {
        if roll < weight {
            name = subject;
            break;
        }
        roll -= weight;
    }
    match rng.random_range(0..10) {
        0 => name.to_lowercase(),
        1 => format!(" {name} "),
        2 => name.to_uppercase(),
        _ => name.to_owned(),
    }
}

/// One value of `options`, or `None` one time in eight.
fn pick_option<T: Copy>(rng: &mut StdRng, options: &[T]) -> Option<T> {
    if rng.random_range(0..8) == 0 {
        None
    } else {
        Some(options[rng.random_range(0..options.len())])
    }
}

/// A 1–3 hour window starting on a half hour between 06:00 and 22:30.
fn random_window(rng: &mut StdRng) -> Option<Window> {
    let day = DAYS[rng.random_range(0..DAYS.len())];
    let start: u16 = rng.random_range(12..46) * 30;
    let end = (start + rng.random_range(2..=6) * 30).min(1440);
    Window::new(day, start, end)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn population_is_deterministic_and_plausible() {
        let a = synthetic_population(200, 7);
        let b = synthetic_population(200, 7);
        assert_eq!(a, b);
        assert_ne!(a, synthetic_population(200, 8));
        for p in &a {
            assert!((1..=3).contains(&p.subjects.len()));
            assert!((1..=4).contains(&p.availability.len()));
            assert!(p.availability.iter().all(Window::is_valid));
        }
        let ids: std::collections::HashSet<Uuid> = a.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), a.len());
    }
}
