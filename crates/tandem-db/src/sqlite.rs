//! The embedded engine: one SQLite file in the data directory.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{
    ConnectOptions, DbError, accounts::impl_account_repos, analytics::impl_analytics_repo,
    engine::impl_database, jobs::impl_job_repo, partners::impl_partner_repo,
    rooms::impl_room_repos,
};

/// SQLite in WAL mode with a busy timeout, so readers never block the writer
/// and concurrent writers wait instead of failing.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    pub(crate) pool: SqlitePool,
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path, options: &ConnectOptions) -> Result<Self, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::from(sqlx::Error::Io(e)))?;
        }
        let connect = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }
}

impl_database!(SqliteDatabase, "sqlite", "./migrations/sqlite");
impl_account_repos!(SqliteDatabase);
impl_room_repos!(SqliteDatabase);
impl_job_repo!(SqliteDatabase, "");
impl_partner_repo!(SqliteDatabase);
impl_analytics_repo!(
    SqliteDatabase,
    sqlx::SqliteConnection,
    sqlx::sqlite::SqliteRow
);
