//! Subject normalization and interning into bit positions.
//!
//! Subjects are free text, so "Mathematics", " mathematics " and
//! "MATHEMATICS" must compare equal. Each distinct normalized subject gets one
//! bit of a `u128`, which turns "how many subjects do we share" into a single
//! AND plus popcount in the ranking hot loop.

use std::collections::HashMap;

use crate::hash::fnv1a64;

/// How many subjects get their own bit.
pub const SUBJECT_CAPACITY: usize = 128;

/// Canonical form of a subject: trimmed, inner whitespace collapsed to one
/// space, lowercased. Returns an empty string for blank input.
pub fn normalize_subject(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Shared table from normalized subject to bit position.
///
/// Append-only: a bit, once assigned, never changes, so features built at
/// different times stay comparable as long as they use the same index. The
/// first [`SUBJECT_CAPACITY`] distinct subjects get exclusive bits; later
/// subjects are hashed onto an existing bit (a deliberate, documented
/// approximation: they may then count as shared with an unrelated subject, and
/// display under that subject's name).
#[derive(Debug, Clone, Default)]
pub struct SubjectIndex {
    bits: HashMap<String, u8>,
    names: Vec<String>,
}

impl SubjectIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subjects holding an exclusive bit (at most 128).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no subject has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bit for `raw` (normalized first), assigning a new one if needed.
    /// Blank subjects have no bit.
    pub fn intern(&mut self, raw: &str) -> Option<u8> {
        let name = normalize_subject(raw);
        if name.is_empty() {
            return None;
        }
        if let Some(&bit) = self.bits.get(&name) {
            return Some(bit);
        }
        if self.names.len() >= SUBJECT_CAPACITY {
            return Some(overflow_bit(&name));
        }
        let bit = u8::try_from(self.names.len()).ok()?;
        self.names.push(name.clone());
        self.bits.insert(name, bit);
        Some(bit)
    }

    /// Bit for `raw` without assigning one. `None` means no profile built
    /// with this index can have the subject (or it is blank).
    pub fn lookup(&self, raw: &str) -> Option<u8> {
        let name = normalize_subject(raw);
        if name.is_empty() {
            return None;
        }
        match self.bits.get(&name) {
            Some(&bit) => Some(bit),
            None if self.names.len() >= SUBJECT_CAPACITY => Some(overflow_bit(&name)),
            None => None,
        }
    }

    /// Normalized name owning `bit`, if assigned.
    pub fn name(&self, bit: u8) -> Option<&str> {
        self.names.get(usize::from(bit)).map(String::as_str)
    }

    /// Mask of all `subjects`, interning new ones.
    pub fn intern_mask<S: AsRef<str>>(&mut self, subjects: &[S]) -> u128 {
        subjects
            .iter()
            .filter_map(|s| self.intern(s.as_ref()))
            .fold(0, |mask, bit| mask | (1u128 << bit))
    }

    /// Mask of all `subjects` that are known; never modifies the index.
    pub fn lookup_mask<S: AsRef<str>>(&self, subjects: &[S]) -> u128 {
        subjects
            .iter()
            .filter_map(|s| self.lookup(s.as_ref()))
            .fold(0, |mask, bit| mask | (1u128 << bit))
    }
}

/// Bit for a subject that arrived after the index filled up.
fn overflow_bit(name: &str) -> u8 {
    // `% 128` keeps the value below 128, so the cast cannot truncate.
    (fnv1a64(name.as_bytes()) % SUBJECT_CAPACITY as u64) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_trims_lowercases_and_collapses_spaces() {
        assert_eq!(normalize_subject(" Mathematics"), "mathematics");
        assert_eq!(
            normalize_subject("  Computer   SCIENCE "),
            "computer science"
        );
        assert_eq!(normalize_subject("   "), "");
    }

    #[test]
    fn variants_of_one_subject_share_a_bit() {
        let mut index = SubjectIndex::new();
        let a = index.intern(" Mathematics");
        let b = index.intern("mathematics");
        let c = index.intern("Physics");
        assert_eq!(a, Some(0));
        assert_eq!(a, b);
        assert_eq!(c, Some(1));
        assert_eq!(index.lookup("MATHEMATICS "), Some(0));
        assert_eq!(index.lookup("history"), None);
        assert_eq!(index.intern(" "), None);
        assert_eq!(index.name(1), Some("physics"));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn overflow_subjects_hash_consistently() {
        let mut index = SubjectIndex::new();
        for i in 0..SUBJECT_CAPACITY {
            index.intern(&format!("subject {i}"));
        }
        assert_eq!(index.len(), SUBJECT_CAPACITY);
        let interned = index.intern("Astronomy");
        assert!(interned.is_some());
        assert_eq!(index.lookup("astronomy"), interned);
        assert_eq!(index.len(), SUBJECT_CAPACITY, "overflow never grows");
    }
}
