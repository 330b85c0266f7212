//! Goal keywords as a 64-bit signature.
//!
//! Goals are free text ("pass the calculus exam in June"). We keep only the
//! content words and set one bit per word (FNV-1a hash mod 64). Similarity
//! of two users' goals is then |A∩B| / |A∪B| on those bits: a cheap
//! approximation of keyword Jaccard similarity (distinct words can collide on
//! a bit, which slightly overestimates similarity for long texts).

use crate::hash::fnv1a64;

/// Words too common to say anything about a goal. Words shorter than three
/// letters are dropped before this list is consulted.
const STOP_WORDS: &[&str] = &[
    "and", "are", "but", "for", "from", "have", "into", "learn", "learning", "more", "not",
    "partner", "someone", "study", "studying", "that", "the", "this", "want", "will", "with",
    "would", "you",
];

/// Signature of the goal keywords in `text`.
pub fn goal_signature(text: &str) -> u64 {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .fold(0, |sig, w| sig | 1 << (fnv1a64(w.as_bytes()) % 64))
}

/// Jaccard similarity of two signatures in `0.0..=1.0` (0 if both are empty).
#[inline]
pub fn goal_similarity(a: u64, b: u64) -> f32 {
    let union = (a | b).count_ones();
    if union == 0 {
        0.0
    } else {
        (a & b).count_ones() as f32 / union as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_short_words_and_case_are_ignored() {
        assert_eq!(
            goal_signature("Calculus EXAM"),
            goal_signature("exam, calculus!")
        );
        assert_eq!(goal_signature("I want to study for the"), 0);
        assert_eq!(goal_signature("calculus").count_ones(), 1);
    }

    #[test]
    fn similarity_reflects_shared_keywords() {
        let a = goal_signature("calculus exam preparation");
        let same = goal_signature("Preparation for the calculus exam");
        let other = goal_signature("improve spanish conversation");
        assert_eq!(goal_similarity(a, same), 1.0);
        assert!(goal_similarity(a, other) < 0.5);
        assert_eq!(goal_similarity(0, 0), 0.0);
    }
}
