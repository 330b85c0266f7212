//! What every engine implements the same way: the [`crate::Database`] trait
//! itself (name, migrations, ping).
//!
//! The repositories' SQL lives with their domain (`accounts.rs`, `rooms.rs`,
//! `partners.rs`, `jobs.rs`, `analytics/`). Both engines accept `$n`
//! placeholders, `RETURNING` and `ON CONFLICT`, and sqlx maps our column types
//! (UUID/BLOB, TIMESTAMPTZ/TEXT, JSONB/TEXT) to the same Rust types, so each
//! query is written once, in a macro instantiated for both engines;
//! engine-specific SQL lives in `sqlite.rs` / `postgres.rs`.

/// Implements [`crate::Database`] for a struct with a `pool:
/// sqlx::Pool<_>` field, named `$name`, migrated from `$migrations`.
macro_rules! impl_database {
    ($db:ty, $name:literal, $migrations:literal) => {
        #[async_trait::async_trait]
        impl $crate::Database for $db {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn migrate(&self) -> Result<(), $crate::DbError> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), $crate::DbError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_database;
