//! Variants in the object store, within a size budget: each is stored under
//! its source (`variants/<source>/<digest>`, so a source's variants go with
//! it) and indexed by size and last use; storing past the budget deletes
//! the least recently used. The index is built from a listing of the store
//! on first use, and each instance keeps its own: with several instances
//! sharing a bucket, each holds the bucket to the budget as it sees it.

use std::sync::Mutex;

use axum::body::Bytes;
use tandem_images::budget::VariantBudget;
use tandem_store::{ObjectStore, StoreError};
use tokio::sync::OnceCell;

/// Where stored variants live.
pub const PREFIX: &str = "variants";

/// The stored variants and their budget.
pub struct StoredVariants {
    budget_bytes: u64,
    index: OnceCell<Mutex<VariantBudget>>,
}

impl StoredVariants {
    /// Variants within `budget_bytes` in all.
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            index: OnceCell::new(),
        }
    }

    /// The index, built from the store's listing the first time (every
    /// variant already stored counts, oldest first out in listing order).
    async fn index(&self, store: &dyn ObjectStore) -> &Mutex<VariantBudget> {
        self.index
            .get_or_init(|| async {
                let mut budget = VariantBudget::new(self.budget_bytes);
                match store.list(PREFIX).await {
                    Ok(found) => {
                        for object in found {
                            // Over the budget already (it was lowered): the
                            // next store trims it.
                            budget.insert_unchecked(&object.key, object.size);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not list stored image variants"),
                }
                Mutex::new(budget)
            })
            .await
    }

    /// Marks a stored variant used (when the index is built).
    pub fn touch(&self, key: &str) {
        if let Some(index) = self.index.get()
            && let Ok(mut index) = index.lock()
        {
            index.touch(key);
        }
    }

    /// Stores a variant, then deletes the least recently used ones beyond
    /// the budget (this one too, if it alone is over it).
    pub async fn put(&self, store: &dyn ObjectStore, key: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        if let Err(e) = store.put(key, bytes).await {
            tracing::warn!(error = %e, "could not store an image variant");
            return;
        }
        let evicted = match self.index(store).await.lock() {
            Ok(mut index) => index.insert(key, size),
            Err(_) => Vec::new(),
        };
        for old in evicted {
            metrics::counter!("tandem_image_variants_evicted_total").increment(1);
            if let Err(e) = store.delete(&old).await {
                tracing::warn!(error = %e, key = %old, "could not evict an image variant");
            }
        }
    }

    /// Bytes of variants stored, as this instance knows them.
    pub async fn total(&self, store: &dyn ObjectStore) -> u64 {
        self.index(store)
            .await
            .lock()
            .map_or(0, |index| index.total())
    }

    /// Deletes every variant of the sources under `source_prefix` (a
    /// source, or a folder of them: `uploads/avatars/<user>`).
    pub async fn delete_sources(
        &self,
        store: &dyn ObjectStore,
        source_prefix: &str,
    ) -> Result<usize, StoreError> {
        let prefix = format!("{PREFIX}/{source_prefix}");
        let found = store.list(&prefix).await?;
        for object in &found {
            store.delete(&object.key).await?;
        }
        if let Ok(mut index) = self.index(store).await.lock() {
            index.remove_prefix(&prefix);
        }
        Ok(found.len())
    }
}

/// The stored key of the variant `digest` of `source` (`uploads/…` or
/// `assets/…`).
pub fn key(source: &str, digest: &str) -> String {
    format!("{PREFIX}/{source}/{digest}")
}
