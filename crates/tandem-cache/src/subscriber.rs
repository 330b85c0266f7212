//! Listens for invalidations published by any instance and applies them to
//! this instance's L1.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::{sync::oneshot, task::JoinHandle};

use crate::local::LocalTier;

/// Aborts the subscriber when dropped.
pub(crate) struct Handle(JoinHandle<()>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the subscriber and waits up to 2 s for the first subscription.
pub(crate) async fn start(client: redis::Client, channel: String, local: Arc<LocalTier>) -> Handle {
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(run(client, channel, local, ready_tx));
    if tokio::time::timeout(Duration::from_secs(2), ready_rx)
        .await
        .is_err()
    {
        tracing::warn!(
            "cache: not subscribed to invalidations yet; L1 TTL bounds staleness until it is"
        );
    }
    Handle(task)
}

async fn run(
    client: redis::Client,
    channel: String,
    local: Arc<LocalTier>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    // Whatever was published while we were not listening is lost:
                    // start from an empty L1.
                    local.clear();
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(tag) = message.get_payload::<String>() {
                            local.invalidate_tag(&tag);
                        }
                    }
                    tracing::warn!("cache: invalidation stream ended; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "cache: cannot subscribe to invalidations"),
            },
            Err(e) => tracing::debug!(error = %e, "cache: cannot connect for invalidations"),
        }
        local.clear();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
