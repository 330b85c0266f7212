//! Single-flight: one load per key at a time in this process; everyone else
//! waits for its result.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::sync::watch;

use crate::local::Stored;

/// `None` while loading; `Some(None)` if the load failed; `Some(Some(bytes))` on success.
type Slot = Option<Option<Bytes>>;

/// Loads in progress, by key.
#[derive(Default)]
pub(crate) struct Flights(Arc<Mutex<HashMap<String, watch::Receiver<Slot>>>>);

/// What a caller should do about a miss.
pub(crate) enum Role {
    /// The value arrived meanwhile.
    Cached(Arc<Stored>),
    /// Someone else is loading it: wait.
    Follower(Waiting),
    /// Load it, then [`Lead::finish`].
    Leader(Lead),
}

/// A follower's ticket.
pub(crate) struct Waiting(watch::Receiver<Slot>);

impl Waiting {
    /// The leader's encoded value; `None` if it failed or was cancelled.
    pub async fn result(mut self) -> Option<Bytes> {
        match self.0.wait_for(Option::is_some).await {
            Ok(slot) => slot.clone().flatten(),
            Err(_) => None, // leader dropped without finishing
        }
    }
}

/// The leader's obligation: publish the result. Dropping it (cancellation)
/// releases the key and wakes the followers, who retry.
pub(crate) struct Lead {
    flights: Arc<Mutex<HashMap<String, watch::Receiver<Slot>>>>,
    key: String,
    tx: watch::Sender<Slot>,
}

impl Lead {
    pub fn finish(self, result: Option<Bytes>) {
        self.release();
        self.tx.send_replace(Some(result));
    }

    fn release(&self) {
        let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&self.key);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.release();
    }
}

impl Flights {
    /// Joins the load of `key`. `cached` is re-checked under the lock, so a
    /// caller that missed just before a leader finished does not load again.
    pub fn join(&self, key: &str, cached: impl FnOnce() -> Option<Arc<Stored>>) -> Role {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stored) = cached() {
            return Role::Cached(stored);
        }
        if let Some(rx) = map.get(key) {
            return Role::Follower(Waiting(rx.clone()));
        }
        Role::Leader(self.lead(&mut map, key))
    }

    /// Leadership of `key` if nobody is loading it (for background refreshes).
    pub fn lead_if_idle(&self, key: &str) -> Option<Lead> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!map.contains_key(key)).then(|| self.lead(&mut map, key))
    }

    fn lead(&self, map: &mut HashMap<String, watch::Receiver<Slot>>, key: &str) -> Lead {
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Lead {
            flights: self.0.clone(),
            key: key.to_owned(),
            tx,
        }
    }
}
