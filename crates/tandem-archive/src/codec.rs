//! The CPU side of archiving, on a blocking thread so the async threads
//! keep serving: rows → JSON Lines → gzip (with a SHA-256 of the output) on
//! the way out, and gunzip → lines on the way back.

use std::io::Write;

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use sha2::{Digest, Sha256};
use tandem_db::{AnalyticsRow, AnalyticsTable};
use tokio::sync::mpsc::{Receiver, Sender};

use crate::ArchiveError;

/// What an object holds, as written or as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digested {
    /// JSON lines.
    pub rows: u64,
    /// Compressed size.
    pub bytes: u64,
    /// Hex SHA-256 of the compressed bytes.
    pub sha256: String,
}

/// Encodes batches from `rows` and sends compressed pieces of about
/// `chunk_bytes` to `out`. Memory stays at a few pieces whatever the count.
pub(crate) fn encode(
    mut rows: Receiver<Vec<AnalyticsRow>>,
    out: Sender<Bytes>,
    level: u32,
    chunk_bytes: usize,
) -> Result<Digested, ArchiveError> {
    let mut gz = GzEncoder::new(Vec::with_capacity(chunk_bytes * 2), Compression::new(level));
    let mut hasher = Sha256::new();
    let mut digest = Digested::default();
    let mut lines = Vec::with_capacity(1 << 20);
    while let Some(batch) = rows.blocking_recv() {
        lines.clear();
        for row in &batch {
            serde_json::to_writer(&mut lines, row)
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
            lines.push(b'\n');
        }
        gz.write_all(&lines)?;
        digest.rows += batch.len() as u64;
        if gz.get_ref().len() >= chunk_bytes {
            let piece = std::mem::replace(gz.get_mut(), Vec::with_capacity(chunk_bytes * 2));
            ship(piece, &mut hasher, &mut digest, &out)?;
        }
    }
    let rest = gz.finish()?;
    ship(rest, &mut hasher, &mut digest, &out)?;
    digest.sha256 = hex::encode(hasher.finalize());
    Ok(digest)
}

fn ship(
    piece: Vec<u8>,
    hasher: &mut Sha256,
    digest: &mut Digested,
    out: &Sender<Bytes>,
) -> Result<(), ArchiveError> {
    hasher.update(&piece);
    digest.bytes += piece.len() as u64;
    out.blocking_send(Bytes::from(piece))
        .map_err(|_| ArchiveError::Interrupted("the upload stopped".into()))
}

/// Digests compressed pieces from `pieces`; with a `table`, also parses
/// every line and sends rows to `rows` in batches of `batch`.
pub(crate) fn decode(
    mut pieces: Receiver<Bytes>,
    table: AnalyticsTable,
    rows: Option<Sender<Vec<AnalyticsRow>>>,
    batch: usize,
) -> Result<Digested, ArchiveError> {
    let lines = Lines {
        table,
        partial: Vec::new(),
        parsed: Vec::new(),
        count: 0,
        rows,
        batch,
    };
    let mut gunzip = flate2::write::GzDecoder::new(lines);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(piece) = pieces.blocking_recv() {
        hasher.update(&piece);
        bytes += piece.len() as u64;
        gunzip.write_all(&piece).map_err(corrupt)?;
    }
    let mut lines = gunzip.finish().map_err(corrupt)?;
    if !lines.partial.is_empty() {
        return Err(ArchiveError::Corrupt(
            "the last line is unterminated".into(),
        ));
    }
    lines.flush_rows()?;
    Ok(Digested {
        rows: lines.count,
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn corrupt(e: std::io::Error) -> ArchiveError {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => ArchiveError::Interrupted(e.to_string()),
        _ => ArchiveError::Corrupt(e.to_string()),
    }
}

/// Receives decompressed bytes; counts (and optionally parses) lines.
struct Lines {
    table: AnalyticsTable,
    partial: Vec<u8>,
    parsed: Vec<AnalyticsRow>,
    count: u64,
    rows: Option<Sender<Vec<AnalyticsRow>>>,
    batch: usize,
}

impl Lines {
    fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.count += 1;
        if self.rows.is_none() {
            return Ok(());
        }
        let row = AnalyticsRow::from_json(self.table, line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {}: {e}", self.count),
            )
        })?;
        self.parsed.push(row);
        if self.parsed.len() >= self.batch {
            self.flush_rows()
                .map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        }
        Ok(())
    }

    fn flush_rows(&mut self) -> Result<(), ArchiveError> {
        if let Some(rows) = &self.rows
            && !self.parsed.is_empty()
        {
            rows.blocking_send(std::mem::take(&mut self.parsed))
                .map_err(|_| ArchiveError::Interrupted("the import stopped".into()))?;
        }
        Ok(())
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&rest[..end])?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                self.line(&line)?;
            }
            rest = &rest[end + 1..];
        }
        if self.partial.len() + rest.len() > 1 << 20 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a line longer than 1 MiB",
            ));
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
