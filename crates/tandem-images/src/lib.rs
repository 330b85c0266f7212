//! Image resizing for Tandem's CDN origin.
//!
//! [`options`] parses Cloudflare's `/cdn-cgi/image/<options>/` syntax and
//! holds requests to a configured set of widths and qualities (as Next.js
//! does), so nobody can mint unlimited variants; [`transform`] sniffs the
//! source's real type from its bytes, refuses oversized, animated or
//! decompression-bomb sources before decoding them, applies the EXIF
//! orientation, resizes with SIMD convolution (Lanczos3) and encodes JPEG,
//! lossy WebP (libwebp) or PNG, so no metadata survives.

pub mod options;
pub mod transform;

pub use options::{Fit, Options, OptionsError, OutputFormat, Policy};
pub use transform::{Limits, Output, TransformError, normalize, sniff, transform};
