//! The API's own types for what the repositories also hold: profiles, study
//! rooms, members, achievements, chat messages and archive runs. Handlers
//! convert rows into these, so renaming a column or a Rust field in
//! `tandem-db` never silently changes the public API (and `tandem-db` needs
//! no HTTP or OpenAPI crate). The OpenAPI document is generated from these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_db as db;
use utoipa::ToSchema;
use uuid::Uuid;

/// The same variants on both sides, converted both ways.
macro_rules! mirror {
    ($api:ident <=> $row:path { $($variant:ident),* $(,)? }) => {
        impl From<$row> for $api {
            fn from(value: $row) -> Self {
                match value {
                    $(<$row>::$variant => Self::$variant,)*
                }
            }
        }

        impl From<$api> for $row {
            fn from(value: $api) -> Self {
                match value {
                    $($api::$variant => Self::$variant,)*
                }
            }
        }
    };
}

/// How far along a student is in their subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Just starting out.
    Beginner,
    /// Comfortable with the basics.
    Intermediate,
    /// Deep in the subject.
    Advanced,
}

mirror!(Level <=> db::Level { Beginner, Intermediate, Advanced });

/// How a student likes to study with a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StudyStyle {
    /// Quiet co-working, cameras on, little talk.
    Quiet,
    /// Explaining and discussing problems together.
    Discussion,
    /// A mix of both.
    Mixed,
}

mirror!(StudyStyle <=> db::StudyStyle { Quiet, Discussion, Mixed });

/// Day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

mirror!(Weekday <=> db::Weekday { Mon, Tue, Wed, Thu, Fri, Sat, Sun });

/// A time of day with minute precision, written `"HH:MM"` (00:00–24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "18:30")]
pub struct TimeOfDay(pub db::TimeOfDay);

/// A weekly slot when the student is usually free, in their own timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityWindow {
    /// Day of the week.
    pub day: Weekday,
    /// Start time, inclusive.
    pub start: TimeOfDay,
    /// End time, exclusive; after `start`.
    pub end: TimeOfDay,
}

impl From<db::AvailabilityWindow> for AvailabilityWindow {
    fn from(w: db::AvailabilityWindow) -> Self {
        Self {
            day: w.day.into(),
            start: TimeOfDay(w.start),
            end: TimeOfDay(w.end),
        }
    }
}

impl From<AvailabilityWindow> for db::AvailabilityWindow {
    fn from(w: AvailabilityWindow) -> Self {
        Self {
            day: w.day.into(),
            start: w.start.0,
            end: w.end.0,
        }
    }
}

/// The study profile partners are matched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    /// Subjects the student studies, as typed by them.
    pub subjects: Vec<String>,
    /// Overall level.
    pub level: Option<Level>,
    /// Free-text goals ("pass the bar exam in June").
    pub goals: String,
    /// Preferred way of studying together.
    pub study_style: Option<StudyStyle>,
    /// IANA timezone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Weekly availability in `timezone`.
    pub availability: Vec<AvailabilityWindow>,
    /// Short self-description.
    pub bio: String,
    /// Avatar image URL, if any.
    pub avatar_url: Option<String>,
    /// Last profile change.
    pub updated_at: DateTime<Utc>,
}

impl From<db::Profile> for Profile {
    fn from(p: db::Profile) -> Self {
        Self {
            subjects: p.subjects,
            level: p.level.map(Into::into),
            goals: p.goals,
            study_style: p.study_style.map(Into::into),
            timezone: p.timezone,
            availability: p.availability.into_iter().map(Into::into).collect(),
            bio: p.bio,
            avatar_url: p.avatar_url,
            updated_at: p.updated_at,
        }
    }
}

/// A study session: a scheduled room students meet in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = StudySession)]
pub struct Room {
    /// Session id.
    pub id: Uuid,
    /// Who scheduled it (always a member, with role `owner`).
    pub owner_id: Uuid,
    /// Short title.
    pub title: String,
    /// Subject studied.
    pub subject: String,
    /// Optional agenda.
    pub description: String,
    /// Start time.
    pub starts_at: DateTime<Utc>,
    /// End time (after `starts_at`).
    pub ends_at: DateTime<Utc>,
    /// Maximum number of members, owner included.
    pub capacity: i32,
    /// `scheduled` or `cancelled`.
    pub status: String,
    /// Current number of members.
    pub member_count: i64,
    /// When it was scheduled.
    pub created_at: DateTime<Utc>,
}

impl From<db::Room> for Room {
    fn from(s: db::Room) -> Self {
        Self {
            id: s.id,
            owner_id: s.owner_id,
            title: s.title,
            subject: s.subject,
            description: s.description,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            capacity: s.capacity,
            status: s.status.as_str().to_owned(),
            member_count: s.member_count,
            created_at: s.created_at,
        }
    }
}

/// Rooms as the API lists them.
pub fn rooms(rows: Vec<db::Room>) -> Vec<Room> {
    rows.into_iter().map(Room::from).collect()
}

/// A member of a study session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Member {
    /// The member.
    pub user_id: Uuid,
    /// Their display name.
    pub display_name: String,
    /// `owner` or `member`.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

impl From<db::Member> for Member {
    fn from(m: db::Member) -> Self {
        Self {
            user_id: m.user_id,
            display_name: m.display_name,
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

/// An achievement anyone can earn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Achievement {
    /// Stable id, e.g. `streak-3`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it is earned.
    pub description: String,
    /// An emoji.
    pub icon: String,
}

impl From<db::Achievement> for Achievement {
    fn from(a: db::Achievement) -> Self {
        Self {
            id: a.id,
            name: a.name,
            description: a.description,
            icon: a.icon,
        }
    }
}

/// A chat message in a study session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChatMessage {
    /// Message id (UUID v7: ordered by time).
    pub id: Uuid,
    /// The study session.
    pub session_id: Uuid,
    /// The author (`null` once their account is deleted).
    pub user_id: Option<Uuid>,
    /// The author's display name at read time.
    pub display_name: Option<String>,
    /// The text.
    pub body: String,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

impl From<db::ChatMessage> for ChatMessage {
    fn from(m: db::ChatMessage) -> Self {
        Self {
            id: m.id,
            session_id: m.session_id,
            user_id: m.user_id,
            display_name: m.display_name,
            body: m.body,
            created_at: m.created_at,
        }
    }
}

/// One archive run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveRun {
    /// Run id.
    pub id: Uuid,
    /// `schedule`, `cron` (the endpoint) or `cli`.
    pub trigger: String,
    /// For scheduled runs, the slot (`2026-11-29T03:00:00Z`) it ran for.
    pub slot: Option<String>,
    /// Whether it only reported what it would do.
    pub dry_run: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End, once over.
    pub finished_at: Option<DateTime<Utc>>,
    /// Objects written.
    pub objects: i64,
    /// Rows archived.
    pub rows: i64,
    /// Bytes written.
    pub bytes: i64,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<db::ArchiveRun> for ArchiveRun {
    fn from(r: db::ArchiveRun) -> Self {
        Self {
            id: r.id,
            trigger: r.trigger,
            slot: r.slot,
            dry_run: r.dry_run,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            objects: r.objects,
            rows: r.rows,
            bytes: r.bytes,
            error: r.error,
        }
    }
}
