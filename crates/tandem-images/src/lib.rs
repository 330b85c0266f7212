//! Image resizing for Tandem's CDN origin.
//!
//! [`options`] parses Cloudflare's `/cdn-cgi/image/<options>/` syntax and
//! holds requests to a configured set of widths and qualities (as Next.js
//! does), so nobody can mint unlimited variants; [`decode`] sniffs the
//! source's real type from its bytes and refuses oversized, animated or
//! decompression-bomb sources before decoding them; [`geometry`] plans the
//! output and refuses one over the output limits before anything is
//! allocated; [`transform`] applies the EXIF orientation, resizes with SIMD
//! convolution (Lanczos3) and encodes JPEG, lossy WebP (libwebp), PNG or
//! AVIF, so no metadata survives. [`budget`] keeps stored variants within a
//! size budget, least recently used first out.

pub mod budget;
pub mod decode;
pub mod geometry;
pub mod options;
pub mod transform;

pub use decode::{Probe, probe, sniff};
pub use geometry::{Plan, plan};
pub use options::{Fit, Options, OptionsError, OutputFormat, Policy};
pub use transform::{Limits, Output, TransformError, normalize, transform};
