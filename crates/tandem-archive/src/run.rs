//! One archive run: the lease, the run record, and each expired week taken
//! through export → verify → purge.

use std::{collections::BTreeSet, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tandem_db::{AnalyticsTable, ArchiveObject, ArchiveRun, Week};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{ArchiveError, Archiver, Digested, Event, Manifest, Observer, codec};

/// The lease every instance competes for.
const LEASE: &str = "archive-analytics";
/// How long the lease lasts unless renewed; a dead holder frees it after this.
const LEASE_FOR: Duration = Duration::from_secs(120);

/// How a run was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The built-in schedule, for the slot at this time.
    Schedule(DateTime<Utc>),
    /// `GET /api/cron/archive-analytics`.
    Cron,
    /// `tandem archive run`.
    Cli,
}

/// A run that holds the lease and has its record; [`RunHandle::execute`]
/// does the work.
pub struct RunHandle {
    archiver: Archiver,
    run: ArchiveRun,
}

impl Archiver {
    /// Takes the lease and records a new run. [`ArchiveError::Busy`] if a run
    /// is in progress anywhere, [`ArchiveError::SlotTaken`] if a scheduled
    /// slot already ran.
    pub async fn begin(&self, trigger: Trigger, dry_run: bool) -> Result<RunHandle, ArchiveError> {
        let now = self.clock.now();
        let run = ArchiveRun {
            id: Uuid::now_v7(),
            trigger: match trigger {
                Trigger::Schedule(_) => "schedule",
                Trigger::Cron => "cron",
                Trigger::Cli => "cli",
            }
            .into(),
            slot: match trigger {
                Trigger::Schedule(at) => Some(at.to_rfc3339()),
                _ => None,
            },
            dry_run,
            status: "running".into(),
            started_at: now,
            finished_at: None,
            objects: 0,
            rows: 0,
            bytes: 0,
            error: None,
        };
        let holder = run.id.to_string();
        if !self
            .db
            .acquire_lease(LEASE, &holder, now, now + LEASE_FOR)
            .await?
        {
            return Err(ArchiveError::Busy);
        }
        if !self.db.insert_archive_run(&run).await? {
            self.db.release_lease(LEASE, &holder).await?;
            return Err(ArchiveError::SlotTaken);
        }
        Ok(RunHandle {
            archiver: self.clone(),
            run,
        })
    }
}

impl RunHandle {
    /// The run's id.
    pub fn id(&self) -> Uuid {
        self.run.id
    }

    /// Archives every expired week, keeping the lease alive meanwhile, and
    /// records the outcome. The returned run says how it went.
    pub async fn execute(mut self, observer: &dyn Observer) -> ArchiveRun {
        let a = &self.archiver;
        let holder = self.run.id.to_string();
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = a.archive_expired(&mut self.run, observer) => outcome,
            lost = a.keep_lease(&holder) => Err(lost),
        };
        self.run.finished_at = Some(a.clock.now());
        self.run.status = match &outcome {
            Ok(()) => "succeeded",
            Err(_) => "failed",
        }
        .into();
        if let Err(e) = &outcome {
            tracing::error!(run = %self.run.id, error = %e, "archive run failed");
            self.run.error = Some(e.to_string());
        }
        metrics::counter!("tandem_archive_runs_total", "status" => self.run.status.clone())
            .increment(1);
        metrics::histogram!("tandem_archive_run_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = a.db.finish_archive_run(&self.run).await {
            tracing::error!(run = %self.run.id, error = %e, "could not record the archive run");
        }
        if let Err(e) = a.db.release_lease(LEASE, &holder).await {
            tracing::warn!(error = %e, "could not release the archive lease (it expires)");
        }
        self.run
    }
}

impl Archiver {
    /// Renews the lease until it cannot; returns why.
    async fn keep_lease(&self, holder: &str) -> ArchiveError {
        loop {
            tokio::time::sleep(LEASE_FOR / 4).await;
            let now = self.clock.now();
            match self
                .db
                .acquire_lease(LEASE, holder, now, now + LEASE_FOR)
                .await
            {
                Ok(true) => {}
                Ok(false) => return ArchiveError::Interrupted("the archive lease was lost".into()),
                Err(e) => return e.into(),
            }
        }
    }

    async fn archive_expired(
        &self,
        run: &mut ArchiveRun,
        observer: &dyn Observer,
    ) -> Result<(), ArchiveError> {
        let now = self.clock.now();
        self.db.prepare_weeks(now, self.options.weeks_ahead).await?;
        let cutoff = now - self.options.after;
        let mut weeks = BTreeSet::new();
        for table in AnalyticsTable::ALL {
            for week in self.db.expired_weeks(table, cutoff).await? {
                weeks.insert((table, week));
            }
        }
        for object in self.db.unfinished_archive_objects().await? {
            if let (Some(table), Some(week)) = (
                AnalyticsTable::parse(&object.table_name),
                Week::parse(&object.period),
            ) {
                weeks.insert((table, week));
            }
        }
        for (table, week) in weeks {
            if run.dry_run {
                let rows = self.db.count_week(table, week).await?;
                observer
                    .event(&Event::WouldArchive { table, week, rows })
                    .map_err(ArchiveError::Interrupted)?;
                run.objects += i64::from(rows > 0);
                run.rows += rows as i64;
                continue;
            }
            if let Some(digest) = self.archive_week(run.id, table, week, observer).await? {
                run.objects += 1;
                run.rows += digest.rows as i64;
                run.bytes += digest.bytes as i64;
            }
        }
        Ok(())
    }

    /// Takes one week through every step; `None` if it had no rows.
    async fn archive_week(
        &self,
        run_id: Uuid,
        table: AnalyticsTable,
        week: Week,
        observer: &dyn Observer,
    ) -> Result<Option<Digested>, ArchiveError> {
        let stop = ArchiveError::Interrupted;
        let key = self.object_key(table, week);
        let mut record = ArchiveObject {
            table_name: table.name().into(),
            period: week.label(),
            state: "exporting".into(),
            key: key.clone(),
            rows: 0,
            bytes: 0,
            sha256: String::new(),
            run_id,
            updated_at: self.clock.now(),
        };
        let earlier = self.db.archive_object(table, &record.period).await?;
        let digest = match earlier.filter(|o| o.state == "verified") {
            // Deleting may have begun: the object is the only full copy.
            Some(verified) => {
                let expected = Digested {
                    rows: verified.rows as u64,
                    bytes: verified.bytes as u64,
                    sha256: verified.sha256.clone(),
                };
                self.check(&key, table, &expected).await?;
                record = verified;
                expected
            }
            None => {
                self.db.freeze_week(table, week).await?;
                self.db.save_archive_object(&record).await?;
                let rows = self.db.count_week(table, week).await?;
                observer
                    .event(&Event::Exporting { table, week, rows })
                    .map_err(stop)?;
                let Some(digest) = self.export(table, week, &key, observer).await? else {
                    self.purge(table, week, observer).await?;
                    record.state = "done".into();
                    record.updated_at = self.clock.now();
                    self.db.save_archive_object(&record).await?;
                    return Ok(None);
                };
                self.check(&key, table, &digest).await?;
                let manifest = Manifest::new(table, week, &key, &digest, run_id, self.clock.now());
                self.store
                    .put(&Manifest::key_for(&key), manifest.to_bytes())
                    .await?;
                record.state = "verified".into();
                record.rows = digest.rows as i64;
                record.bytes = digest.bytes as i64;
                record.sha256 = digest.sha256.clone();
                record.updated_at = self.clock.now();
                self.db.save_archive_object(&record).await?;
                digest
            }
        };
        observer
            .event(&Event::Verified {
                table,
                week,
                digest: digest.clone(),
            })
            .map_err(stop)?;
        self.purge(table, week, observer).await?;
        record.state = "done".into();
        record.updated_at = self.clock.now();
        self.db.save_archive_object(&record).await?;
        metrics::counter!("tandem_archive_rows_total", "table" => table.name())
            .increment(digest.rows);
        metrics::counter!("tandem_archive_bytes_total", "table" => table.name())
            .increment(digest.bytes);
        observer
            .event(&Event::WeekDone { table, week })
            .map_err(stop)?;
        Ok(Some(digest))
    }

    async fn purge(
        &self,
        table: AnalyticsTable,
        week: Week,
        observer: &dyn Observer,
    ) -> Result<(), ArchiveError> {
        loop {
            let purged = self.db.purge_week(table, week).await?;
            observer
                .event(&Event::RowsPurged { rows: purged.rows })
                .map_err(ArchiveError::Interrupted)?;
            if purged.done {
                return Ok(());
            }
        }
    }

    /// Streams the week into the object; `None` (and no object) if it has
    /// no rows. The upload is aborted on any failure.
    async fn export(
        &self,
        table: AnalyticsTable,
        week: Week,
        key: &str,
        observer: &dyn Observer,
    ) -> Result<Option<Digested>, ArchiveError> {
        let (row_tx, row_rx) = mpsc::channel(4);
        let (piece_tx, mut piece_rx) = mpsc::channel::<Bytes>(4);
        let (level, chunk) = (self.options.gzip_level, self.options.chunk_bytes);
        let encoder =
            tokio::task::spawn_blocking(move || codec::encode(row_rx, piece_tx, level, chunk));
        let db = &self.db;
        let produce = async move {
            let mut batches = db.week_rows(table, week);
            while let Some(batch) = batches.try_next().await? {
                observer
                    .event(&Event::RowsEncoded {
                        rows: batch.len() as u64,
                    })
                    .map_err(ArchiveError::Interrupted)?;
                if row_tx.send(batch).await.is_err() {
                    break; // the encoder failed; its error is reported below
                }
            }
            Ok::<_, ArchiveError>(())
        };
        let mut writer = self.store.writer(key).await?;
        let upload = async {
            while let Some(piece) = piece_rx.recv().await {
                let bytes = piece.len() as u64;
                writer.write(piece).await?;
                observer
                    .event(&Event::BytesUploaded { bytes })
                    .map_err(ArchiveError::Interrupted)?;
            }
            Ok::<_, ArchiveError>(())
        };
        let (produced, uploaded) = tokio::join!(produce, upload);
        let encoded = encoder
            .await
            .map_err(|e| ArchiveError::Interrupted(e.to_string()))?;
        let digest = match (produced, uploaded, encoded) {
            (Ok(()), Ok(()), Ok(digest)) if digest.rows > 0 => digest,
            (Ok(()), Ok(()), Ok(_)) => {
                writer.abort().await;
                return Ok(None);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                writer.abort().await;
                return Err(e);
            }
        };
        writer.finish().await?;
        Ok(Some(digest))
    }

    /// Reads the object back and compares it with what was written.
    pub(crate) async fn check(
        &self,
        key: &str,
        table: AnalyticsTable,
        expected: &Digested,
    ) -> Result<(), ArchiveError> {
        let found = self.digest(key, table, None).await?;
        if &found != expected {
            return Err(ArchiveError::Corrupt(format!(
                "{key}: read back {} rows, {} bytes, sha256 {}; expected {} rows, {} bytes, sha256 {}",
                found.rows,
                found.bytes,
                found.sha256,
                expected.rows,
                expected.bytes,
                expected.sha256
            )));
        }
        Ok(())
    }

    /// Streams an object through the decoder (sending parsed rows to `rows`).
    pub(crate) async fn digest(
        &self,
        key: &str,
        table: AnalyticsTable,
        rows: Option<(mpsc::Sender<Vec<tandem_db::AnalyticsRow>>, usize)>,
    ) -> Result<Digested, ArchiveError> {
        let Some(mut stream) = self.store.reader(key).await? else {
            return Err(ArchiveError::Corrupt(format!("{key} is missing")));
        };
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let (sink, batch) = match rows {
            Some((sink, batch)) => (Some(sink), batch),
            None => (None, 0),
        };
        let decoder = tokio::task::spawn_blocking(move || codec::decode(rx, table, sink, batch));
        let feed = async {
            while let Some(piece) = stream.try_next().await? {
                if tx.send(piece).await.is_err() {
                    break; // the decoder failed; its error is reported below
                }
            }
            drop(tx);
            Ok::<_, ArchiveError>(())
        };
        let fed = feed.await;
        let decoded = decoder
            .await
            .map_err(|e| ArchiveError::Interrupted(e.to_string()))?;
        let digest = decoded?;
        fed?;
        Ok(digest)
    }
}
