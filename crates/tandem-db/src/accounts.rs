//! Accounts: users, their study profiles and (for deployments without
//! Redis) their login sessions; the repository traits and their SQL, shared
//! by both engines (see `engine.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AuthSession, Credentials, DbError, NewUser, Profile, ProfileUpdate, User};

/// Accounts and study profiles.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Inserts a user and an empty profile. [`DbError::Conflict`] if the e-mail is taken.
    async fn create_user(&self, user: &NewUser) -> Result<User, DbError>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, DbError>;
    /// Login data for a normalized e-mail.
    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, DbError>;
    /// Login data for a user id (password change, account deletion).
    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, DbError>;
    /// Grants (`true`) or takes back the admin pages for the account with
    /// this normalized e-mail; false if there is no such account.
    async fn set_admin(&self, email: &str, admin: bool) -> Result<bool, DbError>;
    /// The e-mail addresses of the accounts with the admin pages.
    async fn admins(&self) -> Result<Vec<String>, DbError>;
    /// Replaces the password hash.
    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbError>;
    /// Deletes the account and everything that cascades from it. False if absent.
    async fn delete_user(&self, id: Uuid) -> Result<bool, DbError>;
    /// A user with their study profile.
    async fn profile(&self, id: Uuid) -> Result<Option<(User, Profile)>, DbError>;
    /// Applies a partial update atomically and returns the new state.
    async fn update_profile(
        &self,
        id: Uuid,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, Profile)>, DbError>;
}

/// Login sessions, for deployments without Redis.
#[async_trait]
pub trait AuthSessionRepo: Send + Sync {
    /// Stores a new session.
    async fn insert_session(&self, session: &AuthSession) -> Result<(), DbError>;
    /// Loads a session by its (hashed) id.
    async fn session(&self, id: &str) -> Result<Option<AuthSession>, DbError>;
    /// Records activity for the idle timeout.
    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), DbError>;
    /// Deletes one session of `user_id`; false if there was no such session.
    async fn delete_session(&self, user_id: Uuid, id: &str) -> Result<bool, DbError>;
    /// Every stored session of a user, newest first.
    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<AuthSession>, DbError>;
    /// Deletes all of a user's sessions except `keep`; returns how many went.
    async fn delete_sessions_for_user(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
    ) -> Result<u64, DbError>;
    /// Purges sessions past their absolute expiry or idle since `idle_before`.
    async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, DbError>;
}

/// Implements [`UserRepo`] and [`AuthSessionRepo`] for a struct with a
/// `pool` field.
macro_rules! impl_account_repos {
    ($db:ty) => {
        const USER_COLUMNS: &str = "u.id, u.email, u.display_name, u.created_at, u.is_admin";
        const PROFILE_SELECT: &str = "SELECT u.id, u.email, u.display_name, u.created_at, u.is_admin, \
             p.subjects, p.level, p.goals, p.study_style, p.timezone, p.availability, \
             p.bio, p.avatar_url, p.updated_at \
             FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1";
        const SESSION_COLUMNS: &str =
            "id, user_id, created_at, last_seen_at, expires_at, user_agent, ip";

        #[async_trait::async_trait]
        impl $crate::UserRepo for $db {
            async fn create_user(
                &self,
                user: &$crate::NewUser,
            ) -> Result<$crate::User, $crate::DbError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(user.id)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(&user.display_name)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await
                .map_err($crate::conflict_as("an account with this e-mail"))?;
                sqlx::query("INSERT INTO profiles (user_id, updated_at) VALUES ($1, $2)")
                    .bind(user.id)
                    .bind(user.created_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::User {
                    id: user.id,
                    email: user.email.clone(),
                    display_name: user.display_name.clone(),
                    created_at: user.created_at,
                    admin: false,
                })
            }

            async fn user_by_id(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::User>, $crate::DbError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
                let row: Option<$crate::User> =
                    sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                Ok(row)
            }

            async fn credentials_by_email(
                &self,
                email: &str,
            ) -> Result<Option<$crate::Credentials>, $crate::DbError> {
                let row: Option<(uuid::Uuid, String)> =
                    sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
                        .bind(email)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(user_id, password_hash)| $crate::Credentials {
                    user_id,
                    password_hash,
                }))
            }

            async fn credentials_by_id(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::Credentials>, $crate::DbError> {
                let row: Option<(uuid::Uuid, String)> =
                    sqlx::query_as("SELECT id, password_hash FROM users WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(user_id, password_hash)| $crate::Credentials {
                    user_id,
                    password_hash,
                }))
            }

            async fn set_admin(
                &self,
                email: &str,
                admin: bool,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query("UPDATE users SET is_admin = $2 WHERE email = $1")
                    .bind(email)
                    .bind(admin)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn admins(&self) -> Result<Vec<String>, $crate::DbError> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT email FROM users WHERE is_admin ORDER BY email")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|(email,)| email).collect())
            }

            async fn set_password_hash(
                &self,
                id: uuid::Uuid,
                hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::DbError> {
                sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_user(&self, id: uuid::Uuid) -> Result<bool, $crate::DbError> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn profile(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<($crate::User, $crate::Profile)>, $crate::DbError> {
                let row: Option<$crate::rows::ProfileRow> = sqlx::query_as(PROFILE_SELECT)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn update_profile(
                &self,
                id: uuid::Uuid,
                u: &$crate::ProfileUpdate,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<($crate::User, $crate::Profile)>, $crate::DbError> {
                use $crate::rows::enum_to_text;
                use sqlx::types::Json;
                let mut tx = self.pool.begin().await?;
                let changed = sqlx::query(
                    "UPDATE users SET display_name = COALESCE($2, display_name), updated_at = $3 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(u.display_name.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if changed.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE profiles SET \
                       subjects = COALESCE($2, subjects), \
                       level = CASE WHEN $3 THEN $4 ELSE level END, \
                       goals = COALESCE($5, goals), \
                       study_style = CASE WHEN $6 THEN $7 ELSE study_style END, \
                       timezone = COALESCE($8, timezone), \
                       availability = COALESCE($9, availability), \
                       bio = COALESCE($10, bio), \
                       avatar_url = CASE WHEN $11 THEN $12 ELSE avatar_url END, \
                       updated_at = $13 \
                     WHERE user_id = $1",
                )
                .bind(id)
                .bind(u.subjects.as_ref().map(Json))
                .bind(u.level.is_some())
                .bind(u.level.flatten().as_ref().and_then(enum_to_text))
                .bind(u.goals.as_deref())
                .bind(u.study_style.is_some())
                .bind(u.study_style.flatten().as_ref().and_then(enum_to_text))
                .bind(u.timezone.as_deref())
                .bind(u.availability.as_ref().map(Json))
                .bind(u.bio.as_deref())
                .bind(u.avatar_url.is_some())
                .bind(u.avatar_url.clone().flatten())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let row: Option<$crate::rows::ProfileRow> = sqlx::query_as(PROFILE_SELECT)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.map(Into::into))
            }
        }

        #[async_trait::async_trait]
        impl $crate::AuthSessionRepo for $db {
            async fn insert_session(
                &self,
                s: &$crate::AuthSession,
            ) -> Result<(), $crate::DbError> {
                sqlx::query(
                    "INSERT INTO auth_sessions (id, user_id, created_at, last_seen_at, expires_at, user_agent, ip) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id)
                .bind(s.user_id)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .bind(s.user_agent.as_deref())
                .bind(s.ip.as_deref())
                .execute(&self.pool)
                .await
                .map_err($crate::conflict_as("a session with this id"))?;
                Ok(())
            }

            async fn session(
                &self,
                id: &str,
            ) -> Result<Option<$crate::AuthSession>, $crate::DbError> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = $1");
                Ok(sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn touch_session(
                &self,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::DbError> {
                sqlx::query("UPDATE auth_sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_session(
                &self,
                user_id: uuid::Uuid,
                id: &str,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn sessions_for_user(
                &self,
                user_id: uuid::Uuid,
            ) -> Result<Vec<$crate::AuthSession>, $crate::DbError> {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE user_id = $1 \
                     ORDER BY created_at DESC LIMIT 1000"
                );
                let sessions: Vec<$crate::AuthSession> =
                    sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await?;
                Ok(sessions)
            }

            async fn delete_sessions_for_user(
                &self,
                user_id: uuid::Uuid,
                keep: Option<&str>,
            ) -> Result<u64, $crate::DbError> {
                let done = sqlx::query(
                    "DELETE FROM auth_sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)",
                )
                .bind(user_id)
                .bind(keep)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn delete_expired_sessions(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                idle_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::DbError> {
                let done = sqlx::query(
                    "DELETE FROM auth_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                )
                .bind(now)
                .bind(idle_before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use impl_account_repos;
