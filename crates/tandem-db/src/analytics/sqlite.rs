//! Analytics weeks on SQLite: ranges of `occurred_at`, exported in key-range
//! batches and deleted in short transactions.

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream::BoxStream};

use crate::{
    AnalyticsRow, AnalyticsTable, DbError, Purge, Week,
    analytics::{EXPORT_BATCH, PURGE_BATCH},
    sqlite::SqliteDatabase,
};

impl SqliteDatabase {
    pub(crate) async fn engine_insert(
        &self,
        rows: &[AnalyticsRow],
        keep_ids: bool,
    ) -> Result<u64, DbError> {
        self.insert_all(rows, keep_ids).await
    }

    pub(crate) async fn engine_prepare_weeks(
        &self,
        _now: DateTime<Utc>,
        _weeks_ahead: u32,
    ) -> Result<(), DbError> {
        Ok(())
    }

    pub(crate) async fn engine_expired_weeks(
        &self,
        table: AnalyticsTable,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<Week>, DbError> {
        let boundary = Week::of(cutoff).start();
        let sql = format!(
            "SELECT MIN(occurred_at) FROM {} WHERE occurred_at >= $1 AND occurred_at < $2",
            table.name()
        );
        let mut weeks = Vec::new();
        let mut from = DateTime::<Utc>::MIN_UTC;
        loop {
            let (oldest,): (Option<DateTime<Utc>>,) = sqlx::query_as(&sql)
                .bind(from)
                .bind(boundary)
                .fetch_one(&self.pool)
                .await?;
            let Some(oldest) = oldest else { break };
            let week = Week::of(oldest);
            weeks.push(week);
            from = week.end();
        }
        Ok(weeks)
    }

    pub(crate) async fn engine_freeze_week(
        &self,
        _table: AnalyticsTable,
        _week: Week,
    ) -> Result<(), DbError> {
        // Nothing writes to an expired week: events carry the server's time.
        Ok(())
    }

    pub(crate) fn engine_week_rows(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> BoxStream<'_, Result<Vec<AnalyticsRow>, DbError>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE occurred_at >= $1 AND occurred_at < $2 \
             AND (occurred_at, id) > ($3, $4) ORDER BY occurred_at, id LIMIT $5",
            table.columns(),
            table.name()
        );
        let start = (week.start() - chrono::Duration::microseconds(1), i64::MIN);
        futures_util::stream::try_unfold(Some(start), move |after| {
            let sql = sql.clone();
            async move {
                let Some((after_at, after_id)) = after else {
                    return Ok(None);
                };
                let rows = sqlx::query(&sql)
                    .bind(week.start())
                    .bind(week.end())
                    .bind(after_at)
                    .bind(after_id)
                    .bind(EXPORT_BATCH)
                    .fetch_all(&self.pool)
                    .await?;
                let full = rows.len() as i64 == EXPORT_BATCH;
                let rows = Self::decode_rows(table, rows)?;
                let next = rows
                    .last()
                    .map(|r| (r.occurred_at(), r.id()))
                    .filter(|_| full);
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
        let sql = format!(
            "SELECT count(*) FROM {} WHERE occurred_at >= $1 AND occurred_at < $2",
            table.name()
        );
        let (n,): (i64,) = sqlx::query_as(&sql)
            .bind(week.start())
            .bind(week.end())
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    pub(crate) async fn engine_purge_week(
        &self,
        table: AnalyticsTable,
        week: Week,
    ) -> Result<Purge, DbError> {
        let sql = format!(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} \
             WHERE occurred_at >= $1 AND occurred_at < $2 LIMIT $3)",
            t = table.name()
        );
        let deleted = sqlx::query(&sql)
            .bind(week.start())
            .bind(week.end())
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(Purge {
            rows: deleted,
            done: (deleted as i64) < PURGE_BATCH,
        })
    }
}
