//! Row shapes shared by both engines and their conversion into models.

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::types::Json;
use uuid::Uuid;

use crate::models::{AuthSession, AvailabilityWindow, Profile, User};

/// Stores a unit enum as its serde name (`Level::Beginner` → `"beginner"`).
pub(crate) fn enum_to_text<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Reads a unit enum back; unknown text (from a newer version) reads as `None`.
pub(crate) fn enum_from_text<T: DeserializeOwned>(text: Option<String>) -> Option<T> {
    text.and_then(|t| serde_json::from_value(serde_json::Value::String(t)).ok())
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub subjects: Json<Vec<String>>,
    pub level: Option<String>,
    pub goals: String,
    pub study_style: Option<String>,
    pub timezone: String,
    pub availability: Json<Vec<AvailabilityWindow>>,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProfileRow> for (User, Profile) {
    fn from(r: ProfileRow) -> Self {
        let profile = Profile {
            subjects: r.subjects.0,
            level: enum_from_text(r.level),
            goals: r.goals,
            study_style: enum_from_text(r.study_style),
            timezone: r.timezone,
            availability: r.availability.0,
            bio: r.bio,
            avatar_url: r.avatar_url,
            updated_at: r.updated_at,
        };
        (r.user.into(), profile)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl From<SessionRow> for AuthSession {
    fn from(r: SessionRow) -> Self {
        AuthSession {
            id: r.id,
            user_id: r.user_id,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            user_agent: r.user_agent,
            ip: r.ip,
        }
    }
}
