//! Resized image variants and avatar uploads: decoded, resized and encoded
//! on the bounded image [`pool`] (cores, memory, queue), variants kept in
//! memory (bounded by bytes) and in the object store (bounded by a size
//! budget, least recently used out: [`stored`]), and made once however many
//! requests for the same variant arrive together. A cached variant costs a
//! lookup; only making one is charged (rate limit, queue, pool).

mod job;
pub mod pool;
pub mod stored;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use sha2::{Digest, Sha256};
use tandem_images::{Limits, Options, OutputFormat, Policy, TransformError};
use tandem_store::ObjectStore;
use tokio::sync::{Semaphore, oneshot};

use crate::config::ImageSettings;
use job::{Job, Queued};
use pool::{Pool, estimate_bytes};
use stored::StoredVariants;

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
    /// Source and output limits.
    pub limits: Limits,
    cache: Option<moka::future::Cache<String, Arc<Variant>>>,
    /// The bounded pool every image job runs on.
    pub pool: Arc<Pool>,
    /// AVIF encodes, one at a time (each takes seconds of one core).
    avif: Arc<Semaphore>,
    avif_queued: Arc<AtomicU64>,
    store: Arc<dyn ObjectStore>,
    stored: Arc<StoredVariants>,
    transforms: Arc<AtomicU64>,
}

/// AVIF variants that may wait behind the one being encoded before
/// requests get 503.
const AVIF_QUEUE: u64 = 4;

/// How long a variant stays in memory: a deleted source's variants leave
/// the other instances' memory within this time.
const MEMORY_TTL: Duration = Duration::from_secs(600);

/// Why a variant could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The source was refused or broken, or the output would be too large.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// No such source.
    #[error("no such image")]
    NoSource,
    /// Too many images are waiting to be made.
    #[error("too many images are being made; try again shortly")]
    Busy,
    /// This client made too many new variants lately.
    #[error("too many new image sizes requested; try again later")]
    RateLimited(Duration),
    /// The requester left before the job started (never answered).
    #[error("the request was abandoned")]
    Abandoned,
    /// Storage or the worker pool failed.
    #[error("image service unavailable: {0}")]
    Unavailable(String),
}

/// The one answer for each image error, for uploads and variants alike.
/// Decoder and encoder text is logged, never shown.
impl From<&ImageError> for crate::ApiError {
    fn from(error: &ImageError) -> Self {
        use crate::ApiError;
        match error {
            ImageError::NoSource => ApiError::NotFound("image"),
            ImageError::RateLimited(after) => ApiError::RateLimited(*after),
            ImageError::Busy => {
                ApiError::Busy("Too many images are being made; try again shortly.")
            }
            ImageError::Transform(e @ TransformError::Unsupported) => {
                ApiError::UnsupportedMediaType(e.to_string())
            }
            ImageError::Transform(e @ TransformError::TooLarge(_)) => {
                ApiError::PayloadTooLarge(e.to_string())
            }
            ImageError::Transform(
                e @ (TransformError::TooManyPixels { .. }
                | TransformError::OutputTooLarge { .. }
                | TransformError::AvifTooLarge { .. }
                | TransformError::Animated),
            ) => ApiError::Unprocessable(e.to_string()),
            ImageError::Transform(TransformError::Corrupt(why)) => {
                tracing::debug!(%why, "image refused: not decodable");
                ApiError::Unprocessable("The image is damaged or truncated.".into())
            }
            ImageError::Transform(TransformError::Encode(_))
            | ImageError::Unavailable(_)
            | ImageError::Abandoned => ApiError::Unavailable(format!("image job: {error}")),
        }
    }
}

impl From<ImageError> for crate::ApiError {
    fn from(error: ImageError) -> Self {
        (&error).into()
    }
}

impl Images {
    /// A service storing variants in `store`, per `settings`.
    pub fn new(settings: &ImageSettings, store: Arc<dyn ObjectStore>) -> Self {
        let cache = (settings.cache_mb > 0).then(|| {
            moka::future::Cache::builder()
                .weigher(|_k: &String, v: &Arc<Variant>| {
                    u32::try_from(v.bytes.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(settings.cache_mb.saturating_mul(1 << 20))
                .time_to_live(MEMORY_TTL)
                .support_invalidation_closures()
                .build()
        });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            policy: settings.policy(),
            limits: Limits {
                max_output_pixels: settings.max_pixels,
                ..Limits::default()
            },
            cache,
            pool: Arc::new(Pool::new(cores, settings.memory_mb, settings.queue)),
            avif: Arc::new(Semaphore::new(1)),
            avif_queued: Arc::new(AtomicU64::new(0)),
            store,
            stored: Arc::new(StoredVariants::new(
                settings.variant_budget_mb.saturating_mul(1 << 20),
            )),
            transforms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Transforms performed so far (for tests and metrics).
    pub fn transforms(&self) -> u64 {
        self.transforms.load(Ordering::Relaxed)
    }

    /// Bytes of variants in the object store, as this instance knows them.
    pub async fn stored_bytes(&self) -> u64 {
        self.stored.total(self.store.as_ref()).await
    }

    /// The variant of the source named `source_key` for `options` and the
    /// client's `Accept`. `source` reads the source's bytes and `allow`
    /// charges the client for a new variant; both are awaited only when the
    /// variant is in neither the memory cache nor the store.
    pub async fn variant(
        &self,
        source_key: &str,
        source: impl Future<Output = Result<Bytes, ImageError>>,
        allow: impl Future<Output = Result<(), ImageError>>,
        options: &Options,
        accept: Option<&str>,
    ) -> Result<Arc<Variant>, Arc<ImageError>> {
        let accepts_webp = tandem_images::transform::resolve_format(options.format, accept, false)
            == OutputFormat::Webp;
        let key = format!("{source_key}|{}|webp={accepts_webp}", options.canonical());
        let make = self.make(
            &key,
            source_key,
            source,
            allow,
            options,
            accept.map(str::to_owned),
        );
        match &self.cache {
            Some(cache) => cache.try_get_with_by_ref(&key, make).await,
            None => make.await.map_err(Arc::new),
        }
    }

    async fn make(
        &self,
        key: &str,
        source_key: &str,
        source: impl Future<Output = Result<Bytes, ImageError>>,
        allow: impl Future<Output = Result<(), ImageError>>,
        options: &Options,
        accept: Option<String>,
    ) -> Result<Arc<Variant>, ImageError> {
        let digest: String = Sha256::digest(key.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stored_key = stored::key(source_key, &digest);
        let etag = format!("\"{digest}\"");
        let cached = self.cache.is_some();
        if cached
            && let Ok(Some(bytes)) = self.store.get(&stored_key).await
            && let Some(content_type) = tandem_images::transform::variant_type(&bytes)
        {
            self.stored.touch(&stored_key);
            return Ok(Arc::new(Variant {
                content_type,
                etag,
                bytes,
            }));
        }
        // A new variant: charged to the client, then queued.
        allow.await?;
        let ticket = self.pool.admit()?;
        let avif_turn = if options.format == OutputFormat::Avif {
            let ahead = self.avif_queued.fetch_add(1, Ordering::Relaxed);
            let queued = Queued(self.avif_queued.clone());
            if ahead > AVIF_QUEUE {
                return Err(ImageError::Busy);
            }
            Some((queued, self.avif.clone()))
        } else {
            None
        };
        let source = source.await?;
        // From the header alone: an output over the limits is refused here.
        let probe = tandem_images::probe(&source, &self.limits)?;
        let plan = tandem_images::plan(probe.width, probe.height, options, &self.limits)?;
        let job = Job {
            pool: self.pool.clone(),
            ticket,
            memory: estimate_bytes(probe.pixels(), plan.pixels()),
            avif_turn,
            source,
            options: options.clone(),
            accept,
            limits: self.limits,
        };
        let (store, stored, transforms) = (
            self.store.clone(),
            self.stored.clone(),
            self.transforms.clone(),
        );
        let (tx, rx) = oneshot::channel();
        // Detached: a variant whose encode started is finished and stored
        // even if its requester times out, so the next request is a hit.
        tokio::spawn(async move {
            let mut tx = tx;
            let output = job.run(tx.closed()).await;
            let variant = output.map(|output| {
                transforms.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tandem_image_transforms_total", "format" => output.format.name())
                    .increment(1);
                Arc::new(Variant {
                    content_type: output.content_type(),
                    etag,
                    bytes: Bytes::from(output.bytes),
                })
            });
            if cached && let Ok(variant) = &variant {
                stored
                    .put(store.as_ref(), &stored_key, variant.bytes.clone())
                    .await;
            }
            let _ = tx.send(variant);
        });
        rx.await
            .map_err(|_| ImageError::Unavailable("the image worker stopped".into()))?
    }

    /// Makes an upload safe to keep ([`tandem_images::normalize`]) on the
    /// image pool, under the source limits with `max_bytes`.
    pub async fn normalize_upload(
        &self,
        body: Bytes,
        max_bytes: usize,
        max_side: u32,
    ) -> Result<tandem_images::Output, ImageError> {
        let limits = Limits {
            max_bytes,
            ..self.limits
        };
        let ticket = self.pool.admit()?;
        let probe = tandem_images::probe(&body, &limits)?;
        let side = u64::from(max_side);
        let memory = estimate_bytes(probe.pixels(), probe.pixels().min(side * side));
        // Dropped while waiting (the client left), the job never starts.
        let pending = std::future::pending();
        self.pool
            .run(ticket, memory, pending, move || {
                tandem_images::normalize(&body, max_side, &limits)
            })
            .await?
            .map_err(ImageError::from)
    }

    /// Deletes the upload `key` (`avatars/<user>/<hash>.jpeg`) and its
    /// variants.
    pub async fn delete_upload(&self, key: &str) -> Result<(), tandem_store::StoreError> {
        self.store.delete(key).await?;
        self.forget_variants(&format!("uploads/{key}")).await
    }

    /// Deletes every upload under `prefix` (`avatars/<user>`) and their
    /// variants.
    pub async fn delete_uploads(&self, prefix: &str) -> Result<(), tandem_store::StoreError> {
        for object in self.store.list(prefix).await? {
            self.store.delete(&object.key).await?;
        }
        self.forget_variants(&format!("uploads/{prefix}")).await
    }

    /// Variants of `source` (or of every source under it) out of the store
    /// and this instance's memory.
    async fn forget_variants(&self, source: &str) -> Result<(), tandem_store::StoreError> {
        self.stored
            .delete_sources(self.store.as_ref(), source)
            .await?;
        if let Some(cache) = &self.cache {
            let (file, folder) = (format!("{source}|"), format!("{source}/"));
            let matched = cache
                .invalidate_entries_if(move |k, _| k.starts_with(&file) || k.starts_with(&folder));
            if let Err(e) = matched {
                tracing::warn!(error = %e, "could not drop cached image variants");
            }
        }
        Ok(())
    }
}
