use tokio::sync::watch;

/// One shutdown signal shared by every long-lived task (HTTP server,
/// workers, schedulers). Cloning is cheap; all clones see the same trigger.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A signal that has not fired yet.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Fires the signal; every waiter of [`Shutdown::wait`] returns.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once the signal fires (immediately if it already has).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` can only fail if it is dropped,
        // which cannot happen while we borrow it.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}
