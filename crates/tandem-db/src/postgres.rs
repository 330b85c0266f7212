//! The distributed engine: PostgreSQL, shared by every Tandem instance.

use async_trait::async_trait;
use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::{ConnectOptions, Database, DbError, shared::impl_shared_repos};

/// A pooled PostgreSQL connection.
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    pool: PgPool,
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

    /// The underlying pool, for engine-specific subsystems (e.g. the job queue).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Database for PostgresDatabase {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), DbError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl_shared_repos!(PostgresDatabase);
