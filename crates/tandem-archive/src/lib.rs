//! Cold storage for analytics.
//!
//! Every expired week of every analytics table becomes one object,
//! `analytics/<table>/<YYYY-Www>.jsonl.gz` (gzipped JSON Lines, one row per
//! line in key order), with a manifest beside it. A week is archived in
//! steps recorded in the database (`archive_objects`), so a run that dies at
//! any point is finished by the next one with every row exactly once in the
//! archive and none left behind:
//!
//! 1. freeze the week (PostgreSQL detaches its partition);
//! 2. stream its rows → JSON → gzip → a multipart upload (memory does not
//!    grow with the rows);
//! 3. read the object back and check its size, SHA-256 and line count, then
//!    write the manifest and record the week as `verified`;
//! 4. purge the week (PostgreSQL drops the partition; SQLite deletes in short
//!    batches) and record it as `done`.
//!
//! A week found `verified` is never exported again: its rows may already be
//! partly deleted. Anything earlier is exported again from the start; keys
//! are deterministic, so the new object replaces the old one.

mod codec;
mod manifest;
mod restore;
mod run;
mod schedule;

use std::sync::Arc;

pub use codec::Digested;
pub use manifest::{Listed, Manifest};
pub use restore::Restored;
pub use run::{RunHandle, Trigger};
pub use schedule::{Schedule, run_schedule};
use tandem_core::Clock;
use tandem_db::{AnalyticsTable, Database, DbError, Week};
use tandem_store::{ObjectStore, StoreError};

/// Why archiving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Another run holds the archive lease (on this or another instance).
    #[error("an archive run is already in progress")]
    Busy,
    /// A scheduled run for this slot already happened (on another instance).
    #[error("this schedule slot already ran")]
    SlotTaken,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object does not match what was written, or cannot be read.
    #[error("archive object is corrupt: {0}")]
    Corrupt(String),
    /// The run was stopped (an observer said so, or a pipeline stage quit).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The object named for a restore is not an archive object.
    #[error("not an archive object: {0}")]
    NotAnArchive(String),
    /// Local I/O failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How archiving behaves.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Rows older than this are archived (`ARCHIVE_AFTER_DAYS`, default 90),
    /// a whole week at a time once its last day is past the cutoff.
    pub after: chrono::Duration,
    /// Folder of the objects in the store.
    pub prefix: String,
    /// gzip level, 0–9.
    pub gzip_level: u32,
    /// Compressed bytes handed to the store at a time.
    pub chunk_bytes: usize,
    /// Weeks of partitions kept ready ahead of the current one.
    pub weeks_ahead: u32,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self {
            after: chrono::Duration::days(90),
            prefix: "analytics".into(),
            gzip_level: 3,
            chunk_bytes: 1 << 20,
            weeks_ahead: 4,
        }
    }
}

/// What a run is doing, for progress bars, logs and tests. An observer that
/// returns `Err` stops the run on the spot, as a crash would.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A week is about to be exported.
    Exporting {
        /// The table.
        table: AnalyticsTable,
        /// The week.
        week: Week,
        /// Rows it has.
        rows: u64,
    },
    /// A batch of rows went into the encoder.
    RowsEncoded {
        /// Rows in the batch.
        rows: u64,
    },
    /// A piece of the object went to the store.
    BytesUploaded {
        /// Compressed bytes in the piece.
        bytes: u64,
    },
    /// The object was read back and matches; the week's rows are about to go.
    Verified {
        /// The table.
        table: AnalyticsTable,
        /// The week.
        week: Week,
        /// What the object holds.
        digest: Digested,
    },
    /// Rows of the week were deleted.
    RowsPurged {
        /// How many (0 when a whole partition was dropped).
        rows: u64,
    },
    /// The week is archived and gone from the database.
    WeekDone {
        /// The table.
        table: AnalyticsTable,
        /// The week.
        week: Week,
    },
    /// Dry run: the week would be archived.
    WouldArchive {
        /// The table.
        table: AnalyticsTable,
        /// The week.
        week: Week,
        /// Rows it has.
        rows: u64,
    },
    /// A batch of rows was restored.
    RowsRestored {
        /// Rows in the batch.
        rows: u64,
        /// Of which were missing and inserted.
        inserted: u64,
    },
}

/// Receives [`Event`]s.
pub trait Observer: Send + Sync {
    /// Called at each step; `Err` stops the run.
    fn event(&self, event: &Event) -> Result<(), String>;
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &Event) -> Result<(), String> {
        Ok(())
    }
}

/// Archives, lists and restores analytics weeks.
#[derive(Clone)]
pub struct Archiver {
    db: Arc<dyn Database>,
    store: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    options: ArchiveOptions,
}

impl Archiver {
    /// An archiver writing to `store`.
    pub fn new(
        db: Arc<dyn Database>,
        store: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        options: ArchiveOptions,
    ) -> Self {
        Self {
            db,
            store,
            clock,
            options,
        }
    }

    /// The store objects go to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn object_key(&self, table: AnalyticsTable, week: Week) -> String {
        format!(
            "{}/{}/{}.jsonl.gz",
            self.options.prefix,
            table.name(),
            week.label()
        )
    }
}
