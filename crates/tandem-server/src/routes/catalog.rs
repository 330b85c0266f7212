//! Achievements and public app configuration.

use axum::extract::State;

use crate::{
    ApiError, Data,
    error::Problem,
    extract::{ApiPath, Authenticated},
    reads::{self, AchievementStatus},
};

/// Every achievement, with the ones I earned (awarded from my study sessions).
#[utoipa::path(get, path = "/api/achievements", tag = "achievements",
    responses((status = 200, body = Vec<AchievementStatus>), (status = 401, body = Problem)))]
pub async fn achievements(
    State(data): State<Data>,
    auth: Authenticated,
) -> Result<axum::Json<Vec<AchievementStatus>>, ApiError> {
    Ok(axum::Json(
        reads::achievements(&data, auth.user_id()).await?,
    ))
}

/// Public app configuration: `subjects`, `levels`, `study-styles`, `limits`.
#[utoipa::path(get, path = "/api/config/{key}", tag = "config",
    params(("key" = String, Path, description = "Configuration key")),
    responses((status = 200, description = "The JSON value"), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
pub async fn config(
    State(data): State<Data>,
    ApiPath(key): ApiPath<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let well_formed = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(ApiError::BadRequest(
            "Configuration keys are 1–64 lower-case letters, digits and dashes.".into(),
        ));
    }
    reads::config(&data, &key)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("configuration key"))
}
