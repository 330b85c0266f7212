//! Stored variants within a size budget: an index of what is stored, by
//! key, size and last use; adding past the budget names the least recently
//! used to delete. It holds no bytes, only sizes, so it is small (about 100
//! bytes a variant) whatever the variants weigh.

use std::collections::{BTreeMap, HashMap};

/// Keys and sizes of stored variants, least recently used first out.
#[derive(Debug, Default)]
pub struct VariantBudget {
    budget: u64,
    total: u64,
    clock: u64,
    /// Key → (size, last use).
    entries: HashMap<String, (u64, u64)>,
    /// Last use → key (uses are unique, so this is the LRU order).
    order: BTreeMap<u64, String>,
}

impl VariantBudget {
    /// An empty index allowing `budget` bytes in all.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Bytes stored.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Variants stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Marks `key` used now (a stored variant was served).
    pub fn touch(&mut self, key: &str) {
        if let Some((_, used)) = self.entries.get_mut(key) {
            self.order.remove(used);
            self.clock += 1;
            *used = self.clock;
            self.order.insert(self.clock, key.to_owned());
        }
    }

    /// Records `key` of `size` bytes as stored and used now; returns the
    /// keys to delete (least recently used first) to get back within the
    /// budget, `key` itself last of all if it alone is over it.
    pub fn insert(&mut self, key: &str, size: u64) -> Vec<String> {
        self.insert_unchecked(key, size);
        let mut evicted = Vec::new();
        while self.total > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((size, _)) = self.entries.remove(&oldest) {
                self.total -= size;
            }
            evicted.push(oldest);
        }
        evicted
    }

    /// Records `key` without evicting anything (rebuilding the index from
    /// what is stored; the next [`insert`](Self::insert) trims it).
    pub fn insert_unchecked(&mut self, key: &str, size: u64) {
        self.remove(key);
        self.clock += 1;
        self.entries.insert(key.to_owned(), (size, self.clock));
        self.order.insert(self.clock, key.to_owned());
        self.total += size;
    }

    /// Forgets `key` (deleted by someone else); whether it was known.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some((size, used)) => {
                self.order.remove(&used);
                self.total -= size;
                true
            }
            None => false,
        }
    }

    /// Forgets every key under `prefix/`.
    pub fn remove_prefix(&mut self, prefix: &str) {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first() {
        let mut b = VariantBudget::new(100);
        assert!(b.insert("a", 40).is_empty());
        assert!(b.insert("b", 40).is_empty());
        b.touch("a");
        assert_eq!(b.insert("c", 40), vec!["b".to_owned()]);
        assert_eq!((b.total(), b.len()), (80, 2));
        // Replacing a key counts its new size only.
        assert!(b.insert("c", 50).is_empty());
        assert_eq!(b.total(), 90);
        // One object over the whole budget is evicted too, last.
        assert_eq!(
            b.insert("huge", 500),
            vec!["a".to_owned(), "c".to_owned(), "huge".to_owned()]
        );
        assert!(b.is_empty());
        assert_eq!(b.total(), 0);
    }

    #[test]
    fn prefixes_are_forgotten_together() {
        let mut b = VariantBudget::new(1000);
        b.insert("v/u1/x.jpeg/1", 10);
        b.insert("v/u1/x.jpeg/2", 10);
        b.insert("v/u10/y.jpeg/1", 10);
        b.remove_prefix("v/u1");
        assert_eq!((b.len(), b.total()), (1, 10));
        assert!(b.remove("v/u10/y.jpeg/1"));
        assert!(!b.remove("v/u10/y.jpeg/1"));
    }
}
