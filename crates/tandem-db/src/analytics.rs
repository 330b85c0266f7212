//! Analytics events (page views, activity, time in study rooms) and the
//! bookkeeping of their archiving.
//!
//! Events are grouped by ISO week ([`Week`]): on PostgreSQL each week of each
//! table is a partition, on SQLite a range of `occurred_at`. The archiver
//! (`tandem-archive`) works one (table, week) at a time through
//! [`AnalyticsRepo`]: freeze the week, stream its rows out in key order,
//! then purge it, recording its progress in `archive_objects` so a rerun
//! after a crash resumes where the last one stopped.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
pub use sqlx::types::Json;
use uuid::Uuid;

use crate::DbError;

mod postgres;
mod shared;
mod sqlite;

pub(crate) use shared::impl_analytics_repo;

/// Rows fetched per batch when a week is streamed out.
pub const EXPORT_BATCH: i64 = 5_000;
/// Rows deleted per transaction when SQLite purges a week.
pub const PURGE_BATCH: i64 = 5_000;

/// The tables that are archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnalyticsTable {
    /// Page views reported by the web app.
    PageViews,
    /// Other things visitors did.
    UserActivity,
    /// Time users spent in study rooms.
    UserSessions,
}

impl AnalyticsTable {
    /// Every archived table.
    pub const ALL: [Self; 3] = [Self::PageViews, Self::UserActivity, Self::UserSessions];

    /// The SQL table name (also the archive folder).
    pub fn name(self) -> &'static str {
        match self {
            Self::PageViews => "page_views",
            Self::UserActivity => "user_activity",
            Self::UserSessions => "user_sessions",
        }
    }

    /// The table named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Columns, in archive order.
    pub(crate) fn columns(self) -> &'static str {
        match self {
            Self::PageViews => "id, occurred_at, visitor_id, user_id, path, referrer",
            Self::UserActivity => "id, occurred_at, visitor_id, user_id, kind, detail",
            Self::UserSessions => "id, occurred_at, user_id, study_session_id, started_at",
        }
    }
}

/// An ISO week: Monday 00:00 UTC up to the next Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Week {
    year: i32,
    week: u32,
}

impl Week {
    /// The week `at` falls in.
    pub fn of(at: DateTime<Utc>) -> Self {
        let iso = at.date_naive().iso_week();
        Self {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The week labelled `2026-W31`.
    pub fn parse(label: &str) -> Option<Self> {
        let (year, week) = label.split_once("-W")?;
        let (year, week) = (year.parse().ok()?, week.parse().ok()?);
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)?;
        (label.len() == 8).then_some(Self { year, week })
    }

    /// Its first instant.
    pub fn start(self) -> DateTime<Utc> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or_default()
    }

    /// The first instant after it.
    pub fn end(self) -> DateTime<Utc> {
        self.start() + chrono::Duration::weeks(1)
    }

    /// The week after.
    pub fn next(self) -> Self {
        Self::of(self.end())
    }

    /// `2026-W31`: archive object names use it.
    pub fn label(self) -> String {
        format!("{:04}-W{:02}", self.year, self.week)
    }

    /// PostgreSQL's partition of `table` for this week: `page_views_p2026w31`.
    pub(crate) fn partition(self, table: AnalyticsTable) -> String {
        format!("{}_p{:04}w{:02}", table.name(), self.year, self.week)
    }

    /// The week of a partition name made by [`Week::partition`].
    pub(crate) fn of_partition(table: AnalyticsTable, name: &str) -> Option<Self> {
        let rest = name.strip_prefix(table.name())?.strip_prefix("_p")?;
        let (year, week) = rest.split_once('w')?;
        Self::parse(&format!("{year}-W{week}"))
    }
}

/// A page view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub struct PageView {
    /// Row id (assigned on insert).
    pub id: i64,
    /// When the server received it.
    pub occurred_at: DateTime<Utc>,
    /// The browser's anonymous id.
    pub visitor_id: Uuid,
    /// The signed-in user, if any.
    pub user_id: Option<Uuid>,
    /// Path of the page (no query string).
    pub path: String,
    /// Where the visitor came from.
    pub referrer: Option<String>,
}

/// Something a visitor did (`kind` names it, `detail` says more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    /// Row id (assigned on insert).
    pub id: i64,
    /// When the server received it.
    pub occurred_at: DateTime<Utc>,
    /// The browser's anonymous id.
    pub visitor_id: Uuid,
    /// The signed-in user, if any.
    pub user_id: Option<Uuid>,
    /// What happened (`search`, `profile.view`, ...).
    pub kind: String,
    /// A small JSON object.
    pub detail: Json<serde_json::Value>,
}

/// Time a user spent in a study room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub struct StudyVisit {
    /// Row id (assigned on insert).
    pub id: i64,
    /// When they left.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub user_id: Uuid,
    /// Which room.
    pub study_session_id: Option<Uuid>,
    /// When they joined.
    pub started_at: DateTime<Utc>,
}

/// A row of any analytics table; archived as its plain JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnalyticsRow {
    /// A `page_views` row.
    PageView(PageView),
    /// A `user_activity` row.
    Activity(Activity),
    /// A `user_sessions` row.
    StudyVisit(StudyVisit),
}

impl AnalyticsRow {
    /// The table it belongs to.
    pub fn table(&self) -> AnalyticsTable {
        match self {
            Self::PageView(_) => AnalyticsTable::PageViews,
            Self::Activity(_) => AnalyticsTable::UserActivity,
            Self::StudyVisit(_) => AnalyticsTable::UserSessions,
        }
    }

    /// Its row id.
    pub fn id(&self) -> i64 {
        match self {
            Self::PageView(r) => r.id,
            Self::Activity(r) => r.id,
            Self::StudyVisit(r) => r.id,
        }
    }

    /// When it happened (its week decides where it is stored).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::PageView(r) => r.occurred_at,
            Self::Activity(r) => r.occurred_at,
            Self::StudyVisit(r) => r.occurred_at,
        }
    }

    /// Reads one archived line of `table`.
    pub fn from_json(table: AnalyticsTable, line: &[u8]) -> serde_json::Result<Self> {
        Ok(match table {
            AnalyticsTable::PageViews => Self::PageView(serde_json::from_slice(line)?),
            AnalyticsTable::UserActivity => Self::Activity(serde_json::from_slice(line)?),
            AnalyticsTable::UserSessions => Self::StudyVisit(serde_json::from_slice(line)?),
        })
    }
}

/// Progress of archiving one (table, week).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ArchiveObject {
    /// The table.
    pub table_name: String,
    /// The week's label.
    pub period: String,
    /// `exporting`, `verified` (rows may be deleted) or `done`.
    pub state: String,
    /// The object's key.
    pub key: String,
    /// Rows in the object.
    pub rows: i64,
    /// Its size.
    pub bytes: i64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// The run that last worked on it.
    pub run_id: Uuid,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One archive run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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

/// What one call of [`AnalyticsRepo::purge_week`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// Rows deleted by this call (0 when a whole partition was dropped).
    pub rows: u64,
    /// Whether nothing of the week is left.
    pub done: bool,
}

/// Analytics events and archiving.
#[async_trait]
pub trait AnalyticsRepo: Send + Sync {
    /// Inserts events in one transaction. With `keep_ids` (restores), rows
    /// keep their ids and rows already present are skipped; otherwise ids
    /// are assigned. Returns how many rows were inserted.
    async fn insert_analytics(&self, rows: &[AnalyticsRow], keep_ids: bool)
    -> Result<u64, DbError>;
    /// Creates storage ahead for the weeks from `now`'s to `weeks_ahead`
    /// later (PostgreSQL partitions; nothing to do on SQLite).
    async fn prepare_weeks(&self, now: DateTime<Utc>, weeks_ahead: u32) -> Result<(), DbError>;
    /// Weeks of `table` that end at or before `cutoff` and still have storage
    /// (SQLite: rows; PostgreSQL: a partition, attached or detached), oldest first.
    async fn expired_weeks(
        &self,
        table: AnalyticsTable,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<Week>, DbError>;
    /// Stops the week from taking writes (PostgreSQL detaches its partition).
    async fn freeze_week(&self, table: AnalyticsTable, week: Week) -> Result<(), DbError>;
    /// The week's rows in a stable order, in batches of [`EXPORT_BATCH`].
    fn week_rows(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> BoxStream<'_, Result<Vec<AnalyticsRow>, DbError>>;
    /// How many rows the week has.
    async fn count_week(&self, table: AnalyticsTable, week: Week) -> Result<u64, DbError>;
    /// Deletes part or all of the week: PostgreSQL drops the partition,
    /// SQLite deletes up to [`PURGE_BATCH`] rows in one short transaction.
    async fn purge_week(&self, table: AnalyticsTable, week: Week) -> Result<Purge, DbError>;

    /// The archiving progress of one (table, week).
    async fn archive_object(
        &self,
        table: AnalyticsTable,
        period: &str,
    ) -> Result<Option<ArchiveObject>, DbError>;
    /// Every (table, week) whose archiving started and did not finish.
    async fn unfinished_archive_objects(&self) -> Result<Vec<ArchiveObject>, DbError>;
    /// Records progress (insert or replace).
    async fn save_archive_object(&self, object: &ArchiveObject) -> Result<(), DbError>;
    /// Records a new run; `false` if its slot already has one.
    async fn insert_archive_run(&self, run: &ArchiveRun) -> Result<bool, DbError>;
    /// Records the outcome of a run.
    async fn finish_archive_run(&self, run: &ArchiveRun) -> Result<(), DbError>;
    /// The latest runs, newest first.
    async fn archive_runs(&self, limit: i64) -> Result<Vec<ArchiveRun>, DbError>;
    /// Takes or renews the lease `name` for `holder` until `until`; `false`
    /// if someone else holds an unexpired one.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, DbError>;
    /// Gives the lease back (if `holder` still has it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), DbError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_are_iso_weeks() {
        let at = "2026-07-29T12:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        let week = Week::of(at);
        assert_eq!(week.label(), "2026-W31");
        assert_eq!(week.start().to_rfc3339(), "2026-07-27T00:00:00+00:00");
        assert_eq!(week.end().to_rfc3339(), "2026-08-03T00:00:00+00:00");
        assert_eq!(Week::parse("2026-W31"), Some(week));
        assert_eq!(
            week.partition(AnalyticsTable::PageViews),
            "page_views_p2026w31"
        );
        assert_eq!(
            Week::of_partition(AnalyticsTable::PageViews, "page_views_p2026w31"),
            Some(week)
        );
        assert_eq!(
            Week::of_partition(AnalyticsTable::UserActivity, "page_views_p2026w31"),
            None
        );
        // ISO years: 2026-12-31 is in 2026-W53, 2027-01-04 starts 2027-W01.
        let dec = "2026-12-31T00:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        assert_eq!(Week::of(dec).label(), "2026-W53");
        assert_eq!(Week::of(dec).next().label(), "2027-W01");
        for bad in [
            "2026-W54",
            "2026-W00",
            "2026-31",
            "x-Wyy",
            "2026-W1",
            "2026-W011",
        ] {
            assert_eq!(Week::parse(bad), None, "{bad}");
        }
    }
}
