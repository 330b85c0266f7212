//! Output geometry per `fit`, checked against the output limits before
//! anything is allocated: `fit=contain` with one side given scales both, so
//! a 1×1024 source asked for at 6144 px wide would otherwise be 6 million
//! pixels tall.

use crate::options::{Fit, Options, OutputFormat};
use crate::transform::{Limits, TransformError};

/// What to make of a source of a given size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The size the source region is resized to.
    pub resized: (u32, u32),
    /// The source region used (left, top, width, height).
    pub region: (f64, f64, f64, f64),
    /// The final image: `resized`, or the `fit=pad` box around it.
    pub output: (u32, u32),
}

impl Plan {
    /// Pixels of the largest buffer the plan needs.
    pub fn pixels(&self) -> u64 {
        let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
        area(self.resized).max(area(self.output))
    }
}

/// The plan for a `sw`×`sh` (upright) source, or why the result would be
/// too large: every buffer of the plan is within `limits`' output pixel
/// budget and side cap (and the smaller AVIF budget for AVIF).
pub fn plan(sw: u32, sh: u32, options: &Options, limits: &Limits) -> Result<Plan, TransformError> {
    if sw == 0 || sh == 0 {
        return Err(TransformError::Corrupt("the image has no pixels".into()));
    }
    let (sw_f, sh_f) = (f64::from(sw), f64::from(sh));
    let whole = (0.0, 0.0, sw_f, sh_f);
    // Float to integer casts saturate: a huge scale cannot wrap around.
    let scale_to = |scale: f64| {
        (
            (sw_f * scale).round().max(1.0) as u64,
            (sh_f * scale).round().max(1.0) as u64,
        )
    };
    let fit_scale = match (options.width, options.height) {
        (Some(w), Some(h)) => (f64::from(w) / sw_f).min(f64::from(h) / sh_f),
        (Some(w), None) => f64::from(w) / sw_f,
        (None, Some(h)) => f64::from(h) / sh_f,
        (None, None) => 1.0,
    };
    let (resized, region) = match (options.fit, options.width, options.height) {
        (Fit::Cover, Some(w), Some(h)) => cover(sw_f, sh_f, w, h),
        (Fit::Crop, Some(w), Some(h)) if sw >= w && sh >= h => cover(sw_f, sh_f, w, h),
        (Fit::Contain | Fit::Cover | Fit::Pad, _, _) => (scale_to(fit_scale), whole),
        (Fit::ScaleDown | Fit::Crop, _, _) => (scale_to(fit_scale.min(1.0)), whole),
    };
    let output = match (options.fit, options.width, options.height) {
        (Fit::Pad, Some(bw), Some(bh)) => (u64::from(bw), u64::from(bh)),
        _ => resized,
    };
    let resized = within(resized, options, limits)?;
    let output = within(output, options, limits)?;
    Ok(Plan {
        resized,
        region,
        output,
    })
}

/// `(w, h)` as pixel sizes, if within the limits for `options`' format.
fn within(
    (w, h): (u64, u64),
    options: &Options,
    limits: &Limits,
) -> Result<(u32, u32), TransformError> {
    let pixels = w.saturating_mul(h);
    if options.format == OutputFormat::Avif && pixels > limits.max_avif_pixels {
        return Err(TransformError::AvifTooLarge {
            width: w,
            height: h,
            max_pixels: limits.max_avif_pixels,
        });
    }
    let side = u64::from(limits.max_output_side);
    match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w32), Ok(h32)) if pixels <= limits.max_output_pixels && w <= side && h <= side => {
            Ok((w32, h32))
        }
        _ => Err(TransformError::OutputTooLarge {
            width: w,
            height: h,
            max_pixels: limits.max_output_pixels,
            max_side: limits.max_output_side,
        }),
    }
}

/// Fills `w`×`h`, cropping the source's overflow around its centre.
fn cover(sw: f64, sh: f64, w: u32, h: u32) -> ((u64, u64), (f64, f64, f64, f64)) {
    let target = f64::from(w) / f64::from(h);
    let (cw, ch) = if sw / sh > target {
        (sh * target, sh)
    } else {
        (sw, sw / target)
    };
    (
        (u64::from(w), u64::from(h)),
        ((sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Policy;

    fn options(text: &str) -> Options {
        Options::parse(text, &Policy::default()).expect("valid options")
    }

    #[test]
    fn one_side_with_contain_cannot_make_a_giant() {
        let limits = Limits::default();
        // The abort: a 1×1024 avatar at width=2048,dpr=3,fit=contain
        // asked for 6144 × 6,291,456 pixels.
        for fit in ["contain", "cover", "pad"] {
            let o = options(&format!("width=2048,dpr=3,fit={fit}"));
            match plan(1, 1024, &o, &limits) {
                Err(TransformError::OutputTooLarge { width, height, .. }) => {
                    assert_eq!((width, height), (6144, 6_291_456), "{fit}");
                }
                other => panic!("{fit}: {other:?}"),
            }
        }
        // Over the side cap, though under the pixel budget.
        let o = options("height=2048,dpr=3,fit=contain");
        assert!(matches!(
            plan(2000, 1, &o, &limits),
            Err(TransformError::OutputTooLarge { .. })
        ));
        // Scale-down never enlarges, so it always fits.
        let o = options("width=2048,dpr=3");
        assert_eq!(plan(1, 1024, &o, &limits).expect("fits").output, (1, 1024));
    }

    #[test]
    fn boxes_over_the_budget_are_refused_and_avif_has_its_own() {
        let limits = Limits::default();
        let o = options("width=2048,height=2048,dpr=3,fit=pad");
        assert!(matches!(
            plan(100, 100, &o, &limits),
            Err(TransformError::OutputTooLarge { .. })
        ));
        let o = options("width=2048,height=2048,fit=cover");
        assert_eq!(
            plan(100, 100, &o, &limits).expect("4 MP").output,
            (2048, 2048)
        );
        let o = options("width=2048,fit=contain,format=avif");
        assert!(matches!(
            plan(1024, 768, &o, &limits),
            Err(TransformError::AvifTooLarge { .. })
        ));
        let o = options("width=720,format=avif");
        assert_eq!(
            plan(1024, 768, &o, &limits).expect("fits").output,
            (720, 540)
        );
    }
}
