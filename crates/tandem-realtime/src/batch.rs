//! The roadmap's message batcher, on the server: items for the same topic
//! and event within a window go out as one broadcast whose payload is the
//! list. The roadmap debounced the flush, which never fires while messages
//! keep coming; here the window starts at the first item and is never
//! extended, so no item waits longer than the window, and a full batch goes
//! at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;

use crate::{
    hub::{Hub, Outbound},
    protocol::Body,
};

/// Batches server broadcasts per (topic, event).
pub struct Batcher {
    hub: Arc<Hub>,
    window: Duration,
    max_items: usize,
    pending: Mutex<HashMap<(String, String), Vec<Value>>>,
}

impl Batcher {
    /// Sends batches of at most `max_items` through `hub`, each at most
    /// `window` after its first item (a zero window sends every item alone).
    pub fn new(hub: Arc<Hub>, window: Duration, max_items: usize) -> Arc<Self> {
        Arc::new(Self {
            hub,
            window,
            max_items: max_items.max(1),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Queues `item` for `event` on `topic`.
    pub fn add(self: &Arc<Self>, topic: &str, event: &str, item: Value) {
        let key = (topic.to_owned(), event.to_owned());
        let mut pending = self.pending();
        let items = pending.entry(key.clone()).or_default();
        items.push(item);
        if items.len() >= self.max_items || self.window.is_zero() {
            self.send(&mut pending, &key);
        } else if items.len() == 1 {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.window).await;
                let mut pending = this.pending();
                this.send(&mut pending, &key);
            });
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<Value>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the batch of `key`, under the lock, so batches of one
    /// topic leave in the order their items came.
    fn send(&self, pending: &mut HashMap<(String, String), Vec<Value>>, key: &(String, String)) {
        let Some(items) = pending.remove(key) else {
            return;
        };
        metrics::histogram!("tandem_realtime_batch_items").record(items.len() as f64);
        let (topic, event) = key;
        self.hub.publish(&Outbound::broadcast(
            topic,
            event,
            Body::Json(Value::Array(items)),
            None,
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items(out: &Outbound) -> Value {
        match &out.body {
            Some(Body::Json(v)) => v.clone(),
            other => panic!("expected a JSON body, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn items_within_the_window_go_out_together_and_in_order() {
        let hub = Arc::new(Hub::new(16));
        let (conn, mut inbox) = hub.connect();
        hub.join("t", &conn);
        let batcher = Batcher::new(hub.clone(), Duration::from_millis(100), 50);
        batcher.add("t", "messages", json!(1));
        tokio::time::sleep(Duration::from_millis(60)).await;
        batcher.add("t", "messages", json!(2));
        assert!(inbox.rx.try_recv().is_err(), "sent before the window ended");
        tokio::time::sleep(Duration::from_millis(41)).await;
        let batch = inbox.rx.recv().await.expect("batch");
        assert_eq!(batch.payload["event"], "messages");
        assert_eq!(items(&batch), json!([1, 2]));
        batcher.add("t", "messages", json!(3));
        tokio::time::sleep(Duration::from_millis(101)).await;
        assert_eq!(items(&inbox.rx.recv().await.expect("next")), json!([3]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once() {
        let hub = Arc::new(Hub::new(16));
        let (conn, mut inbox) = hub.connect();
        hub.join("t", &conn);
        let batcher = Batcher::new(hub.clone(), Duration::from_secs(60), 3);
        for i in 0..3 {
            batcher.add("t", "messages", json!(i));
        }
        assert_eq!(
            items(&inbox.rx.try_recv().expect("full batch")),
            json!([0, 1, 2])
        );
    }
}
