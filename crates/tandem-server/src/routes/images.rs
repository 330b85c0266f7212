//! `GET /cdn-cgi/image/<options>/<source>`: Cloudflare Image Resizing's URL
//! scheme, so the roadmap's Cloudflare loader URLs work against Tandem
//! directly or through Cloudflare. Sources are local only: the web app's
//! assets (`assets/<name>`) and uploads (`uploads/<key>`).

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tandem_images::{Options, OutputFormat, TransformError};

use crate::{AppState, assets, error::problem, images::ImageError};

/// Long-lived: sources are content-addressed (hashed assets, uploads named
/// by their hash).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Plain asset names may change with a deploy.
const A_DAY: &str = "public, max-age=86400";

/// The resized variant of a local image.
pub async fn image(
    State(app): State<AppState>,
    Path((options, source)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let options = match Options::parse(&options, &app.images.policy) {
        Ok(options) => options,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some((bytes, cache_control)) = (match load(&app, &source).await {
        Ok(found) => found,
        Err(response) => return response,
    }) else {
        return problem(StatusCode::NOT_FOUND, "No such image.");
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let variant = match app.images.variant(&source, bytes, &options, accept).await {
        Ok(variant) => variant,
        Err(e) => return refused(&e),
    };
    if super::web::not_modified(&headers, &variant.etag) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = variant.bytes.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(variant.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if options.format == OutputFormat::Auto {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if let Ok(etag) = HeaderValue::from_str(&variant.etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

/// The source's bytes and how long its variants may be cached; `None` when
/// there is no such source.
async fn load(app: &AppState, source: &str) -> Result<Option<(Bytes, &'static str)>, Response> {
    if let Some(name) = source.strip_prefix("assets/") {
        let bundle = assets::bundle();
        if let Some(asset) = bundle.files.get(name) {
            return Ok(Some((asset.identity.clone(), IMMUTABLE)));
        }
        let plain = bundle.names.get(name).and_then(|h| bundle.files.get(h));
        return Ok(plain.map(|a| (a.identity.clone(), A_DAY)));
    }
    if let Some(key) = source.strip_prefix("uploads/") {
        if tandem_store::validate_key(key).is_err() {
            return Err(problem(StatusCode::BAD_REQUEST, "Invalid image path."));
        }
        return match app.store.get(key).await {
            Ok(found) => Ok(found.map(|bytes| (bytes, IMMUTABLE))),
            Err(e) => {
                tracing::error!(error = %e, "object store read failed");
                Err(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Storage is unavailable; try again.",
                ))
            }
        };
    }
    Err(problem(
        StatusCode::BAD_REQUEST,
        "Only local images can be resized: /assets/… or /uploads/….",
    ))
}

fn refused(error: &ImageError) -> Response {
    let status = match error {
        ImageError::Transform(TransformError::Unsupported) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ImageError::Transform(TransformError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        ImageError::Transform(
            TransformError::TooManyPixels { .. }
            | TransformError::Animated
            | TransformError::Corrupt(_),
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        ImageError::Transform(TransformError::Encode(_)) | ImageError::Unavailable(_) => {
            tracing::error!(%error, "image transform failed");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The image could not be produced; try again.",
            );
        }
    };
    problem(status, error.to_string())
}
