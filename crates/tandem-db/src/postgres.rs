//! The distributed engine: PostgreSQL, shared by every Tandem instance.

use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::{
    ConnectOptions, DbError, accounts::impl_account_repos, analytics::impl_analytics_repo,
    engine::impl_database, jobs::impl_job_repo, partners::impl_partner_repo,
    rooms::impl_room_repos,
};

/// A pooled PostgreSQL connection.
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    pub(crate) pool: PgPool,
}

impl PostgresDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`).
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool (a replica's, from [`crate::replicas`]).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl_database!(PostgresDatabase, "postgres", "./migrations/postgres");
impl_account_repos!(PostgresDatabase);
impl_room_repos!(PostgresDatabase);
impl_job_repo!(PostgresDatabase, "FOR UPDATE SKIP LOCKED");
impl_partner_repo!(PostgresDatabase);
impl_analytics_repo!(PostgresDatabase, sqlx::PgConnection, sqlx::postgres::PgRow);
