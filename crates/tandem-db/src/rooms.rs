//! Study rooms, their members and chat, achievements and public app
//! configuration: the repository traits and their SQL, shared by both
//! engines (see `engine.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Achievement, ChatMessage, DbError, JoinOutcome, Member, NewRoom, Room};

/// Study sessions (rooms) and their members.
#[async_trait]
pub trait RoomRepo: Send + Sync {
    /// Creates a session with its owner as first member, unless the owner
    /// already runs `max_upcoming` scheduled sessions not over at the
    /// session's `created_at` (then `None`). Checked and inserted under a
    /// lock on the owner, so concurrent requests cannot pass the limit.
    async fn create_room(
        &self,
        session: &NewRoom,
        max_upcoming: i64,
    ) -> Result<Option<Room>, DbError>;
    /// One session.
    async fn room(&self, id: Uuid) -> Result<Option<Room>, DbError>;
    /// Scheduled sessions not yet over, soonest first.
    async fn upcoming_rooms(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Room>, DbError>;
    /// Sessions `user_id` belongs to (any state), latest start first.
    async fn rooms_of(&self, user_id: Uuid, limit: i64) -> Result<Vec<Room>, DbError>;
    /// Members of a session, earliest first.
    async fn members(&self, id: Uuid) -> Result<Vec<Member>, DbError>;
    /// Joins atomically: never beyond capacity, never a closed session.
    async fn join_room(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<JoinOutcome, DbError>;
    /// Leaves (owners cannot leave, they cancel); false if not a member.
    async fn leave_room(&self, id: Uuid, user_id: Uuid) -> Result<bool, DbError>;
    /// Cancels a scheduled session of `owner_id`; false otherwise.
    async fn cancel_room(
        &self,
        id: Uuid,
        owner_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError>;
}

/// The achievement catalog and who earned what.
#[async_trait]
pub trait AchievementRepo: Send + Sync {
    /// The whole catalog.
    async fn achievements(&self) -> Result<Vec<Achievement>, DbError>;
    /// `(achievement id, earned at)` for a user.
    async fn earned_achievements(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DbError>;
    /// Awards once; false if already earned.
    async fn award(
        &self,
        user_id: Uuid,
        achievement_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DbError>;
}

/// Chat messages of study sessions.
#[async_trait]
pub trait ChatRepo: Send + Sync {
    /// Stores a message; returns it with the author's name.
    async fn insert_message(
        &self,
        id: Uuid,
        session_id: Uuid,
        user_id: Uuid,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<ChatMessage, DbError>;
    /// Up to `limit` messages older than `before` (newest first).
    async fn messages(
        &self,
        session_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ChatMessage>, DbError>;
}

/// Public app configuration.
#[async_trait]
pub trait ConfigRepo: Send + Sync {
    /// The JSON value stored under `key`.
    async fn config_value(&self, key: &str) -> Result<Option<serde_json::Value>, DbError>;
}

/// Implements [`crate::RoomRepo`], [`crate::AchievementRepo`] and
/// [`crate::ConfigRepo`] for a struct with a `pool` field.
macro_rules! impl_room_repos {
    ($db:ty) => {
        const STUDY_SESSION_SELECT: &str = "SELECT s.id, s.owner_id, s.title, s.subject, \
             s.description, s.starts_at, s.ends_at, s.capacity, s.status, s.created_at, \
             (SELECT count(*) FROM study_session_members m WHERE m.session_id = s.id) AS member_count \
             FROM study_sessions s";

        #[async_trait::async_trait]
        impl $crate::RoomRepo for $db {
            async fn create_room(
                &self,
                s: &$crate::NewRoom,
                max_upcoming: i64,
            ) -> Result<Option<$crate::Room>, $crate::DbError> {
                let mut tx = self.pool.begin().await?;
                // A no-op write to the owner's row: PostgreSQL's row lock
                // (SQLite's write lock) serializes this owner's creations
                // until commit, so the count below cannot go stale.
                sqlx::query("UPDATE users SET id = id WHERE id = $1")
                    .bind(s.owner_id)
                    .execute(&mut *tx)
                    .await?;
                let upcoming: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM study_sessions \
                     WHERE owner_id = $1 AND status = 'scheduled' AND ends_at > $2",
                )
                .bind(s.owner_id)
                .bind(s.created_at)
                .fetch_one(&mut *tx)
                .await?;
                if upcoming >= max_upcoming {
                    return Ok(None);
                }
                sqlx::query(
                    "INSERT INTO study_sessions (id, owner_id, title, subject, description, \
                     starts_at, ends_at, capacity, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', $9, $9)",
                )
                .bind(s.id)
                .bind(s.owner_id)
                .bind(&s.title)
                .bind(&s.subject)
                .bind(&s.description)
                .bind(s.starts_at)
                .bind(s.ends_at)
                .bind(s.capacity)
                .bind(s.created_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO study_session_members (session_id, user_id, role, joined_at) \
                     VALUES ($1, $2, 'owner', $3)",
                )
                .bind(s.id)
                .bind(s.owner_id)
                .bind(s.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some($crate::Room {
                    id: s.id,
                    owner_id: s.owner_id,
                    title: s.title.clone(),
                    subject: s.subject.clone(),
                    description: s.description.clone(),
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    capacity: s.capacity,
                    status: $crate::RoomStatus::Scheduled,
                    member_count: 1,
                    created_at: s.created_at,
                }))
            }

            async fn room(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::Room>, $crate::DbError> {
                let sql = format!("{STUDY_SESSION_SELECT} WHERE s.id = $1");
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn upcoming_rooms(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<$crate::Room>, $crate::DbError> {
                let sql = format!(
                    "{STUDY_SESSION_SELECT} WHERE s.status = 'scheduled' AND s.ends_at > $1 \
                     ORDER BY s.starts_at, s.id LIMIT $2"
                );
                Ok(sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn rooms_of(
                &self,
                user_id: uuid::Uuid,
                limit: i64,
            ) -> Result<Vec<$crate::Room>, $crate::DbError> {
                let sql = format!(
                    "{STUDY_SESSION_SELECT} JOIN study_session_members me \
                     ON me.session_id = s.id AND me.user_id = $1 \
                     ORDER BY s.starts_at DESC, s.id LIMIT $2"
                );
                Ok(sqlx::query_as(&sql).bind(user_id).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn members(
                &self,
                id: uuid::Uuid,
            ) -> Result<Vec<$crate::Member>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT m.user_id, u.display_name, m.role, m.joined_at \
                     FROM study_session_members m JOIN users u ON u.id = m.user_id \
                     WHERE m.session_id = $1 ORDER BY m.joined_at, m.user_id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn join_room(
                &self,
                id: uuid::Uuid,
                user_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::JoinOutcome, $crate::DbError> {
                use $crate::JoinOutcome;
                let mut tx = self.pool.begin().await?;
                // Locks the session row (PostgreSQL) or takes the write lock
                // (SQLite) first, so concurrent joins cannot overfill it.
                let found = sqlx::query("UPDATE study_sessions SET updated_at = updated_at WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if found.rows_affected() == 0 {
                    return Ok(JoinOutcome::NotFound);
                }
                let (status, ends_at, capacity, members, is_member): (String, chrono::DateTime<chrono::Utc>, i32, i64, bool) =
                    sqlx::query_as(
                        "SELECT s.status, s.ends_at, s.capacity, \
                         (SELECT count(*) FROM study_session_members m WHERE m.session_id = s.id), \
                         EXISTS (SELECT 1 FROM study_session_members m WHERE m.session_id = s.id AND m.user_id = $2) \
                         FROM study_sessions s WHERE s.id = $1",
                    )
                    .bind(id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let outcome = if status != $crate::RoomStatus::Scheduled.as_str() || ends_at <= now {
                    JoinOutcome::Closed
                } else if is_member {
                    JoinOutcome::AlreadyMember
                } else if members >= i64::from(capacity) {
                    JoinOutcome::Full
                } else {
                    sqlx::query(
                        "INSERT INTO study_session_members (session_id, user_id, role, joined_at) \
                         VALUES ($1, $2, 'member', $3)",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    JoinOutcome::Joined
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn leave_room(
                &self,
                id: uuid::Uuid,
                user_id: uuid::Uuid,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query(
                    "DELETE FROM study_session_members \
                     WHERE session_id = $1 AND user_id = $2 AND role = 'member'",
                )
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn cancel_room(
                &self,
                id: uuid::Uuid,
                owner_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query(
                    "UPDATE study_sessions SET status = 'cancelled', updated_at = $3 \
                     WHERE id = $1 AND owner_id = $2 AND status = 'scheduled'",
                )
                .bind(id)
                .bind(owner_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait::async_trait]
        impl $crate::AchievementRepo for $db {
            async fn achievements(&self) -> Result<Vec<$crate::Achievement>, $crate::DbError> {
                Ok(sqlx::query_as("SELECT id, name, description, icon FROM achievements ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn earned_achievements(
                &self,
                user_id: uuid::Uuid,
            ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT achievement_id, earned_at FROM user_achievements WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn award(
                &self,
                user_id: uuid::Uuid,
                achievement_id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query(
                    "INSERT INTO user_achievements (user_id, achievement_id, earned_at) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(achievement_id)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait::async_trait]
        impl $crate::ChatRepo for $db {
            async fn insert_message(
                &self,
                id: uuid::Uuid,
                session_id: uuid::Uuid,
                user_id: uuid::Uuid,
                body: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::ChatMessage, $crate::DbError> {
                sqlx::query(
                    "INSERT INTO chat_messages (id, session_id, user_id, body, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(session_id)
                .bind(user_id)
                .bind(body)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(sqlx::query_as(
                    "SELECT c.id, c.session_id, c.user_id, u.display_name, c.body, c.created_at \
                     FROM chat_messages c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = $1",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn messages(
                &self,
                session_id: uuid::Uuid,
                before: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<$crate::ChatMessage>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT c.id, c.session_id, c.user_id, u.display_name, c.body, c.created_at \
                     FROM chat_messages c LEFT JOIN users u ON u.id = c.user_id \
                     WHERE c.session_id = $1 AND ($2 IS NULL OR c.id < $2) \
                     ORDER BY c.id DESC LIMIT $3",
                )
                .bind(session_id)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::ConfigRepo for $db {
            async fn config_value(
                &self,
                key: &str,
            ) -> Result<Option<serde_json::Value>, $crate::DbError> {
                let row: Option<(sqlx::types::Json<serde_json::Value>,)> =
                    sqlx::query_as("SELECT value FROM app_config WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(v,)| v.0))
            }
        }
    };
}

pub(crate) use impl_room_repos;
