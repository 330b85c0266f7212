//! Putting archived rows back into the database.

use tandem_db::{AnalyticsTable, Week};
use tokio::sync::mpsc;

use crate::{ArchiveError, Archiver, Event, Observer};

/// Rows inserted per statement batch during a restore.
const RESTORE_BATCH: usize = 1_000;

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Rows in the object.
    pub rows: u64,
    /// Rows that were missing from the database and were inserted.
    pub inserted: u64,
}

impl Archiver {
    /// Re-imports the archive object `key` (checked against its manifest
    /// first). Idempotent: rows already present are skipped. Restored rows
    /// are in an expired week, so the next run archives them again (into
    /// the same object).
    pub async fn restore(
        &self,
        key: &str,
        observer: &dyn Observer,
    ) -> Result<Restored, ArchiveError> {
        let table = self.table_of(key)?;
        let manifest = self
            .manifest(key)
            .await?
            .ok_or_else(|| ArchiveError::NotAnArchive(format!("{key} has no manifest")))?;
        self.check(key, table, &manifest.digest()).await?;
        let (tx, mut rx) = mpsc::channel(4);
        let decode = self.digest(key, table, Some((tx, RESTORE_BATCH)));
        let import = async {
            let mut restored = Restored::default();
            while let Some(batch) = rx.recv().await {
                let inserted = self.db.insert_analytics(&batch, true).await?;
                restored.rows += batch.len() as u64;
                restored.inserted += inserted;
                observer
                    .event(&Event::RowsRestored {
                        rows: batch.len() as u64,
                        inserted,
                    })
                    .map_err(ArchiveError::Interrupted)?;
            }
            Ok::<_, ArchiveError>(restored)
        };
        let (decoded, imported) = tokio::join!(decode, import);
        let restored = imported?;
        decoded?;
        Ok(restored)
    }

    /// The table an object key belongs to: `<prefix>/<table>/<week>.jsonl.gz`.
    fn table_of(&self, key: &str) -> Result<AnalyticsTable, ArchiveError> {
        let not = || ArchiveError::NotAnArchive(key.into());
        let rest = key
            .strip_prefix(&self.options.prefix)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(not)?;
        let (table, file) = rest.split_once('/').ok_or_else(not)?;
        let week = file.strip_suffix(".jsonl.gz").ok_or_else(not)?;
        Week::parse(week).ok_or_else(not)?;
        AnalyticsTable::parse(table).ok_or_else(not)
    }
}
