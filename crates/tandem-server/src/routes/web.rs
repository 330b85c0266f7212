//! The web app shell, as a CDN origin: the page (`no-cache` + ETag) and the
//! content-hashed assets (`immutable` for a year), each in brotli, gzip or
//! plain as the client accepts, with `Vary: Accept-Encoding` and 304s for
//! matching `If-None-Match`. Built from files compiled into the binary
//! ([`crate::assets`]), so `tandem serve` needs nothing else on disk.

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    ApiError, AppState, Page,
    assets::{self, Asset},
};

/// A year: hashed names never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `/` and `/assets/{file}` (`file` may be in a folder: `pages/rooms.<hash>.js`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*file}", get(asset))
}

async fn index(State(page): State<Page>, headers: HeaderMap) -> Response {
    let mut response = respond(&page.index, &headers, "no-cache");
    if let Ok(csp) = HeaderValue::from_str(&page.csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let bundle = assets::bundle();
    if let Some(asset) = bundle.files.get(&file) {
        return respond(asset, &headers, IMMUTABLE);
    }
    // The plain name still works (old pages, bookmarks), revalidated.
    match bundle
        .names
        .get(file.as_str())
        .and_then(|hashed| bundle.files.get(hashed))
    {
        Some(asset) => respond(asset, &headers, "no-cache"),
        None => ApiError::NotFound("asset").into_response(),
    }
}

/// Whether the request's `If-None-Match` names `etag` (weakly) or `*`.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

/// The negotiated variant, or 304 when the client's copy is current.
fn respond(asset: &Asset, headers: &HeaderMap, cache_control: &'static str) -> Response {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let (encoding, body) = asset.negotiate(accept);
    let etag = asset.etag(encoding);
    let mut response = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut ok = body.into_response();
        ok.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if let Some(coding) = encoding.header() {
            ok.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        ok
    };
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Module scripts from a CDN host are fetched with CORS.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    response
}
