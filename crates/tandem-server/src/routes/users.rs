//! My account and other students' public profiles.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tandem_db::User;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    Accounts, ApiError, Data, Media,
    api::{AvailabilityWindow, Level, Profile, StudyStyle},
    error::Problem,
    extract::{ApiJson, ApiPath, Authenticated},
    reads,
    routes::auth::clear_cookie,
    validate::{self, Errors, ProfileInput},
};

/// The logged-in user: account and study profile.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// User id.
    pub id: Uuid,
    /// E-mail address (only ever shown to its owner).
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
    /// Account creation time.
    pub created_at: DateTime<Utc>,
    /// Study profile.
    pub profile: Profile,
    /// Whether this account may see the operators' pages (`tandem admin grant`).
    pub admin: bool,
}

impl Me {
    fn new(user: User, profile: tandem_db::Profile) -> Self {
        Self {
            admin: user.admin,
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            created_at: user.created_at,
            profile: profile.into(),
        }
    }

    /// Loads the account and profile of `user_id`.
    pub async fn load(data: &Data, user_id: Uuid) -> Result<Self, ApiError> {
        let (user, profile) = reads::profile(data, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Self::new(user, profile))
    }
}

/// What other students see of a user.
#[derive(Serialize, ToSchema)]
pub struct PublicUser {
    /// User id.
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// Member since.
    pub created_at: DateTime<Utc>,
    /// Study profile.
    pub profile: Profile,
}

/// A partial profile update; absent fields stay as they are, `null` clears
/// the nullable ones.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1–50 characters.
    display_name: Option<String>,
    /// Up to 20 subjects of up to 60 characters.
    subjects: Option<Vec<String>>,
    /// Overall level, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(nullable)]
    level: Option<Option<Level>>,
    /// Up to 1000 characters.
    goals: Option<String>,
    /// Preferred study style, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(nullable)]
    study_style: Option<Option<StudyStyle>>,
    /// IANA timezone name.
    timezone: Option<String>,
    /// Up to 42 weekly windows.
    availability: Option<Vec<AvailabilityWindow>>,
    /// Up to 2000 characters.
    bio: Option<String>,
    /// https:// image address, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(nullable)]
    avatar_url: Option<Option<String>>,
}

/// Tells "absent" (`None`, via `default`) from "null" (`Some(None)`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Confirms account deletion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The account's password.
    password: String,
}

/// My account and profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(data): State<Data>, auth: Authenticated) -> Result<axum::Json<Me>, ApiError> {
    Ok(axum::Json(Me::load(&data, auth.user_id()).await?))
}

/// Edits my profile. Every field is checked before anything is written.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", request_body = ProfilePatch,
    responses((status = 200, body = Me), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn update_me(
    State(data): State<Data>,
    auth: Authenticated,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<axum::Json<Me>, ApiError> {
    let mut errors = Errors::default();
    let mut update = validate::profile(
        ProfileInput {
            display_name: patch.display_name,
            subjects: patch.subjects,
            goals: patch.goals,
            timezone: patch.timezone,
            availability: patch
                .availability
                .map(|windows| windows.into_iter().map(Into::into).collect()),
            bio: patch.bio,
            avatar_url: patch.avatar_url,
        },
        &mut errors,
    );
    errors.finish()?;
    update.level = patch.level.map(|level| level.map(Into::into));
    update.study_style = patch.study_style.map(|style| style.map(Into::into));
    let (user, profile) = data
        .db
        .update_profile(auth.user_id(), &update, data.clock.now())
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    reads::user_changed(&data, user.id).await;
    Ok(axum::Json(Me::new(user, profile)))
}

/// Deletes my account, its profile, memberships and sessions.
#[utoipa::path(delete, path = "/api/users/me", tag = "users", request_body = DeleteAccountRequest,
    responses((status = 204, description = "Deleted; logged out everywhere"),
        (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn delete_me(
    State(accounts): State<Accounts>,
    State(media): State<Media>,
    auth: Authenticated,
    ApiJson(req): ApiJson<DeleteAccountRequest>,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    accounts
        .delete(auth.user_id(), req.password, &media)
        .await?;
    Ok((StatusCode::NO_CONTENT, clear_cookie(&accounts)))
}

/// Another student's public profile (no e-mail). Requires login.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = PublicUser), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn public_profile(
    State(data): State<Data>,
    _auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<PublicUser>, ApiError> {
    let (user, profile) = reads::profile(&data, id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(axum::Json(PublicUser {
        id: user.id,
        display_name: user.display_name,
        created_at: user.created_at,
        profile: profile.into(),
    }))
}
