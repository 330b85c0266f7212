//! The manifest written beside each archive object, and listing them.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_db::{AnalyticsTable, Week};
use uuid::Uuid;

use crate::{ArchiveError, Archiver, Digested};

/// Describes one archive object: enough to check it and to know what is in
/// it without opening it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Version of the row format (bumped when columns change).
    pub schema_version: u32,
    /// `jsonl+gzip`.
    pub format: String,
    /// The table the rows came from.
    pub table: String,
    /// The ISO week (`2026-W31`).
    pub period: String,
    /// First instant of the week.
    pub from: DateTime<Utc>,
    /// First instant after it.
    pub to: DateTime<Utc>,
    /// The object's key.
    pub object: String,
    /// Rows (lines) in it.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// The run that wrote it.
    pub run_id: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The row format written today.
pub const SCHEMA_VERSION: u32 = 1;

impl Manifest {
    pub(crate) fn new(
        table: AnalyticsTable,
        week: Week,
        object: &str,
        digest: &Digested,
        run_id: Uuid,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            format: "jsonl+gzip".into(),
            table: table.name().into(),
            period: week.label(),
            from: week.start(),
            to: week.end(),
            object: object.into(),
            rows: digest.rows,
            bytes: digest.bytes,
            sha256: digest.sha256.clone(),
            run_id,
            created_at: now,
        }
    }

    /// The manifest's key for an object's key.
    pub fn key_for(object: &str) -> String {
        let stem = object.strip_suffix(".jsonl.gz").unwrap_or(object);
        format!("{stem}.manifest.json")
    }

    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    /// What the manifest says the object holds.
    pub fn digest(&self) -> Digested {
        Digested {
            rows: self.rows,
            bytes: self.bytes,
            sha256: self.sha256.clone(),
        }
    }
}

/// An archive object and its manifest.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The object's key.
    pub key: String,
    /// Its size in the store.
    pub size: u64,
    /// Its manifest, if it has a readable one.
    pub manifest: Option<Manifest>,
}

impl Archiver {
    /// Every archive object, oldest week first within each table.
    pub async fn list(&self) -> Result<Vec<Listed>, ArchiveError> {
        let mut listed = Vec::new();
        for object in self.store.list(&self.options.prefix).await? {
            if !object.key.ends_with(".jsonl.gz") {
                continue;
            }
            let manifest = self.manifest(&object.key).await?;
            listed.push(Listed {
                key: object.key,
                size: object.size,
                manifest,
            });
        }
        Ok(listed)
    }

    /// The manifest of `object`, if there is a readable one.
    pub async fn manifest(&self, object: &str) -> Result<Option<Manifest>, ArchiveError> {
        let bytes = self.store.get(&Manifest::key_for(object)).await?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}
