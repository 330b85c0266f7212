//! Row shapes that need conversion before they are models (JSON columns,
//! enums stored as text). Simple rows decode straight into the models.

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::types::Json;

use crate::models::{AvailabilityWindow, Profile, User};

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
pub(crate) struct ProfileRow {
    #[sqlx(flatten)]
    pub user: User,
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
        (r.user, profile)
    }
}
