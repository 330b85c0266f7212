//! The web app's static files, prepared once for edge caching: every asset
//! gets a content-hashed name (`app.3f9c….js`), with the relative imports
//! between modules rewritten to the hashed names (dependencies first, so a
//! change anywhere changes the hash of everything that imports it), and
//! brotli and gzip variants compressed up front. The HTML page references
//! the hashed names under `ASSET_PREFIX` (a CDN host) when one is set.
//!
//! No Node build step: this runs at start-up over the files compiled into
//! the binary.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

/// A JavaScript module of `web/`.
macro_rules! js {
    ($name:literal) => {
        (
            $name,
            "text/javascript; charset=utf-8",
            include_str!(concat!("../web/", $name)),
        )
    };
}

/// The sources: (name, content type, text). Names may have one folder
/// (`pages/`); imports between them are relative (`./x.js`, `../x.js`).
const SOURCES: &[(&str, &str, &str)] = &[
    js!("app.js"),
    js!("shell.js"),
    js!("api.js"),
    js!("analytics.js"),
    js!("images.js"),
    js!("jobs.js"),
    js!("realtime.js"),
    js!("times.js"),
    js!("call.js"),
    js!("pages/achievements.js"),
    js!("pages/auth.js"),
    js!("pages/coach.js"),
    js!("pages/devices.js"),
    js!("pages/partners.js"),
    js!("pages/profile.js"),
    js!("pages/queues.js"),
    js!("pages/room.js"),
    js!("pages/rooms.js"),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    ),
    ("logo.svg", "image/svg+xml", include_str!("../web/logo.svg")),
];

const INDEX: &str = include_str!("../web/index.html");

/// One representation-ready file.
#[derive(Debug)]
pub struct Asset {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The hash the name and ETags carry.
    pub hash: String,
    /// Uncompressed bytes.
    pub identity: Bytes,
    /// Brotli, if smaller.
    pub brotli: Option<Bytes>,
    /// Gzip, if smaller.
    pub gzip: Option<Bytes>,
}

/// A content encoding the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `br`.
    Brotli,
    /// `gzip`.
    Gzip,
    /// None.
    Identity,
}

impl Encoding {
    /// The `Content-Encoding` value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Brotli => Some("br"),
            Self::Gzip => Some("gzip"),
            Self::Identity => None,
        }
    }
}

impl Asset {
    fn new(content_type: &'static str, body: Vec<u8>) -> Self {
        let hash = short_hash(&body);
        let brotli = compress_brotli(&body).filter(|c| c.len() < body.len());
        let gzip = compress_gzip(&body).filter(|c| c.len() < body.len());
        Self {
            content_type,
            hash,
            identity: Bytes::from(body),
            brotli: brotli.map(Bytes::from),
            gzip: gzip.map(Bytes::from),
        }
    }

    /// The best variant for an `Accept-Encoding` header: its encoding and
    /// bytes.
    pub fn negotiate(&self, accept_encoding: Option<&str>) -> (Encoding, Bytes) {
        let accepted = |name| accept_encoding.is_some_and(|h| accepts(h, name));
        match (&self.brotli, &self.gzip) {
            (Some(br), _) if accepted("br") => (Encoding::Brotli, br.clone()),
            (_, Some(gz)) if accepted("gzip") => (Encoding::Gzip, gz.clone()),
            _ => (Encoding::Identity, self.identity.clone()),
        }
    }

    /// The strong ETag of one encoding's bytes.
    pub fn etag(&self, encoding: Encoding) -> String {
        match encoding.header() {
            Some(suffix) => format!("\"{}-{suffix}\"", self.hash),
            None => format!("\"{}\"", self.hash),
        }
    }
}

/// Whether an `Accept-Encoding` header accepts `name` (q > 0, or `*`).
fn accepts(header: &str, name: &str) -> bool {
    let mut star = false;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case(name) {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Brotli at its best quality, with a window just large enough for `bytes`:
/// the largest window (4 MiB) makes quality 11 allocate tens of MB for its
/// match finder, and a window beyond the input's size finds nothing more.
fn compress_brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let window = (usize::BITS - bytes.len().leading_zeros()).clamp(10, 24);
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, window);
        writer.write_all(bytes).ok()?;
    }
    Some(out)
}

fn compress_gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// The hashed file name: `app.js` → `app.<hash>.js`.
fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

/// Every asset by hashed name, plus the plain name → hashed name map.
#[derive(Debug)]
pub struct Bundle {
    /// Hashed name → asset.
    pub files: HashMap<String, Arc<Asset>>,
    /// Plain name → hashed name.
    pub names: HashMap<&'static str, String>,
}

/// Hashes the sources, dependencies first: an asset is hashed once every
/// asset it references as `./name` has been, with those references
/// rewritten to the hashed names. Built once per process.
pub fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let mut names: HashMap<&'static str, String> = HashMap::new();
        let mut files = HashMap::new();
        while names.len() < SOURCES.len() {
            let before = names.len();
            for (name, content_type, text) in SOURCES {
                if names.contains_key(name) {
                    continue;
                }
                let deps: Vec<&str> = SOURCES
                    .iter()
                    .map(|(other, _, _)| *other)
                    .filter(|other| other != name && text.contains(&format!("./{other}")))
                    .collect();
                if deps.iter().any(|d| !names.contains_key(d)) {
                    continue;
                }
                let mut body = (*text).to_owned();
                for dep in deps {
                    body = body.replace(&format!("./{dep}"), &format!("./{}", names[dep]));
                }
                let asset = Asset::new(content_type, body.into_bytes());
                let hashed = hashed_name(name, &asset.hash);
                files.insert(hashed.clone(), Arc::new(asset));
                names.insert(name, hashed);
            }
            // An import cycle would stop progress; hash what is left as is.
            if names.len() == before {
                for (name, content_type, text) in SOURCES {
                    if !names.contains_key(name) {
                        let asset = Asset::new(content_type, text.as_bytes().to_vec());
                        let hashed = hashed_name(name, &asset.hash);
                        files.insert(hashed.clone(), Arc::new(asset));
                        names.insert(name, hashed);
                    }
                }
            }
        }
        Bundle { files, names }
    })
}

/// The HTML page with asset URLs under `prefix` (`""` for same-origin), and
/// for the image loader the prefix and the variant widths the server makes
/// (`TANDEM_IMAGE_SIZES`) in `<meta>`s.
pub fn index_page(prefix: &str, image_sizes: &[u32]) -> Asset {
    let bundle = bundle();
    let sizes: Vec<String> = image_sizes.iter().map(u32::to_string).collect();
    let mut html = INDEX
        .replace(
            "<meta name=\"tandem-asset-prefix\" content=\"\">",
            &format!("<meta name=\"tandem-asset-prefix\" content=\"{prefix}\">"),
        )
        .replace(
            "<meta name=\"tandem-image-sizes\" content=\"\">",
            &format!(
                "<meta name=\"tandem-image-sizes\" content=\"{}\">",
                sizes.join(",")
            ),
        );
    for (name, hashed) in &bundle.names {
        html = html.replace(
            &format!("\"/assets/{name}\""),
            &format!("\"{prefix}/assets/{hashed}\""),
        );
    }
    Asset::new("text/html; charset=utf-8", html.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_point_at_hashed_names() {
        let bundle = bundle();
        let app = &bundle.files[&bundle.names["app.js"]];
        let text = std::str::from_utf8(&app.identity).expect("utf-8");
        for dep in ["api.js", "shell.js", "pages/rooms.js"] {
            assert!(
                text.contains(&format!("'./{}'", bundle.names[dep])),
                "{dep}"
            );
            assert!(!text.contains(&format!("'./{dep}'")), "{dep} not rewritten");
        }
        assert!(
            bundle.names["app.js"].starts_with("app.") && bundle.names["app.js"].ends_with(".js")
        );
    }

    /// `target` (`./x.js`, `../x.js`) as seen from the file `from`.
    fn resolve(from: &str, target: &str) -> String {
        let mut path: Vec<&str> = from.split('/').collect();
        path.pop();
        for part in target.split('/') {
            match part {
                "." => {}
                ".." => {
                    path.pop();
                }
                part => path.push(part),
            }
        }
        path.join("/")
    }

    #[test]
    fn every_relative_import_resolves_to_a_bundled_file() {
        let bundle = bundle();
        for (name, asset) in &bundle.files {
            let text = String::from_utf8_lossy(&asset.identity);
            for import in text.split(" from '").skip(1) {
                let target = import.split('\'').next().unwrap_or_default();
                let file = resolve(name, target);
                assert!(
                    bundle.files.contains_key(&file),
                    "{name} imports {target}, which is not a hashed file of the bundle"
                );
            }
        }
        let page = index_page("", &[64]);
        let html = String::from_utf8_lossy(&page.identity);
        for reference in html.split("\"/assets/").skip(1) {
            let target = reference.split('"').next().unwrap_or_default();
            assert!(
                bundle.files.contains_key(target),
                "the page links /assets/{target}"
            );
        }
    }

    #[test]
    fn the_page_references_assets_under_the_prefix_and_names_the_image_sizes() {
        let page = index_page("https://cdn.example.org", &[64, 128]);
        let html = std::str::from_utf8(&page.identity).expect("utf-8");
        let app = &bundle().names["app.js"];
        assert!(html.contains(&format!("\"https://cdn.example.org/assets/{app}\"")));
        assert!(!html.contains("\"/assets/"), "every asset URL rewritten");
        assert!(html.contains("<meta name=\"tandem-image-sizes\" content=\"64,128\">"));
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("br;q=0.5, gzip", "br"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(accepts("*", "gzip"));
        assert!(!accepts("*;q=0", "gzip"));
        assert!(!accepts("identity", "gzip"));
        assert!(accepts("GZIP", "gzip"));
        let asset = Asset::new(
            "text/plain",
            b"hello hello hello hello hello hello hello".repeat(20),
        );
        assert_eq!(asset.negotiate(Some("gzip, br")).0, Encoding::Brotli);
        assert_eq!(asset.negotiate(Some("gzip")).0, Encoding::Gzip);
        assert_eq!(asset.negotiate(None).0, Encoding::Identity);
        assert_ne!(asset.etag(Encoding::Brotli), asset.etag(Encoding::Gzip));
    }
}
