//! Behavioural tests of the whole pipeline: profiles → features → rank.

use std::collections::HashSet;

use chrono::Weekday;
use uuid::Uuid;

use crate::{
    Features, Level, Match, Preferences, Profile, Style, SubjectIndex, Window, features_for, rank,
    synthetic_population,
};

fn profile(n: u128, subjects: &[&str], timezone: &str, windows: &[(Weekday, u16, u16)]) -> Profile {
    Profile {
        id: Uuid::from_u128(n),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        level: Some(Level::Intermediate),
        goals: "calculus exam".to_owned(),
        study_style: Some(Style::Discussion),
        timezone: timezone.to_owned(),
        availability: windows
            .iter()
            .map(|&(day, from, to)| Window::new(day, from * 60, to * 60).expect("valid window"))
            .collect(),
    }
}

/// Monday 18:00–20:00 Berlin time.
const EVENING: &[(Weekday, u16, u16)] = &[(Weekday::Mon, 18, 20)];

/// Builds features for `me` and `others` with one index and ranks.
fn run(me: &Profile, others: &[Profile], excluded: &[u128], prefs: &Preferences) -> Vec<Match> {
    let mut index = SubjectIndex::new();
    let me = Features::from_profile(me, &mut index);
    let candidates = features_for(others, &mut index);
    let excluded: HashSet<Uuid> = excluded.iter().map(|&n| Uuid::from_u128(n)).collect();
    rank(&me, &candidates, &excluded, prefs, &index)
}

fn ids(matches: &[Match]) -> Vec<u128> {
    matches.iter().map(|m| m.id.as_u128()).collect()
}

#[test]
fn subject_spelling_variants_match() {
    let me = profile(1, &[" Mathematics"], "Europe/Berlin", EVENING);
    let other = profile(2, &["mathematics "], "Europe/Berlin", EVENING);
    let found = run(&me, &[other], &[], &Preferences::default());
    assert_eq!(ids(&found), vec![2]);
    assert_eq!(found[0].shared_subjects, vec!["mathematics"]);
    assert!(found[0].reasons.contains(&"1 shared subject".to_owned()));
}

#[test]
fn overlap_is_timezone_aware() {
    let me = profile(1, &["Physics"], "Europe/Berlin", EVENING);
    let london = profile(2, &["physics"], "Europe/London", &[(Weekday::Mon, 17, 19)]);
    let tokyo = profile(3, &["physics"], "Asia/Tokyo", EVENING);
    let found = run(&me, &[london, tokyo], &[], &Preferences::default());
    assert_eq!(ids(&found), vec![2, 3]);
    assert_eq!(found[0].overlap_hours, 2.0);
    assert!(found[0].reasons.contains(&"2 h/week overlap".to_owned()));
    assert_eq!(found[1].overlap_hours, 0.0, "same local hours, 8 h apart");
}

#[test]
fn self_and_excluded_are_never_returned() {
    let me = profile(1, &["Law"], "UTC", EVENING);
    let others = [
        profile(1, &["Law"], "UTC", EVENING),
        profile(2, &["Law"], "UTC", EVENING),
        profile(3, &["Law"], "UTC", EVENING),
        profile(4, &["Law"], "UTC", EVENING),
        profile(3, &["Law"], "UTC", EVENING),
    ];
    let found = run(&me, &others, &[2, 4], &Preferences::default());
    assert_eq!(ids(&found), vec![3], "listed twice, returned once");
}

#[test]
fn no_shared_subject_is_no_match() {
    let me = profile(1, &["Music"], "UTC", EVENING);
    let others = [profile(2, &["History"], "UTC", EVENING)];
    assert!(run(&me, &others, &[], &Preferences::default()).is_empty());
    // ...unless the search overrides the subjects.
    let prefs = Preferences {
        subjects: Some(vec!["HISTORY".to_owned()]),
        ..Preferences::default()
    };
    assert_eq!(ids(&run(&me, &others, &[], &prefs)), vec![2]);
}

#[test]
fn min_overlap_filters_candidates() {
    let me = profile(1, &["Biology"], "UTC", &[(Weekday::Tue, 8, 14)]);
    let others = [
        profile(2, &["Biology"], "UTC", &[(Weekday::Tue, 8, 9)]),
        profile(3, &["Biology"], "UTC", &[(Weekday::Tue, 8, 11)]),
        profile(4, &["Biology"], "UTC", &[(Weekday::Wed, 8, 14)]),
    ];
    let prefs = Preferences {
        min_overlap_hours: 2.0,
        ..Preferences::default()
    };
    let found = run(&me, &others, &[], &prefs);
    assert_eq!(ids(&found), vec![3]);
    assert_eq!(found[0].overlap_hours, 3.0);
    assert_eq!(run(&me, &others, &[], &Preferences::default()).len(), 3);
}

#[test]
fn better_candidates_rank_first() {
    let me = profile(
        1,
        &["Chemistry", "Physics"],
        "UTC",
        &[(Weekday::Thu, 9, 17)],
    );
    let mut weak = profile(2, &["Chemistry"], "UTC", &[(Weekday::Thu, 9, 10)]);
    weak.level = Some(Level::Advanced);
    weak.study_style = Some(Style::Quiet);
    weak.goals = "poetry".to_owned();
    let middle = profile(3, &["Chemistry"], "UTC", &[(Weekday::Thu, 9, 17)]);
    let best = profile(
        4,
        &["chemistry", "physics"],
        "UTC",
        &[(Weekday::Thu, 9, 17)],
    );
    let found = run(&me, &[weak, middle, best], &[], &Preferences::default());
    assert_eq!(ids(&found), vec![4, 3, 2]);
    assert!(found.windows(2).all(|w| w[0].score > w[1].score));
    assert!(
        (found[0].score - 1.0).abs() < 1e-6,
        "perfect match scores 1"
    );
    assert!(found[0].reasons.contains(&"same level".to_owned()));
    assert!(found[0].reasons.contains(&"same study style".to_owned()));
    assert!(found[0].reasons.contains(&"similar goals".to_owned()));
}

#[test]
fn diversity_surfaces_a_distinct_profile() {
    let me = profile(1, &["Mathematics", "Physics", "Economics"], "UTC", EVENING);
    let mut others: Vec<Profile> = (10..30)
        .map(|n| profile(n, &["Mathematics", "Physics"], "UTC", EVENING))
        .collect();
    let mut distinct = profile(2, &["Mathematics", "Economics"], "UTC", EVENING);
    distinct.level = Some(Level::Advanced); // adjacent level: slightly lower score
    others.push(distinct);
    let prefs = Preferences {
        limit: 5,
        ..Preferences::default()
    };
    let found = run(&me, &others, &[], &prefs);
    assert_eq!(found.len(), 5);
    let distinct = found.iter().find(|m| m.id.as_u128() == 2);
    let distinct = distinct.expect("the distinct profile is in the top 5");
    assert!(
        found.iter().any(|m| m.score > distinct.score),
        "it scored lower"
    );
    assert_eq!(
        found[1].id.as_u128(),
        2,
        "picked right after the first clone"
    );
}

#[test]
fn limit_is_respected_and_capped() {
    let population = synthetic_population(3_000, 42);
    let me = &population[0];
    for (limit, expected) in [(7, 7), (0, 10), (500, 50)] {
        let prefs = Preferences {
            limit,
            ..Preferences::default()
        };
        let found = run(me, &population, &[], &prefs);
        assert_eq!(found.len(), expected, "limit {limit}");
        let unique: HashSet<Uuid> = found.iter().map(|m| m.id).collect();
        assert_eq!(unique.len(), found.len(), "no duplicates");
        assert!(
            found
                .iter()
                .all(|m| m.id != me.id && (0.0..=1.0).contains(&m.score))
        );
        assert!(found.iter().all(|m| !m.shared_subjects.is_empty()));
    }
}

#[test]
fn match_serializes_in_camel_case() {
    let me = profile(1, &["Law"], "UTC", EVENING);
    let found = run(
        &me,
        &[profile(2, &["Law"], "UTC", EVENING)],
        &[],
        &Preferences::default(),
    );
    let json = serde_json::to_value(&found[0]).expect("serializable");
    for key in ["id", "score", "sharedSubjects", "overlapHours", "reasons"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn heap_selection_agrees_with_brute_force() {
    let population = synthetic_population(5_000, 9);
    let mut index = SubjectIndex::new();
    let features = features_for(&population, &mut index);
    let excluded: HashSet<Uuid> = features.iter().step_by(7).map(|f| f.id).collect();
    for (seeker, min_overlap_hours) in [(1, 0.0), (2, 1.5), (3, 0.0), (4, 3.0)] {
        let me = &features[seeker];
        let prefs = Preferences {
            min_overlap_hours,
            ..Preferences::default()
        };
        let scorer = crate::score::Seeker::new(me, &prefs, &index).expect("has subjects");
        let mut all: Vec<(f32, Uuid)> = features
            .iter()
            .filter(|c| c.id != me.id && !excluded.contains(&c.id))
            .filter_map(|c| {
                let score = scorer.score(c, scorer.mask & c.subjects)?;
                Some((score, c.id))
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let found = rank(me, &features, &excluded, &prefs, &index);
        assert_eq!(found.len(), all.len().min(10));
        // The first pick has no diversity penalty: it is the global best.
        assert_eq!((found[0].score, found[0].id), all[0]);
        // Every result is a genuine match with its true score.
        for m in &found {
            assert!(all.contains(&(m.score, m.id)));
            assert!(m.overlap_hours >= min_overlap_hours);
        }
    }
}
