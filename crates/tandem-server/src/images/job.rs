//! One variant being made: its turn (AVIF's single slot, then the pool)
//! and its transform.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use tandem_images::{Limits, Options, transform};
use tokio::sync::Semaphore;

use super::ImageError;
use super::pool::{self, Pool};

/// One AVIF variant waiting or being encoded (counted until dropped).
pub(super) struct Queued(pub(super) Arc<AtomicU64>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One variant to make, with its place in the queue.
pub(super) struct Job {
    pub(super) pool: Arc<Pool>,
    pub(super) ticket: pool::Ticket,
    pub(super) memory: u64,
    pub(super) avif_turn: Option<(Queued, Arc<Semaphore>)>,
    pub(super) source: Bytes,
    pub(super) options: Options,
    pub(super) accept: Option<String>,
    pub(super) limits: Limits,
}

impl Job {
    /// Waits for its turn (AVIF's single slot, then memory and a core) and
    /// makes the variant, unless `abandoned` completes first.
    pub(super) async fn run(
        self,
        abandoned: impl Future<Output = ()>,
    ) -> Result<tandem_images::Output, ImageError> {
        let mut abandoned = std::pin::pin!(abandoned);
        let avif_slot = match self.avif_turn {
            Some((queued, slot)) => tokio::select! {
                biased;
                () = &mut abandoned => return Err(ImageError::Abandoned),
                slot = slot.acquire_owned() => Some((
                    queued,
                    slot.map_err(|e| ImageError::Unavailable(e.to_string()))?,
                )),
            },
            None => None,
        };
        let (source, options, accept, limits) =
            (self.source, self.options, self.accept, self.limits);
        self.pool
            .run(self.ticket, self.memory, abandoned, move || {
                let _avif = avif_slot;
                transform(&source, &options, accept.as_deref(), &limits)
            })
            .await?
            .map_err(ImageError::from)
    }
}
