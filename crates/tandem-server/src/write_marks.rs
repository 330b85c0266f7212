//! Where writes ended: the primary's WAL position after a user's last
//! write (`writer:{id}`) or the last write behind a cache key or tag
//! (`cache:{key}`), kept for `max lag + 5 s` (a usable replica is never
//! further behind than the maximum lag, so an older write is on every
//! usable replica). Reads then go to a replica that has replayed it.

use std::{collections::HashMap, sync::Arc, sync::Mutex, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tandem_core::Clock;
use tandem_db::replicas::Lsn;

/// Stored write positions: in process (one instance), or shared by every
/// instance (`crate::backends` picks), so a write through one instance is
/// honoured by reads through another.
#[async_trait]
pub trait WriteMarks: Send + Sync {
    /// Records `lsn` under each of `marks`, never lowering one, and renews
    /// their expiry.
    async fn mark(&self, marks: &[String], lsn: Lsn);

    /// The newest position recorded under any of `marks`; `None` when none
    /// is (or all expired). A store that cannot answer says `Lsn::MAX`:
    /// the primary, never a possibly stale replica.
    async fn get(&self, marks: &[String]) -> Option<Lsn>;
}

/// Write marks of this process only.
pub struct LocalWriteMarks {
    clock: Arc<dyn Clock>,
    ttl: Duration,
    marks: Mutex<HashMap<String, (Lsn, DateTime<Utc>)>>,
}

/// Past this many marks, expired ones are dropped before adding more.
const LOCAL_SWEEP_AT: usize = 100_000;

impl LocalWriteMarks {
    /// Marks kept for `ttl` of `clock`'s time.
    pub fn new(clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            clock,
            ttl,
            marks: Mutex::default(),
        }
    }

    fn fresh(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        (now - at).to_std().unwrap_or_default() < self.ttl
    }
}

#[async_trait]
impl WriteMarks for LocalWriteMarks {
    async fn mark(&self, marks: &[String], lsn: Lsn) {
        let now = self.clock.now();
        let mut stored = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        if stored.len() > LOCAL_SWEEP_AT {
            stored.retain(|_, (_, at)| self.fresh(*at, now));
        }
        for mark in marks {
            let entry = stored.entry(mark.clone()).or_insert((0, now));
            *entry = (entry.0.max(lsn), now);
        }
    }

    async fn get(&self, marks: &[String]) -> Option<Lsn> {
        let now = self.clock.now();
        let stored = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        marks
            .iter()
            .filter_map(|m| stored.get(m))
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(lsn, _)| *lsn)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use tandem_core::ManualClock;

    use super::*;

    fn marks(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[tokio::test]
    async fn positions_only_rise_and_expire_after_the_ttl() {
        let clock = Arc::new(ManualClock::new());
        let store = LocalWriteMarks::new(clock.clone(), Duration::from_secs(10));
        assert_eq!(store.get(&marks(&["a"])).await, None);
        store.mark(&marks(&["a", "b"]), 50).await;
        store.mark(&marks(&["a"]), 40).await;
        assert_eq!(store.get(&marks(&["a"])).await, Some(50), "never lowered");
        store.mark(&marks(&["b"]), 70).await;
        assert_eq!(store.get(&marks(&["a", "b", "c"])).await, Some(70));
        clock.advance(chrono::Duration::seconds(9));
        store.mark(&marks(&["b"]), 70).await;
        clock.advance(chrono::Duration::seconds(2));
        assert_eq!(store.get(&marks(&["a"])).await, None, "a expired");
        assert_eq!(store.get(&marks(&["b"])).await, Some(70), "b renewed");
    }
}
