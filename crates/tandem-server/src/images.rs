//! Resized image variants: transformed on a pool sized to the cores, kept in
//! memory (bounded by bytes) and in the object store, and made once however
//! many requests for the same variant arrive together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use sha2::{Digest, Sha256};
use tandem_images::{Limits, Options, OutputFormat, Policy, TransformError, transform};
use tandem_store::ObjectStore;
use tokio::sync::Semaphore;

/// One encoded variant, ready to serve.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Encoded bytes.
    pub bytes: Bytes,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Strong ETag (hash of the variant key).
    pub etag: String,
}

/// The image service.
pub struct Images {
    /// Allowed sizes and qualities.
    pub policy: Policy,
    /// Source limits.
    pub limits: Limits,
    cache: Option<moka::future::Cache<String, Arc<Variant>>>,
    pool: Arc<Semaphore>,
    /// AVIF encodes, one at a time (each takes seconds of one core).
    avif: Arc<Semaphore>,
    store: Arc<dyn ObjectStore>,
    transforms: AtomicU64,
    avif_queued: AtomicU64,
}

/// AVIF variants that may wait behind the one being encoded before
/// requests get 503.
const AVIF_QUEUE: u64 = 4;

/// One AVIF variant waiting or being encoded (counted until dropped).
struct Queued<'a>(&'a AtomicU64);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a variant could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The source was refused or broken.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// No such source.
    #[error("no such image")]
    NoSource,
    /// Too many AVIF variants are waiting to be encoded.
    #[error("too many AVIF images are being made; try again shortly")]
    Busy,
    /// Storage or the worker pool failed.
    #[error("image service unavailable: {0}")]
    Unavailable(String),
}

impl Images {
    /// A service with a memory cache of `cache_bytes` (0: no cache and no
    /// coalescing, every request transforms; for benchmarks).
    pub fn new(policy: Policy, cache_bytes: u64, store: Arc<dyn ObjectStore>) -> Self {
        let cache = (cache_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .weigher(|_k: &String, v: &Arc<Variant>| {
                    u32::try_from(v.bytes.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(cache_bytes)
                .build()
        });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            policy,
            limits: Limits::default(),
            cache,
            pool: Arc::new(Semaphore::new(cores)),
            avif: Arc::new(Semaphore::new(1)),
            store,
            transforms: AtomicU64::new(0),
            avif_queued: AtomicU64::new(0),
        }
    }

    /// Transforms performed so far (for tests and metrics).
    pub fn transforms(&self) -> u64 {
        self.transforms.load(Ordering::Relaxed)
    }

    /// The variant of the source named `source_key` for `options` and the
    /// client's `Accept`. `source` reads the source's bytes; it is awaited
    /// only when the variant is in neither the memory cache nor the store.
    pub async fn variant(
        &self,
        source_key: &str,
        source: impl Future<Output = Result<Bytes, ImageError>>,
        options: &Options,
        accept: Option<&str>,
    ) -> Result<Arc<Variant>, Arc<ImageError>> {
        let accepts_webp = tandem_images::transform::resolve_format(options.format, accept, false)
            == tandem_images::OutputFormat::Webp;
        let key = format!("{source_key}|{}|webp={accepts_webp}", options.canonical());
        let make = self.make(
            key.clone(),
            source,
            options.clone(),
            accept.map(str::to_owned),
        );
        match &self.cache {
            Some(cache) => cache.try_get_with(key, make).await,
            None => make.await.map_err(Arc::new),
        }
    }

    async fn make(
        &self,
        key: String,
        source: impl Future<Output = Result<Bytes, ImageError>>,
        options: Options,
        accept: Option<String>,
    ) -> Result<Arc<Variant>, ImageError> {
        let digest: String = Sha256::digest(key.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stored_key = format!("variants/{digest}");
        let cached = self.cache.is_some();
        if cached
            && let Ok(Some(bytes)) = self.store.get(&stored_key).await
            && let Some(content_type) = tandem_images::transform::variant_type(&bytes)
        {
            return Ok(Arc::new(Variant {
                content_type,
                etag: format!("\"{digest}\""),
                bytes,
            }));
        }
        let source = source.await?;
        // AVIF takes its single slot, behind a short queue; beyond it, 503.
        let mut avif_slot = None;
        let _queued = if options.format == OutputFormat::Avif {
            let ahead = self.avif_queued.fetch_add(1, Ordering::Relaxed);
            let queued = Queued(&self.avif_queued);
            if ahead > AVIF_QUEUE {
                return Err(ImageError::Busy);
            }
            let slot = self.avif.clone().acquire_owned().await;
            avif_slot = Some(slot.map_err(|e| ImageError::Unavailable(e.to_string()))?);
            Some(queued)
        } else {
            None
        };
        let permit = self
            .pool
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ImageError::Unavailable(e.to_string()))?;
        let limits = self.limits;
        let output = tokio::task::spawn_blocking(move || {
            // Held until the encode ends, even if every caller went away.
            let _permits = (permit, avif_slot);
            transform(&source, &options, accept.as_deref(), &limits)
        })
        .await
        .map_err(|e| ImageError::Unavailable(e.to_string()))??;
        self.transforms.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tandem_image_transforms_total", "format" => output.format.name())
            .increment(1);
        let variant = Variant {
            content_type: output.content_type(),
            etag: format!("\"{digest}\""),
            bytes: Bytes::from(output.bytes),
        };
        if cached && let Err(e) = self.store.put(&stored_key, variant.bytes.clone()).await {
            tracing::warn!(error = %e, "could not store an image variant");
        }
        Ok(Arc::new(variant))
    }
}
