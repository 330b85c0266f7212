//! The part of [`crate::AnalyticsRepo`] whose SQL is the same on both
//! engines; each engine supplies the week-storage methods (`engine_*`).

/// Implements [`crate::AnalyticsRepo`] for `$db` (connections `$conn`, rows `$row`), which must have inherent
/// `engine_insert`, `engine_prepare_weeks`, `engine_expired_weeks`,
/// `engine_freeze_week`, `engine_week_rows`, `engine_count_week` and
/// `engine_purge_week` methods.
macro_rules! impl_analytics_repo {
    ($db:ty, $conn:ty, $row:ty) => {
        #[async_trait::async_trait]
        impl $crate::AnalyticsRepo for $db {
            async fn insert_analytics(
                &self,
                rows: &[$crate::AnalyticsRow],
                keep_ids: bool,
            ) -> Result<u64, $crate::DbError> {
                self.engine_insert(rows, keep_ids).await
            }

            async fn prepare_weeks(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                weeks_ahead: u32,
            ) -> Result<(), $crate::DbError> {
                self.engine_prepare_weeks(now, weeks_ahead).await
            }

            async fn expired_weeks(
                &self,
                table: $crate::AnalyticsTable,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::Week>, $crate::DbError> {
                self.engine_expired_weeks(table, cutoff).await
            }

            async fn freeze_week(
                &self,
                table: $crate::AnalyticsTable,
                week: $crate::Week,
            ) -> Result<(), $crate::DbError> {
                self.engine_freeze_week(table, week).await
            }

            fn week_rows(
                &self,
                table: $crate::AnalyticsTable,
                week: $crate::Week,
            ) -> futures_util::stream::BoxStream<
                '_,
                Result<Vec<$crate::AnalyticsRow>, $crate::DbError>,
            > {
                self.engine_week_rows(table, week)
            }

            async fn count_week(
                &self,
                table: $crate::AnalyticsTable,
                week: $crate::Week,
            ) -> Result<u64, $crate::DbError> {
                self.engine_count_week(table, week).await
            }

            async fn purge_week(
                &self,
                table: $crate::AnalyticsTable,
                week: $crate::Week,
            ) -> Result<$crate::Purge, $crate::DbError> {
                self.engine_purge_week(table, week).await
            }

            async fn archive_object(
                &self,
                table: $crate::AnalyticsTable,
                period: &str,
            ) -> Result<Option<$crate::ArchiveObject>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT table_name, period, state, key, rows, bytes, sha256, run_id, updated_at \
                     FROM archive_objects WHERE table_name = $1 AND period = $2",
                )
                .bind(table.name())
                .bind(period)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn unfinished_archive_objects(
                &self,
            ) -> Result<Vec<$crate::ArchiveObject>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT table_name, period, state, key, rows, bytes, sha256, run_id, updated_at \
                     FROM archive_objects WHERE state <> 'done' ORDER BY table_name, period",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn save_archive_object(
                &self,
                o: &$crate::ArchiveObject,
            ) -> Result<(), $crate::DbError> {
                sqlx::query(
                    "INSERT INTO archive_objects \
                     (table_name, period, state, key, rows, bytes, sha256, run_id, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (table_name, period) DO UPDATE SET state = excluded.state, \
                     key = excluded.key, rows = excluded.rows, bytes = excluded.bytes, \
                     sha256 = excluded.sha256, run_id = excluded.run_id, \
                     updated_at = excluded.updated_at",
                )
                .bind(&o.table_name)
                .bind(&o.period)
                .bind(&o.state)
                .bind(&o.key)
                .bind(o.rows)
                .bind(o.bytes)
                .bind(&o.sha256)
                .bind(o.run_id)
                .bind(o.updated_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn insert_archive_run(
                &self,
                run: &$crate::ArchiveRun,
            ) -> Result<bool, $crate::DbError> {
                let done = sqlx::query(
                    "INSERT INTO archive_runs (id, trigger, slot, dry_run, status, started_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(run.id)
                .bind(&run.trigger)
                .bind(&run.slot)
                .bind(run.dry_run)
                .bind(&run.status)
                .bind(run.started_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_archive_run(
                &self,
                run: &$crate::ArchiveRun,
            ) -> Result<(), $crate::DbError> {
                sqlx::query(
                    "UPDATE archive_runs SET status = $2, finished_at = $3, objects = $4, \
                     rows = $5, bytes = $6, error = $7 WHERE id = $1",
                )
                .bind(run.id)
                .bind(&run.status)
                .bind(run.finished_at)
                .bind(run.objects)
                .bind(run.rows)
                .bind(run.bytes)
                .bind(&run.error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn archive_runs(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::ArchiveRun>, $crate::DbError> {
                Ok(sqlx::query_as(
                    "SELECT id, trigger, slot, dry_run, status, started_at, finished_at, \
                     objects, rows, bytes, error FROM archive_runs \
                     ORDER BY started_at DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::DbError> {
                let row: Option<(String,)> = sqlx::query_as(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.expires_at < $4 OR leases.holder = excluded.holder \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.is_some())
            }

            async fn release_lease(&self, name: &str, holder: &str) -> Result<(), $crate::DbError> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        impl $db {
            /// Decodes fetched rows of `table`.
            pub(crate) fn decode_rows(
                table: $crate::AnalyticsTable,
                rows: Vec<$row>,
            ) -> Result<Vec<$crate::AnalyticsRow>, $crate::DbError> {
                use sqlx::FromRow as _;
                use $crate::{AnalyticsRow as R, AnalyticsTable as T};
                rows.iter()
                    .map(|row| {
                        Ok(match table {
                            T::PageViews => R::PageView($crate::PageView::from_row(row)?),
                            T::UserActivity => R::Activity($crate::Activity::from_row(row)?),
                            T::UserSessions => R::StudyVisit($crate::StudyVisit::from_row(row)?),
                        })
                    })
                    .collect()
            }

            /// Inserts rows of one table in multi-row statements.
            async fn insert_table_rows(
                conn: &mut $conn,
                table: $crate::AnalyticsTable,
                rows: &[&$crate::AnalyticsRow],
                keep_ids: bool,
            ) -> Result<u64, $crate::DbError> {
                use $crate::AnalyticsRow as R;
                let mut inserted = 0;
                for chunk in rows.chunks(1_000) {
                    let columns = table.columns();
                    let columns = if keep_ids { columns } else { &columns["id, ".len()..] };
                    let mut query = sqlx::QueryBuilder::new(format!(
                        "INSERT INTO {} ({columns}) ",
                        table.name()
                    ));
                    query.push_values(chunk, |mut b, row| {
                        if keep_ids {
                            b.push_bind(row.id());
                        }
                        match row {
                            R::PageView(r) => {
                                b.push_bind(r.occurred_at)
                                    .push_bind(r.visitor_id)
                                    .push_bind(r.user_id)
                                    .push_bind(r.path.clone())
                                    .push_bind(r.referrer.clone());
                            }
                            R::Activity(r) => {
                                b.push_bind(r.occurred_at)
                                    .push_bind(r.visitor_id)
                                    .push_bind(r.user_id)
                                    .push_bind(r.kind.clone())
                                    .push_bind(r.detail.clone());
                            }
                            R::StudyVisit(r) => {
                                b.push_bind(r.occurred_at)
                                    .push_bind(r.user_id)
                                    .push_bind(r.study_session_id)
                                    .push_bind(r.started_at);
                            }
                        }
                    });
                    if keep_ids {
                        query.push(" ON CONFLICT DO NOTHING");
                    }
                    inserted += query.build().execute(&mut *conn).await?.rows_affected();
                }
                Ok(inserted)
            }

            /// Inserts every row in one transaction, table by table.
            pub(crate) async fn insert_all(
                &self,
                rows: &[$crate::AnalyticsRow],
                keep_ids: bool,
            ) -> Result<u64, $crate::DbError> {
                let mut tx = self.pool.begin().await?;
                let mut inserted = 0;
                for table in $crate::AnalyticsTable::ALL {
                    let of_table: Vec<_> = rows.iter().filter(|r| r.table() == table).collect();
                    if !of_table.is_empty() {
                        inserted +=
                            Self::insert_table_rows(&mut *tx, table, &of_table, keep_ids).await?;
                    }
                }
                tx.commit().await?;
                Ok(inserted)
            }
        }
    };
}

pub(crate) use impl_analytics_repo;
