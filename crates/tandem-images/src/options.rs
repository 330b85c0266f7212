//! Cloudflare Image Resizing options (`width=720,quality=80,format=auto`),
//! restricted to what the operator allows.

use std::fmt;

/// How the image fits the requested box (Cloudflare's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Fit inside the box, never enlarging (the default).
    ScaleDown,
    /// Fit inside the box, enlarging if needed.
    Contain,
    /// Fill the box exactly, cropping the overflow (centred).
    Cover,
    /// Like `cover`, but never enlarging.
    Crop,
    /// Fit inside the box and pad the rest (white) to exactly its size.
    Pad,
}

impl Fit {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scale-down" => Self::ScaleDown,
            "contain" => Self::Contain,
            "cover" => Self::Cover,
            "crop" => Self::Crop,
            "pad" => Self::Pad,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::ScaleDown => "scale-down",
            Self::Contain => "contain",
            Self::Cover => "cover",
            Self::Crop => "crop",
            Self::Pad => "pad",
        }
    }
}

/// The output format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// The best the client's `Accept` header allows (WebP, else JPEG, or
    /// PNG for images with transparency). Never AVIF: its encoder costs
    /// many times the CPU of WebP's, so it is made only when asked for by
    /// name.
    Auto,
    /// JPEG.
    Jpeg,
    /// Lossy WebP.
    Webp,
    /// PNG.
    Png,
    /// AVIF (lossy, rav1e).
    Avif,
}

impl OutputFormat {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "jpeg" | "jpg" | "baseline-jpeg" => Self::Jpeg,
            "webp" => Self::Webp,
            "png" => Self::Png,
            "avif" => Self::Avif,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
            Self::Png => "png",
            Self::Avif => "avif",
        }
    }
}

/// What an operator allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Allowed `width` and `height` values (before `dpr`).
    pub sizes: Vec<u32>,
    /// Allowed `quality` values.
    pub qualities: Vec<u8>,
    /// Quality when none is given.
    pub default_quality: u8,
    /// Largest `dpr`.
    pub max_dpr: u8,
}

impl Default for Policy {
    /// Next.js's `imageSizes` and `deviceSizes`, plus 720; qualities 50–90.
    fn default() -> Self {
        Self {
            sizes: vec![
                16, 32, 48, 64, 96, 128, 256, 384, 640, 720, 750, 828, 1080, 1200, 1920, 2048,
            ],
            qualities: vec![50, 60, 70, 75, 80, 85, 90],
            default_quality: 80,
            max_dpr: 3,
        }
    }
}

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Options {
    /// Box width in pixels (after `dpr`).
    pub width: Option<u32>,
    /// Box height in pixels (after `dpr`).
    pub height: Option<u32>,
    /// How to fit the box.
    pub fit: Fit,
    /// Encoder quality, 1–100.
    pub quality: u8,
    /// Output format.
    pub format: OutputFormat,
}

/// Why options were refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// An option this endpoint does not know.
    #[error("unknown option {0:?}")]
    Unknown(String),
    /// A value that does not parse.
    #[error("invalid value for {0}")]
    Invalid(&'static str),
    /// A size outside the allowed set.
    #[error("{name} must be one of {allowed}")]
    NotAllowed {
        /// The option.
        name: &'static str,
        /// The allowed values.
        allowed: String,
    },
    /// The same option twice.
    #[error("{0} given twice")]
    Repeated(&'static str),
}

fn list<T: fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Options {
    /// Parses comma-separated `key=value` options (Cloudflare's names and
    /// short forms `w`, `h`, `q`, `f`).
    pub fn parse(text: &str, policy: &Policy) -> Result<Self, OptionsError> {
        let mut width = None;
        let mut height = None;
        let mut fit = None;
        let mut quality = None;
        let mut format = None;
        let mut dpr = None;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| OptionsError::Unknown(part.chars().take(32).collect()))?;
            let (key, value) = (key.trim(), value.trim());
            fn set<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), OptionsError> {
                if slot.replace(v).is_some() {
                    return Err(OptionsError::Repeated(name));
                }
                Ok(())
            }
            match key {
                "width" | "w" => set(&mut width, "width", size(value, "width", policy)?)?,
                "height" | "h" => set(&mut height, "height", size(value, "height", policy)?)?,
                "fit" => set(
                    &mut fit,
                    "fit",
                    Fit::parse(value).ok_or(OptionsError::Invalid("fit"))?,
                )?,
                "quality" | "q" => {
                    let q: u8 = value
                        .parse()
                        .map_err(|_| OptionsError::Invalid("quality"))?;
                    if !policy.qualities.contains(&q) {
                        return Err(OptionsError::NotAllowed {
                            name: "quality",
                            allowed: list(&policy.qualities),
                        });
                    }
                    set(&mut quality, "quality", q)?;
                }
                "format" | "f" => set(
                    &mut format,
                    "format",
                    OutputFormat::parse(value).ok_or(OptionsError::Invalid("format"))?,
                )?,
                "dpr" => {
                    let d: u8 = value.parse().map_err(|_| OptionsError::Invalid("dpr"))?;
                    if d == 0 || d > policy.max_dpr {
                        return Err(OptionsError::NotAllowed {
                            name: "dpr",
                            allowed: format!("1 to {}", policy.max_dpr),
                        });
                    }
                    set(&mut dpr, "dpr", d)?;
                }
                // Accepted and ignored, as Cloudflare's loaders send them.
                "anim" | "metadata" | "onerror" => {}
                other => return Err(OptionsError::Unknown(other.chars().take(32).collect())),
            }
        }
        let dpr = u32::from(dpr.unwrap_or(1));
        Ok(Self {
            width: width.map(|w| w * dpr),
            height: height.map(|h| h * dpr),
            fit: fit.unwrap_or(Fit::ScaleDown),
            quality: quality.unwrap_or(policy.default_quality),
            format: format.unwrap_or(OutputFormat::Auto),
        })
    }

    /// A canonical spelling, the same for every equivalent request (the
    /// variant's cache key, with the source and the negotiated format), so
    /// spellings that make the same image share one stored variant: the
    /// fits that cannot differ for the sides given are one, and PNG, being
    /// lossless, has no quality.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        if let Some(w) = self.width {
            s.push_str(&format!("w={w},"));
        }
        if let Some(h) = self.height {
            s.push_str(&format!("h={h},"));
        }
        s.push_str(&format!("fit={}", self.effective_fit().name()));
        if self.format != OutputFormat::Png {
            s.push_str(&format!(",q={}", self.quality));
        }
        s.push_str(&format!(",f={}", self.format.name()));
        s
    }

    /// The fit that gives the same image: with no box every fit keeps the
    /// source's size; with one side, `cover` and `pad` scale like `contain`
    /// and `crop` like `scale-down`.
    fn effective_fit(&self) -> Fit {
        match (self.width, self.height, self.fit) {
            (Some(_), Some(_), fit) => fit,
            (None, None, _) => Fit::ScaleDown,
            (_, _, Fit::Contain | Fit::Cover | Fit::Pad) => Fit::Contain,
            (_, _, Fit::ScaleDown | Fit::Crop) => Fit::ScaleDown,
        }
    }
}

fn size(value: &str, name: &'static str, policy: &Policy) -> Result<u32, OptionsError> {
    let n: u32 = value.parse().map_err(|_| OptionsError::Invalid(name))?;
    if policy.sizes.contains(&n) {
        Ok(n)
    } else {
        Err(OptionsError::NotAllowed {
            name,
            allowed: list(&policy.sizes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudflare_syntax_parses() {
        let p = Policy::default();
        let o = Options::parse("width=720,quality=80,format=webp", &p).expect("valid");
        assert_eq!(o.width, Some(720));
        assert_eq!(o.quality, 80);
        assert_eq!(o.format, OutputFormat::Webp);
        assert_eq!(o.fit, Fit::ScaleDown);
        let short = Options::parse("w=720,q=80,f=webp", &p).expect("valid");
        assert_eq!(o, short);
        assert_eq!(o.canonical(), short.canonical());
        let d = Options::parse("w=128,h=128,fit=cover,dpr=2,format=auto", &p).expect("valid");
        assert_eq!(
            (d.width, d.height, d.fit),
            (Some(256), Some(256), Fit::Cover)
        );
        assert_eq!(Options::parse("", &p).expect("empty").quality, 80);
    }

    #[test]
    fn sizes_and_qualities_are_restricted() {
        let p = Policy::default();
        assert!(matches!(
            Options::parse("width=721", &p),
            Err(OptionsError::NotAllowed { name: "width", .. })
        ));
        assert!(matches!(
            Options::parse("quality=81", &p),
            Err(OptionsError::NotAllowed {
                name: "quality",
                ..
            })
        ));
        assert!(Options::parse("dpr=4", &p).is_err());
        assert!(Options::parse("width=abc", &p).is_err());
        assert!(Options::parse("width=720,width=640", &p).is_err());
        assert!(Options::parse("blur=50", &p).is_err());
        assert!(Options::parse("fit=stretch", &p).is_err());
        assert!(Options::parse("format=gif", &p).is_err());
        assert!(Options::parse("width", &p).is_err());
    }

    #[test]
    fn equivalent_requests_share_a_key() {
        let p = Policy::default();
        let key = |t: &str| Options::parse(t, &p).expect("valid").canonical();
        // PNG is lossless: quality makes no difference.
        assert_eq!(
            key("w=256,f=png,q=50"),
            key("width=256,format=png,quality=90")
        );
        assert_ne!(key("w=256,f=webp,q=50"), key("w=256,f=webp,q=90"));
        // With one side, cover and pad scale like contain, crop like scale-down.
        assert_eq!(key("w=256,fit=cover"), key("w=256,fit=contain"));
        assert_eq!(key("w=256,fit=pad"), key("w=256,fit=contain"));
        assert_eq!(key("h=256,fit=crop"), key("h=256"));
        assert_eq!(key("fit=pad"), key(""));
        assert_ne!(key("w=256,h=256,fit=cover"), key("w=256,h=256,fit=contain"));
        // dpr folds into the sizes.
        assert_eq!(key("w=128,dpr=2"), key("w=256"));
        // Options Cloudflare's loaders send that change nothing.
        assert_eq!(key("w=256,anim=false,metadata=none"), key("w=256"));
    }
}
