//! Cached read paths: every cache key, TTL and tag in one place (the
//! roadmap's table), and what each write must invalidate.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_db::{Database, Profile, Room, User};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ApiError, achievements, api::Achievement, state::Data};

/// User profile: 5 minutes.
pub const USER_TTL: Duration = Duration::from_secs(5 * 60);
/// Study sessions lists: 2 minutes.
pub const SESSIONS_TTL: Duration = Duration::from_secs(2 * 60);
/// Achievements: 30 minutes.
pub const ACHIEVEMENTS_TTL: Duration = Duration::from_secs(30 * 60);
/// Static configuration: 1 hour.
pub const CONFIG_TTL: Duration = Duration::from_secs(60 * 60);

/// Upcoming sessions shown to everyone (`sessions:upcoming`).
const UPCOMING_KEY: &str = "sessions:upcoming";
/// How many upcoming sessions the browse list shows.
const UPCOMING_LIMIT: i64 = 100;

/// The tag of everything that shows user `id`'s profile.
pub fn user_tag(id: Uuid) -> String {
    format!("user:{id}")
}

/// A user and their profile (`user:{id}`).
pub async fn profile(data: &Data, id: Uuid) -> Result<Option<(User, Profile)>, ApiError> {
    let reader = data.clone();
    let tag = user_tag(id);
    let key = tag.clone();
    let loaded = data
        .cache
        .get_or_load(&tag, USER_TTL, &[&tag], move || async move {
            reader
                .read_for_cache(&[&key], |db| async move { db.profile(id).await })
                .await
        })
        .await?;
    Ok(loaded)
}

/// After a change to user `id`'s account or profile.
pub async fn user_changed(data: &Data, id: Uuid) {
    let tag = user_tag(id);
    data.changed(&[&tag]).await;
    data.cache.invalidate_tag(&tag).await;
}

/// Scheduled sessions not over yet, soonest first (`sessions:upcoming`).
pub async fn upcoming_rooms(data: &Data) -> Result<Vec<Room>, ApiError> {
    let reader = data.clone();
    let now = data.clock.now();
    let mut loaded: Vec<Room> = data
        .cache
        .get_or_load(UPCOMING_KEY, SESSIONS_TTL, &[], move || async move {
            reader
                .read_for_cache(&[UPCOMING_KEY], |db| async move {
                    db.upcoming_rooms(now, UPCOMING_LIMIT).await
                })
                .await
        })
        .await?;
    // The list may be up to 2 minutes old: drop sessions that ended since.
    let now = data.clock.now();
    loaded.retain(|s| s.ends_at > now);
    Ok(loaded)
}

/// The sessions a user belongs to (`sessions:{userId}`).
pub async fn my_rooms(data: &Data, user_id: Uuid) -> Result<Vec<Room>, ApiError> {
    let reader = data.clone();
    let key = format!("sessions:{user_id}");
    let mark = key.clone();
    let loaded = data
        .cache
        .get_or_load(&key, SESSIONS_TTL, &[], move || async move {
            reader
                .read_for_cache(
                    &[&mark],
                    |db| async move { db.rooms_of(user_id, 200).await },
                )
                .await
        })
        .await?;
    Ok(loaded)
}

/// After a session's schedule or membership changed: the browse list and
/// the lists and achievements of everyone in it (`members`, plus anyone who
/// just left) are stale.
pub async fn room_changed(data: &Data, members: &[Uuid]) {
    let lists: Vec<String> = members.iter().map(|u| format!("sessions:{u}")).collect();
    let keys: Vec<&str> = lists
        .iter()
        .map(String::as_str)
        .chain([UPCOMING_KEY])
        .collect();
    data.changed(&keys).await;
    let stale: Vec<String> = members
        .iter()
        .flat_map(|u| [format!("sessions:{u}"), format!("achievements:{u}")])
        .chain([UPCOMING_KEY.to_owned()])
        .collect();
    // Together: with Redis they share round trips instead of queuing one
    // after another (a room of 20 means 41 invalidations).
    futures_util::future::join_all(stale.iter().map(|key| data.cache.invalidate(key))).await;
}

/// An achievement and, if earned, when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AchievementStatus {
    /// The achievement.
    #[serde(flatten)]
    pub achievement: Achievement,
    /// When it was earned; `null` if not yet.
    pub earned_at: Option<DateTime<Utc>>,
}

/// The catalog with my progress (`achievements:{userId}`). Loading it first
/// awards whatever my sessions have earned since the last load: a write, so
/// it runs on the primary.
pub async fn achievements(data: &Data, user_id: Uuid) -> Result<Vec<AchievementStatus>, ApiError> {
    let db = data.db.clone();
    let now = data.clock.now();
    let timezone = profile(data, user_id)
        .await?
        .and_then(|(_, p)| chrono_tz::Tz::from_str(&p.timezone).ok())
        .unwrap_or(chrono_tz::UTC);
    let loaded = data
        .cache
        .get_or_load(
            &format!("achievements:{user_id}"),
            ACHIEVEMENTS_TTL,
            &[],
            move || async move { award_and_list(db.as_ref(), user_id, now, timezone).await },
        )
        .await?;
    Ok(loaded)
}

async fn award_and_list(
    db: &dyn Database,
    user_id: Uuid,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
) -> Result<Vec<AchievementStatus>, tandem_db::DbError> {
    let sessions = db.rooms_of(user_id, 10_000).await?;
    for (id, at) in achievements::earned(user_id, &sessions, now, timezone) {
        if db.award(user_id, id, at).await? {
            tracing::info!(%user_id, achievement = id, "achievement earned");
        }
    }
    let earned = db.earned_achievements(user_id).await?;
    Ok(db
        .achievements()
        .await?
        .into_iter()
        .map(|achievement| AchievementStatus {
            earned_at: earned
                .iter()
                .find(|(id, _)| *id == achievement.id)
                .map(|(_, at)| *at),
            achievement: achievement.into(),
        })
        .collect())
}

/// A public configuration value (`config:{key}`).
pub async fn config(data: &Data, key: &str) -> Result<Option<serde_json::Value>, ApiError> {
    let reader = data.clone();
    let cache_key = format!("config:{key}");
    let (owned, mark) = (key.to_owned(), cache_key.clone());
    // JSON values are stored as text: MessagePack cannot round-trip arbitrary JSON.
    let loaded: Option<String> = data
        .cache
        .get_or_load(&cache_key, CONFIG_TTL, &[], move || async move {
            reader
                .read_for_cache(&[&mark], |db| {
                    let owned = owned.clone();
                    async move { Ok(db.config_value(&owned).await?.map(|v| v.to_string())) }
                })
                .await
        })
        .await?;
    Ok(loaded.and_then(|text| serde_json::from_str(&text).ok()))
}
