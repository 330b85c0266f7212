//! Cached read paths: every cache key, TTL and tag in one place (the
//! roadmap's table), and what each write must invalidate.

use std::time::Duration;

use tandem_db::{Profile, User};
use uuid::Uuid;

use crate::{ApiError, AppState};

/// User profile: 5 minutes (roadmap).
pub const USER_TTL: Duration = Duration::from_secs(5 * 60);

/// The tag of everything that shows user `id`'s profile.
pub fn user_tag(id: Uuid) -> String {
    format!("user:{id}")
}

/// A user and their profile, via the cache (`user:{id}`).
pub async fn profile(app: &AppState, id: Uuid) -> Result<Option<(User, Profile)>, ApiError> {
    let db = app.db.clone();
    let tag = user_tag(id);
    let profile = app
        .cache
        .get_or_load(&tag, USER_TTL, &[&tag], move || async move {
            db.profile(id).await
        })
        .await?;
    Ok(profile)
}

/// After a change to user `id`'s account or profile.
pub async fn user_changed(app: &AppState, id: Uuid) {
    app.cache.invalidate_tag(&user_tag(id)).await;
}
