//! Partnerships, blocks, and the profiles partner matching ranks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{DbError, Profile, User};

/// Who may be suggested as whose study partner.
#[async_trait]
pub trait PartnerRepo: Send + Sync {
    /// Up to `limit` users with their profiles, in id order after `after`
    /// (page through everyone by passing the last id seen).
    async fn candidate_page(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<(User, Profile)>, DbError>;
    /// Users never to suggest to `user_id`: partners already, blocked by
    /// them, or who blocked them.
    async fn partner_exclusions(&self, user_id: Uuid) -> Result<Vec<Uuid>, DbError>;
    /// Records a partnership in both directions (idempotent).
    async fn add_partner(
        &self,
        user_id: Uuid,
        partner_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), DbError>;
    /// Blocks `blocked_id` for `user_id` and ends any partnership (idempotent).
    async fn block_partner(
        &self,
        user_id: Uuid,
        blocked_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), DbError>;
    /// The partners of `user_id`.
    async fn partners(&self, user_id: Uuid) -> Result<Vec<Uuid>, DbError>;
}

/// Implements [`PartnerRepo`] for a struct with a `pool` field.
macro_rules! impl_partner_repo {
    ($db:ty) => {
        #[async_trait::async_trait]
        impl $crate::partners::PartnerRepo for $db {
            async fn candidate_page(
                &self,
                after: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<($crate::User, $crate::Profile)>, $crate::DbError> {
                let rows: Vec<$crate::rows::ProfileRow> = sqlx::query_as(
                    "SELECT u.id, u.email, u.display_name, u.created_at, \
                     p.subjects, p.level, p.goals, p.study_style, p.timezone, p.availability, \
                     p.bio, p.avatar_url, p.updated_at \
                     FROM users u JOIN profiles p ON p.user_id = u.id \
                     WHERE $1 IS NULL OR u.id > $1 ORDER BY u.id LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn partner_exclusions(
                &self,
                user_id: uuid::Uuid,
            ) -> Result<Vec<uuid::Uuid>, $crate::DbError> {
                let rows: Vec<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT partner_id FROM partnerships WHERE user_id = $1 \
                     UNION SELECT blocked_id FROM partner_blocks WHERE user_id = $1 \
                     UNION SELECT user_id FROM partner_blocks WHERE blocked_id = $1",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            async fn add_partner(
                &self,
                user_id: uuid::Uuid,
                partner_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::DbError> {
                sqlx::query(
                    "INSERT INTO partnerships (user_id, partner_id, created_at) \
                     VALUES ($1, $2, $3), ($2, $1, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(partner_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn block_partner(
                &self,
                user_id: uuid::Uuid,
                blocked_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::DbError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO partner_blocks (user_id, blocked_id, created_at) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(blocked_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM partnerships WHERE (user_id = $1 AND partner_id = $2) \
                     OR (user_id = $2 AND partner_id = $1)",
                )
                .bind(user_id)
                .bind(blocked_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn partners(
                &self,
                user_id: uuid::Uuid,
            ) -> Result<Vec<uuid::Uuid>, $crate::DbError> {
                let rows: Vec<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT partner_id FROM partnerships WHERE user_id = $1 ORDER BY created_at",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }
        }
    };
}

pub(crate) use impl_partner_repo;
