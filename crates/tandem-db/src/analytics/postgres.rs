//! Analytics weeks on PostgreSQL: one partition per table and ISO week,
//! archived by detaching and dropping it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream::BoxStream};

use crate::{
    AnalyticsRow, AnalyticsTable, DbError, Purge, Week, analytics::EXPORT_BATCH,
    postgres::PostgresDatabase,
};

/// SQLSTATE of "no partition of relation found for row".
const NO_PARTITION: &str = "23514";

impl PostgresDatabase {
    pub(crate) async fn engine_insert(
        &self,
        rows: &[AnalyticsRow],
        keep_ids: bool,
    ) -> Result<u64, DbError> {
        match self.insert_all(rows, keep_ids).await {
            Err(e) if e.sqlstate().as_deref() == Some(NO_PARTITION) => {
                // A week without a partition: a restore of an archived week,
                // or a server that was off for longer than the weeks made ahead.
                let weeks: BTreeSet<Week> =
                    rows.iter().map(|r| Week::of(r.occurred_at())).collect();
                for week in weeks {
                    self.create_partitions(week).await?;
                }
                self.insert_all(rows, keep_ids).await
            }
            other => other,
        }
    }

    pub(crate) async fn engine_prepare_weeks(
        &self,
        now: DateTime<Utc>,
        weeks_ahead: u32,
    ) -> Result<(), DbError> {
        let mut week = Week::of(now);
        for _ in 0..=weeks_ahead {
            self.create_partitions(week).await?;
            week = week.next();
        }
        Ok(())
    }

    /// Creates the week's partition of every table, unless it exists.
    async fn create_partitions(&self, week: Week) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        // Instances starting together would race on the catalog otherwise.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tandem.analytics.partitions'))")
            .execute(&mut *tx)
            .await?;
        for table in AnalyticsTable::ALL {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{}') TO ('{}')",
                week.partition(table),
                table.name(),
                week.start().to_rfc3339(),
                week.end().to_rfc3339(),
            );
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn engine_expired_weeks(
        &self,
        table: AnalyticsTable,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<Week>, DbError> {
        // Attached or detached: a partition detached by a run that then
        // crashed is still there to finish.
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE $1",
        )
        .bind(format!("{}\\_p%", table.name().replace('_', "\\_")))
        .fetch_all(&self.pool)
        .await?;
        let mut weeks: Vec<Week> = names
            .iter()
            .filter_map(|(name,)| Week::of_partition(table, name))
            .filter(|week| week.end() <= cutoff)
            .collect();
        weeks.sort();
        Ok(weeks)
    }

    pub(crate) async fn engine_freeze_week(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> Result<(), DbError> {
        let partition = week.partition(table);
        let pending: Option<(bool,)> = sqlx::query_as(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1::text)",
        )
        .bind(&partition)
        .fetch_optional(&self.pool)
        .await?;
        let how = match pending {
            None => return Ok(()), // already detached
            // A concurrent detach that was interrupted must be finalized.
            Some((true,)) => "FINALIZE",
            // CONCURRENTLY: inserts into the parent never wait on the archiver.
            Some((false,)) => "CONCURRENTLY",
        };
        let sql = format!(
            "ALTER TABLE {} DETACH PARTITION {partition} {how}",
            table.name()
        );
        sqlx::query(&sql).execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn engine_week_rows(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> BoxStream<'_, Result<Vec<AnalyticsRow>, DbError>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            table.columns(),
            week.partition(table)
        );
        futures_util::stream::try_unfold(Some(i64::MIN), move |after| {
            let sql = sql.clone();
            async move {
                let Some(after) = after else { return Ok(None) };
                let rows = sqlx::query(&sql)
                    .bind(after)
                    .bind(EXPORT_BATCH)
                    .fetch_all(&self.pool)
                    .await?;
                let full = rows.len() as i64 == EXPORT_BATCH;
                let rows = Self::decode_rows(table, rows)?;
                let next = rows.last().map(AnalyticsRow::id).filter(|_| full);
                Ok((!rows.is_empty()).then_some((rows, next)))
            }
        })
        .boxed()
    }

    pub(crate) async fn engine_count_week(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> Result<u64, DbError> {
        let sql = format!("SELECT count(*) FROM {}", week.partition(table));
        let (n,): (i64,) = sqlx::query_as(&sql).fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    pub(crate) async fn engine_purge_week(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> Result<Purge, DbError> {
        let sql = format!("DROP TABLE IF EXISTS {}", week.partition(table));
        sqlx::query(&sql).execute(&self.pool).await?;
        Ok(Purge {
            rows: 0,
            done: true,
        })
    }
}
