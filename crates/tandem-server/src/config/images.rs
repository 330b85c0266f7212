//! Images: uploads, and the sizes, memory, storage and rates of
//! `/cdn-cgi/image/` variants.

use tandem_images::{Limits, Policy};

use super::{ConfigError, Env};

/// The image service's settings.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// `TANDEM_UPLOAD_MAX_BYTES`: largest image upload (avatars).
    pub upload_max_bytes: usize,
    /// `TANDEM_IMAGE_SIZES`: widths and heights `/cdn-cgi/image/` accepts.
    pub sizes: Vec<u32>,
    /// `TANDEM_IMAGE_QUALITIES`: qualities `/cdn-cgi/image/` accepts.
    pub qualities: Vec<u8>,
    /// `TANDEM_IMAGE_CACHE_MB`: memory for resized variants (0: no cache
    /// and no coalescing; for benchmarks).
    pub cache_mb: u64,
    /// `TANDEM_IMAGE_MAX_PIXELS`: largest image `/cdn-cgi/image/` makes
    /// (8,192 px a side at most; AVIF 1 megapixel).
    pub max_pixels: u64,
    /// `TANDEM_IMAGE_VARIANT_BUDGET_MB`: object-store space for resized
    /// variants; past it the least recently used are deleted.
    pub variant_budget_mb: u64,
    /// `TANDEM_IMAGE_MEMORY_MB`: pixel memory image jobs (variants and
    /// uploads) may hold at once.
    pub memory_mb: u32,
    /// `TANDEM_IMAGE_QUEUE`: image jobs waiting or running before requests
    /// get 503.
    pub queue: usize,
    /// `TANDEM_IMAGE_CREATE_PER_MINUTE`: new variants one client IP may
    /// have made per minute (cached ones are free).
    pub create_per_minute: u32,
}

impl ImageSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let policy = Policy::default();
        Ok(Self {
            upload_max_bytes: env.parse("TANDEM_UPLOAD_MAX_BYTES", 5 << 20, "expected bytes")?,
            sizes: env.list("TANDEM_IMAGE_SIZES", policy.sizes)?,
            qualities: env.list("TANDEM_IMAGE_QUALITIES", policy.qualities)?,
            cache_mb: env.parse("TANDEM_IMAGE_CACHE_MB", 32, "expected megabytes")?,
            max_pixels: env.count(
                "TANDEM_IMAGE_MAX_PIXELS",
                Limits::default().max_output_pixels,
            )?,
            variant_budget_mb: env.count("TANDEM_IMAGE_VARIANT_BUDGET_MB", 1024)?,
            memory_mb: env.count("TANDEM_IMAGE_MEMORY_MB", 512)?,
            queue: env.count("TANDEM_IMAGE_QUEUE", 32)?,
            create_per_minute: env.count("TANDEM_IMAGE_CREATE_PER_MINUTE", 60)?,
        })
    }

    /// The sizes and qualities `/cdn-cgi/image/` accepts.
    pub fn policy(&self) -> Policy {
        Policy {
            sizes: self.sizes.clone(),
            qualities: self.qualities.clone(),
            ..Policy::default()
        }
    }
}
