//! The in-process tier (L1): moka, plus a tag index and a short log of
//! recent invalidations that make tag invalidation race-free.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use moka::{Expiry, sync::Cache as Moka};

/// A cached value as L1 keeps it.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Encoded value.
    pub value: Bytes,
    /// Tags, including the entry's own key tag.
    pub tags: Vec<String>,
    /// When the value logically expires (the TTL the caller asked for).
    pub expires_at: Instant,
    /// How long the value took to load (drives early refresh).
    pub delta: Duration,
    /// How long L1 may keep it (≤ the logical TTL).
    pub l1_ttl: Duration,
}

/// A point in the invalidation order, taken before reading or loading a
/// value: a value is stored only if none of its tags was invalidated since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    seq: u64,
    at: Instant,
}

struct PerEntryTtl;

impl Expiry<String, Arc<Stored>> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Arc<Stored>, _: Instant) -> Option<Duration> {
        Some(value.l1_ttl)
    }
}

#[derive(Default)]
struct Index {
    /// Keys currently holding each tag (pruned of evicted keys on sweeps).
    by_tag: HashMap<String, HashSet<String>>,
    /// Tag → sequence number of its latest invalidation, kept for `RETAIN`.
    recent: HashMap<String, (u64, Instant)>,
    seq: u64,
    inserts_since_sweep: u32,
}

/// How long an invalidation is remembered: a load that started earlier and
/// finishes later than this is not stored at all.
const RETAIN: Duration = Duration::from_secs(120);

/// The L1 tier.
pub(crate) struct LocalTier {
    entries: Moka<String, Arc<Stored>>,
    index: Mutex<Index>,
}

impl LocalTier {
    /// A tier holding at most `max_bytes` of values.
    pub fn new(max_bytes: u64) -> Self {
        let entries = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, v: &Arc<Stored>| {
                u32::try_from(key.len() + v.value.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Self {
            entries,
            index: Mutex::new(Index::default()),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<Stored>> {
        self.entries.get(key)
    }

    /// The current position in the invalidation order.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            seq: self.index().seq,
            at: Instant::now(),
        }
    }

    /// Stores `value` unless one of its tags was invalidated after `ticket`
    /// was taken (then the value may predate the change: dropping it is the
    /// only safe choice). Returns whether it was stored.
    pub fn insert(&self, key: &str, value: Arc<Stored>, ticket: Ticket) -> bool {
        let mut index = self.index();
        if ticket.at.elapsed() >= RETAIN {
            return false;
        }
        let invalidated = value.tags.iter().any(|t| {
            index
                .recent
                .get(t)
                .is_some_and(|(seq, _)| *seq > ticket.seq)
        });
        if invalidated {
            return false;
        }
        for tag in &value.tags {
            index
                .by_tag
                .entry(tag.clone())
                .or_default()
                .insert(key.to_owned());
        }
        self.entries.insert(key.to_owned(), value);
        index.inserts_since_sweep += 1;
        if index.inserts_since_sweep >= 1024 {
            self.sweep(&mut index);
        }
        true
    }

    /// Drops every entry carrying `tag`, and refuses in-flight loads that
    /// started before this call.
    pub fn invalidate_tag(&self, tag: &str) {
        let keys = {
            let mut index = self.index();
            index.seq += 1;
            let seq = index.seq;
            index.recent.insert(tag.to_owned(), (seq, Instant::now()));
            if index.recent.len() > 4096 {
                index.recent.retain(|_, (_, at)| at.elapsed() < RETAIN);
            }
            index.by_tag.remove(tag).unwrap_or_default()
        };
        for key in keys {
            self.entries.invalidate(&key);
        }
    }

    /// Drops everything (after a lost invalidation stream).
    pub fn clear(&self) {
        let mut index = self.index();
        index.seq += 1;
        let seq = index.seq;
        let now = Instant::now();
        let tags: Vec<String> = index.by_tag.keys().cloned().collect();
        for tag in tags {
            index.recent.insert(tag, (seq, now));
        }
        index.by_tag.clear();
        self.entries.invalidate_all();
    }

    /// Forgets old invalidations and index entries of evicted keys, so the
    /// bookkeeping stays proportional to what is cached.
    fn sweep(&self, index: &mut Index) {
        index.inserts_since_sweep = 0;
        index.recent.retain(|_, (_, at)| at.elapsed() < RETAIN);
        let entries = &self.entries;
        index.by_tag.retain(|_, keys| {
            keys.retain(|k| entries.contains_key(k));
            !keys.is_empty()
        });
    }

    /// Number of tags tracked (for tests of bounded bookkeeping).
    #[cfg(test)]
    pub fn tracked_tags(&self) -> usize {
        let mut index = self.index();
        self.entries.run_pending_tasks();
        self.sweep(&mut index);
        index.by_tag.len() + index.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(tags: &[&str]) -> Arc<Stored> {
        Arc::new(Stored {
            value: Bytes::from_static(b"v"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            expires_at: Instant::now() + Duration::from_secs(60),
            delta: Duration::ZERO,
            l1_ttl: Duration::from_secs(60),
        })
    }

    #[test]
    fn tag_invalidation_drops_tagged_entries_only() {
        let tier = LocalTier::new(1 << 20);
        assert!(tier.insert("a", stored(&["k:a", "users"]), tier.ticket()));
        assert!(tier.insert("b", stored(&["k:b", "users"]), tier.ticket()));
        assert!(tier.insert("c", stored(&["k:c"]), tier.ticket()));
        tier.invalidate_tag("users");
        assert!(tier.get("a").is_none() && tier.get("b").is_none());
        assert!(tier.get("c").is_some());
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_stored() {
        let tier = LocalTier::new(1 << 20);
        let before = tier.ticket();
        tier.invalidate_tag("users");
        assert!(!tier.insert("a", stored(&["k:a", "users"]), before));
        assert!(tier.get("a").is_none());
        assert!(tier.insert("a", stored(&["k:a", "users"]), tier.ticket()));
    }

    #[test]
    fn bookkeeping_follows_the_live_entries() {
        let tier = LocalTier::new(1 << 20);
        for i in 0..5000 {
            let key = format!("k{i}");
            tier.insert(&key, stored(&[&format!("k:{key}"), "t"]), tier.ticket());
            tier.entries.invalidate(&key);
        }
        assert!(
            tier.tracked_tags() <= 1,
            "{} tags tracked",
            tier.tracked_tags()
        );
    }
}
