//! `GET /cdn-cgi/image/<options>/<source>`: Cloudflare Image Resizing's URL
//! scheme, so the roadmap's Cloudflare loader URLs work against Tandem
//! directly or through Cloudflare. Sources are local only: the web app's
//! assets (`assets/<name>`) and uploads (`uploads/<key>`).

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tandem_images::{Options, OutputFormat};

use crate::{ApiError, Config, Limits, Media, assets, extract::ClientInfo, images::ImageError};

/// Long-lived: hashed assets never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Uploads are named by their hash too, but are deleted with their account
/// or when replaced: a CDN edge or browser may keep a copy this long after.
pub const UPLOADS: &str = "public, max-age=86400";
/// Plain asset names may change with a deploy.
const A_DAY: &str = "public, max-age=86400";

/// The resized variant of a local image.
pub async fn image(
    State(config): State<Arc<Config>>,
    State(limits): State<Limits>,
    State(media): State<Media>,
    Path((options, source)): Path<(String, String)>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Response {
    let options = match Options::parse(&options, &media.images.policy) {
        Ok(options) => options,
        Err(e) => return ApiError::BadRequest(e.to_string()).into_response(),
    };
    let (source, cache_control) = match locate(&source) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    // The source is read, and the client charged for a new variant, only
    // when the variant is in neither cache.
    let bytes = load(&media, &source);
    let max = config.images.create_per_minute;
    let allow = allow_new(&limits, max, client.ip);
    let variant = match media
        .images
        .variant(&source, bytes, allow, &options, accept)
        .await
    {
        Ok(variant) => variant,
        Err(e) => return ApiError::from(&*e).into_response(),
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

/// The source's canonical name (a plain asset name becomes its hashed
/// name, so a deploy that changes the asset changes the variant's key) and
/// how long its variants may be cached; or why it is refused.
fn locate(source: &str) -> Result<(String, &'static str), ApiError> {
    if let Some(name) = source.strip_prefix("assets/") {
        let bundle = assets::bundle();
        if bundle.files.contains_key(name) {
            return Ok((source.to_owned(), IMMUTABLE));
        }
        return match bundle.names.get(name) {
            Some(hashed) => Ok((format!("assets/{hashed}"), A_DAY)),
            None => Err(ApiError::NotFound("image")),
        };
    }
    if let Some(key) = source.strip_prefix("uploads/") {
        if tandem_store::validate_key(key).is_err() {
            return Err(ApiError::BadRequest("Invalid image path.".into()));
        }
        return Ok((source.to_owned(), UPLOADS));
    }
    Err(ApiError::BadRequest(
        "Only local images can be resized: /assets/… or /uploads/….".into(),
    ))
}

/// The bytes of a source [`locate`] accepted.
async fn load(media: &Media, source: &str) -> Result<Bytes, ImageError> {
    if let Some(name) = source.strip_prefix("assets/") {
        let asset = assets::bundle()
            .files
            .get(name)
            .ok_or(ImageError::NoSource)?;
        return Ok(asset.identity.clone());
    }
    let key = source.strip_prefix("uploads/").unwrap_or(source);
    match media.store.get(key).await {
        Ok(found) => found.ok_or(ImageError::NoSource),
        Err(e) => {
            tracing::error!(error = %e, "object store read failed");
            Err(ImageError::Unavailable(
                "storage is unavailable; try again".into(),
            ))
        }
    }
}

/// Charges `ip` one new variant (`TANDEM_IMAGE_CREATE_PER_MINUTE`).
async fn allow_new(limits: &Limits, max: u32, ip: std::net::IpAddr) -> Result<(), ImageError> {
    match limits
        .check(&format!("image:create:{ip}"), max, Duration::from_secs(60))
        .await
    {
        Ok(()) => Ok(()),
        Err(ApiError::RateLimited(after)) => Err(ImageError::RateLimited(after)),
        Err(e) => {
            tracing::warn!(error = %e, "image rate limit unavailable");
            Err(ImageError::Unavailable("rate limiter unavailable".into()))
        }
    }
}
