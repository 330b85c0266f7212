//! Top-k selection without sorting every candidate, then diversity.
//!
//! Stage 1 keeps, while scanning, the best `limit` candidates *per group of
//! identical shared-subject sets* in small bounded min-heaps, so work is
//! O(n) with a cheap "worse than the worst kept in my group" test for almost
//! every candidate. Capping per group matters: the final `limit` picks can
//! never use more than `limit` entries of one group, and without the cap a
//! crowd of identical high scorers could fill the whole pool and hide every
//! different profile. The best `POOL_FACTOR × limit` of the kept entries form
//! the pool.
//!
//! Stage 2 re-ranks that pool greedily by maximal marginal relevance: each
//! pick maximizes `score − λ · max similarity to already-picked`, where
//! similarity is the Jaccard index of the subjects each candidate shares with
//! the seeker. This stops a page of results from being ten copies of the
//! same profile.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use uuid::Uuid;

/// Diversity penalty λ applied to the maximum similarity to earlier picks.
pub const DIVERSITY_LAMBDA: f32 = 0.15;
/// Candidate pool kept for diversity re-ranking, as a multiple of the limit.
pub const POOL_FACTOR: usize = 4;
/// Grouping looks at this many of the seeker's subjects (2^10 groups at
/// most); further subjects are ignored for grouping, so groups get coarser
/// for seekers with very many subjects.
const MAX_GROUP_BITS: usize = 10;

/// A scored candidate: index into the candidate slice plus what MMR needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scored {
    pub(crate) score: f32,
    pub(crate) id: Uuid,
    pub(crate) index: usize,
    /// Subjects this candidate shares with the seeker.
    pub(crate) shared: u128,
}

impl Ord for Scored {
    /// Better first: higher score, then smaller id (deterministic ties that
    /// do not depend on the order candidates were loaded in).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

/// The best candidates seen so far, at most `per_group` per shared-subject set.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Bit positions of the seeker subjects used for grouping.
    group_bits: Vec<u8>,
    groups: Vec<BinaryHeap<Reverse<Scored>>>,
    /// Per group: score of its worst kept entry once full, `-inf` until then.
    floors: Vec<f32>,
    per_group: usize,
}

impl Pool {
    /// An empty pool for a seeker searching `seeker_mask`.
    pub(crate) fn new(seeker_mask: u128, per_group: usize) -> Self {
        let group_bits: Vec<u8> = (0..128u8)
            .filter(|&b| seeker_mask & (1u128 << b) != 0)
            .take(MAX_GROUP_BITS)
            .collect();
        let n = 1usize << group_bits.len();
        Self {
            group_bits,
            groups: (0..n).map(|_| BinaryHeap::new()).collect(),
            floors: vec![f32::NEG_INFINITY; n],
            per_group,
        }
    }

    /// Dense group number of a shared-subject mask.
    #[inline]
    pub(crate) fn group_of(&self, shared: u128) -> usize {
        self.group_bits
            .iter()
            .enumerate()
            .fold(0, |g, (j, &b)| g | (((shared >> b) as usize & 1) << j))
    }

    /// Lowest score that can still get into `group` (ties are then decided
    /// by id); `-inf` while the group has room.
    #[inline]
    pub(crate) fn floor(&self, group: usize) -> f32 {
        self.floors.get(group).copied().unwrap_or(f32::INFINITY)
    }

    /// Offers an entry to `group`; kept only if it beats that group's worst.
    pub(crate) fn offer(&mut self, group: usize, entry: Scored) {
        let Some(heap) = self.groups.get_mut(group) else {
            return;
        };
        if heap.len() < self.per_group {
            heap.push(Reverse(entry));
        } else if let Some(mut worst) = heap.peek_mut()
            && entry > worst.0
        {
            *worst = Reverse(entry);
        }
        if heap.len() >= self.per_group {
            self.floors[group] = heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score);
        }
    }

    /// The best `size` kept entries over all groups, best first. A user
    /// listed twice among the candidates is kept once, with the best score.
    pub(crate) fn into_best(self, size: usize) -> Vec<Scored> {
        let mut all: Vec<Scored> = self
            .groups
            .into_iter()
            .flat_map(|heap| heap.into_iter().map(|r| r.0))
            .collect();
        all.sort_unstable_by(|a, b| a.id.cmp(&b.id).then_with(|| b.cmp(a)));
        all.dedup_by_key(|e| e.id);
        if all.len() > size && size > 0 {
            all.select_nth_unstable_by(size - 1, |a, b| b.cmp(a));
        }
        all.truncate(size);
        all.sort_unstable_by(|a, b| b.cmp(a));
        all
    }
}

/// Jaccard similarity of two shared-subject masks.
fn subject_similarity(a: u128, b: u128) -> f32 {
    let union = (a | b).count_ones();
    if union == 0 {
        0.0
    } else {
        (a & b).count_ones() as f32 / union as f32
    }
}

/// Greedy maximal-marginal-relevance re-ranking of `pool` (best first) down
/// to `k` entries, returned in pick order.
pub(crate) fn diversify(pool: Vec<Scored>, k: usize) -> Vec<Scored> {
    let mut remaining = pool;
    let mut max_sim = vec![0.0f32; remaining.len()];
    let mut picked = Vec::with_capacity(k.min(remaining.len()));
    while picked.len() < k && !remaining.is_empty() {
        // Strictly-greater keeps the earlier (better-scored) entry on ties.
        let mut best = 0;
        let mut best_value = f32::NEG_INFINITY;
        for (i, entry) in remaining.iter().enumerate() {
            let value = entry.score - DIVERSITY_LAMBDA * max_sim[i];
            if value > best_value {
                best = i;
                best_value = value;
            }
        }
        let chosen = remaining.remove(best);
        max_sim.remove(best);
        for (entry, sim) in remaining.iter().zip(max_sim.iter_mut()) {
            *sim = sim.max(subject_similarity(chosen.shared, entry.shared));
        }
        picked.push(chosen);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(score: f32, n: u128, shared: u128) -> Scored {
        Scored {
            score,
            id: Uuid::from_u128(n),
            index: n as usize,
            shared,
        }
    }

    fn offer_all(pool: &mut Pool, entries: &[Scored]) {
        for &e in entries {
            let group = pool.group_of(e.shared);
            if e.score >= pool.floor(group) {
                pool.offer(group, e);
            }
        }
    }

    #[test]
    fn pool_keeps_the_best_in_order() {
        let mut pool = Pool::new(0b1, 3);
        let entries: Vec<Scored> = [0.1, 0.9, 0.5, 0.7, 0.3, 0.8]
            .into_iter()
            .enumerate()
            .map(|(i, s)| entry(s, i as u128, 0b1))
            .collect();
        offer_all(&mut pool, &entries);
        let scores: Vec<f32> = pool.into_best(10).iter().map(|e| e.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.7]);
    }

    #[test]
    fn pool_caps_each_shared_subject_set() {
        let mut pool = Pool::new(0b111, 2);
        assert_eq!(pool.group_of(0b101), 0b101);
        let mut entries: Vec<Scored> = (0..10).map(|n| entry(0.9, n, 0b11)).collect();
        entries.push(entry(0.5, 20, 0b100));
        entries.push(entry(0.4, 21, 0b110));
        offer_all(&mut pool, &entries);
        let ids: Vec<u128> = pool.into_best(3).iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(ids, vec![0, 1, 20]);
    }

    #[test]
    fn ties_prefer_the_smaller_id() {
        let mut pool = Pool::new(0b1, 1);
        offer_all(
            &mut pool,
            &[entry(0.5, 7, 1), entry(0.5, 3, 1), entry(0.5, 9, 1)],
        );
        let kept = pool.into_best(5);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, Uuid::from_u128(3));
    }

    #[test]
    fn diversify_promotes_a_different_profile() {
        let pool = vec![
            entry(0.9, 1, 0b11),
            entry(0.9, 2, 0b11),
            entry(0.8, 3, 0b100),
        ];
        let order: Vec<u128> = diversify(pool, 3).iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(order, vec![1, 3, 2]);
    }
}
