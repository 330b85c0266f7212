//! Uploads: avatars in, originals out. An upload's type is sniffed from its
//! bytes (never the file name or `Content-Type`), it is decoded under the
//! image limits, re-encoded without metadata (EXIF, GPS) and stored in the
//! object store under a content-addressed key; nothing is stored unless all
//! of that succeeds. The decoding runs on the image pool, within its memory
//! budget. A new avatar deletes the one it replaces, variants included.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tandem_db::ProfileUpdate;
use utoipa::ToSchema;

use crate::{ApiError, Config, Data, Limits, Media, error::Problem, extract::Authenticated, reads};

/// Longest side kept of an avatar.
const AVATAR_SIDE: u32 = 1024;

/// Where the new avatar lives.
#[derive(Serialize, ToSchema)]
pub struct AvatarUploaded {
    /// `/uploads/avatars/<user>/<hash>.<ext>`, resizable through `/cdn-cgi/image/`.
    avatar_url: String,
}

/// Replaces my avatar with the image in the request body (JPEG, PNG, WebP
/// or a still GIF, up to `TANDEM_UPLOAD_MAX_BYTES`).
#[utoipa::path(put, path = "/api/users/me/avatar", tag = "users",
    request_body(content = Vec<u8>, content_type = "image/*"),
    responses((status = 201, body = AvatarUploaded), (status = 401, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn upload_avatar(
    State(config): State<Arc<Config>>,
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(media): State<Media>,
    auth: Authenticated,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<AvatarUploaded>), ApiError> {
    let user = auth.user_id();
    limits
        .check(&format!("upload:{user}"), 20, Duration::from_secs(3600))
        .await?;
    let normalized = media
        .images
        .normalize_upload(body, config.images.upload_max_bytes, AVATAR_SIDE)
        .await?;
    let hash: String = Sha256::digest(&normalized.bytes)[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let extension = normalized.format.name();
    let key = format!("avatars/{user}/{hash}.{extension}");
    media
        .store
        .put(&key, Bytes::from(normalized.bytes))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("storing an avatar: {e}")))?;
    let avatar_url = format!("/uploads/{key}");
    let previous = data
        .db
        .profile(user)
        .await?
        .and_then(|(_, profile)| profile.avatar_url);
    let update = ProfileUpdate {
        avatar_url: Some(Some(avatar_url.clone())),
        ..ProfileUpdate::default()
    };
    data.db
        .update_profile(user, &update, data.clock.now())
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    reads::user_changed(&data, user).await;
    // The replaced upload goes, with its variants (another account's or an
    // external URL is never touched).
    let own = format!("/uploads/avatars/{user}/");
    if let Some(old) = previous.filter(|old| old.starts_with(&own) && *old != avatar_url)
        && let Some(old_key) = old.strip_prefix("/uploads/")
        && let Err(e) = media.images.delete_upload(old_key).await
    {
        tracing::warn!(error = %e, key = old_key, "could not delete a replaced avatar");
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(AvatarUploaded { avatar_url }),
    ))
}

/// An uploaded original (`/uploads/<key>`): content-addressed, but cached
/// for a day only, since it is deleted with its account.
pub async fn original(State(media): State<Media>, Path(key): Path<String>) -> Response {
    if tandem_store::validate_key(&key).is_err() {
        return ApiError::NotFound("upload").into_response();
    }
    match media.store.get(&key).await {
        Ok(Some(bytes)) => {
            let content_type = tandem_images::sniff(&bytes)
                .map_or("application/octet-stream", |f| f.to_mime_type());
            let mut response = bytes.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(super::images::UPLOADS),
            );
            response
        }
        Ok(None) => ApiError::NotFound("upload").into_response(),
        Err(e) => ApiError::Unavailable(format!("object store read: {e}")).into_response(),
    }
}
