//! Domain records as the repositories hand them out.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// An account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    /// Stable public id.
    pub id: Uuid,
    /// Normalized (trimmed, lower-case) e-mail address.
    pub email: String,
    /// Name shown to other students.
    pub display_name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Whether an operator granted this account the admin pages.
    #[serde(default)]
    #[sqlx(rename = "is_admin", default)]
    pub admin: bool,
}

/// What login needs: the user id and the stored argon2id hash.
#[derive(Clone)]
pub struct Credentials {
    /// Whose credentials these are.
    pub user_id: Uuid,
    /// PHC-formatted argon2id hash.
    pub password_hash: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// A new account to insert; its profile starts empty.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Id chosen by the caller (UUID v7: time-ordered).
    pub id: Uuid,
    /// Normalized e-mail address.
    pub email: String,
    /// PHC-formatted argon2id hash.
    pub password_hash: String,
    /// Name shown to other students.
    pub display_name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// How far along a student is in their subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Just starting out.
    Beginner,
    /// Comfortable with the basics.
    Intermediate,
    /// Deep in the subject.
    Advanced,
}

/// How a student likes to study with a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudyStyle {
    /// Quiet co-working, cameras on, little talk.
    Quiet,
    /// Explaining and discussing problems together.
    Discussion,
    /// A mix of both.
    Mixed,
}

/// Day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A time of day with minute precision, written `"HH:MM"` (00:00–24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Parses `"HH:MM"`; `"24:00"` is allowed as the end of a day.
    pub fn parse(text: &str) -> Option<Self> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (24, 0) => Some(Self(24 * 60)),
            (0..=23, 0..=59) => Some(Self(h * 60 + m)),
            _ => None,
        }
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", self.0 / 60, self.0 % 60))
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid time {text:?}, expected \"HH:MM\""))
        })
    }
}

/// A weekly slot when the student is usually free, in their own timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityWindow {
    /// Day of the week.
    pub day: Weekday,
    /// Start time, inclusive.
    pub start: TimeOfDay,
    /// End time, exclusive; after `start`.
    pub end: TimeOfDay,
}

/// The study profile partners are matched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A partial profile update: `None` leaves a field unchanged; for nullable
/// fields `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub level: Option<Option<Level>>,
    pub goals: Option<String>,
    pub study_style: Option<Option<StudyStyle>>,
    pub timezone: Option<String>,
    pub availability: Option<Vec<AvailabilityWindow>>,
    pub bio: Option<String>,
    pub avatar_url: Option<Option<String>>,
}

/// A server-side login session. The id is the SHA-256 of the cookie token,
/// so it can be shown to its owner (device list) without exposing the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuthSession {
    /// Hex SHA-256 of the cookie token.
    pub id: String,
    /// Who is logged in.
    pub user_id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last request seen (updated at most once per touch interval).
    pub last_seen_at: DateTime<Utc>,
    /// Absolute expiry, fixed at login.
    pub expires_at: DateTime<Utc>,
    /// Browser's User-Agent at login, truncated.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<String>,
}

/// A study session: a scheduled room students meet in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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
    /// Whether it still takes place.
    #[sqlx(try_from = "String")]
    pub status: RoomStatus,
    /// Current number of members.
    pub member_count: i64,
    /// When it was scheduled.
    pub created_at: DateTime<Utc>,
}

/// A value the database holds that this build does not know (a newer
/// build's, or a hand edit): the row cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?} in the database")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
}

/// Text-backed enums: stored as their lower-case names (the SQL schema
/// constrains the column to the same set).
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident ($what:literal) { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The stored (and serialized) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;

            fn try_from(value: String) -> Result<Self, UnknownValue> {
                match value.as_str() {
                    $($text => Ok(Self::$variant),)*
                    _ => Err(UnknownValue { what: $what, value }),
                }
            }
        }
    };
}

text_enum!(
    /// Whether a study session still takes place.
    RoomStatus ("room status") {
        /// It takes place as scheduled.
        Scheduled = "scheduled",
        /// Its owner cancelled it.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// What a member is to a study session.
    MemberRole ("member role") {
        /// Scheduled it; may cancel it.
        Owner = "owner",
        /// Joined it.
        Member = "member",
    }
);

/// A study session to create.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct NewRoom {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub subject: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub created_at: DateTime<Utc>,
}

/// A member of a study session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Member {
    /// The member.
    pub user_id: Uuid,
    /// Their display name.
    pub display_name: String,
    /// Owner or member.
    #[sqlx(try_from = "String")]
    pub role: MemberRole,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// Result of trying to join a study session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Now a member.
    Joined,
    /// Was a member already.
    AlreadyMember,
    /// No seats left.
    Full,
    /// Cancelled or already over.
    Closed,
    /// No such session.
    NotFound,
}

/// An achievement anyone can earn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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

/// A chat message in a study session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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
