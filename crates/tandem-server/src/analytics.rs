//! Buffered analytics ingestion: requests hand events to a bounded queue and
//! return; one task inserts them in batches, so a burst of page views costs
//! a few multi-row INSERTs instead of one transaction per request.

use std::{sync::Arc, time::Duration};

use tandem_core::Shutdown;
use tandem_db::{AnalyticsRow, Database};
use tokio::{sync::mpsc, task::JoinHandle};

/// Events waiting at most; beyond this, ingestion answers 503.
const CAPACITY: usize = 20_000;
/// Rows per INSERT batch at most.
const BATCH: usize = 2_000;
/// How long the first event of a batch waits for company.
const LINGER: Duration = Duration::from_millis(500);

/// Accepts events for the database.
pub struct AnalyticsSink {
    tx: mpsc::Sender<AnalyticsRow>,
    flusher: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// The buffer is full: the database is behind.
#[derive(Debug)]
pub struct Full;

impl AnalyticsSink {
    /// Starts the flusher; it drains the buffer and stops after `shutdown`.
    pub fn start(db: Arc<dyn Database>, shutdown: Shutdown) -> Self {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let flusher = tokio::spawn(flush(db, rx, shutdown));
        Self {
            tx,
            flusher: std::sync::Mutex::new(Some(flusher)),
        }
    }

    /// Queues events, all or none.
    pub fn offer(&self, rows: Vec<AnalyticsRow>) -> Result<(), Full> {
        let permits = self.tx.try_reserve_many(rows.len()).map_err(|_| Full)?;
        for (permit, row) in permits.zip(rows) {
            permit.send(row);
        }
        Ok(())
    }

    /// Waits until everything accepted before shutdown is in the database.
    pub async fn drained(&self) {
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(flusher) = flusher {
            let _ = flusher.await;
        }
    }
}

async fn flush(db: Arc<dyn Database>, mut rx: mpsc::Receiver<AnalyticsRow>, shutdown: Shutdown) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
            () = shutdown.wait() => {
                rx.close();
                while rx.recv_many(&mut batch, BATCH).await > 0 {
                    insert(&db, &mut batch).await;
                }
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        insert(&db, &mut batch).await;
    }
}

async fn insert(db: &Arc<dyn Database>, batch: &mut Vec<AnalyticsRow>) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=5 {
        match db.insert_analytics(batch, false).await {
            Ok(n) => {
                metrics::counter!("tandem_analytics_rows_inserted_total").increment(n);
                batch.clear();
                return;
            }
            Err(e) if e.is_bad_data() => {
                // One row the database refuses must not cost everyone's.
                tracing::warn!(error = %e, rows = batch.len(), "analytics batch refused; inserting its rows one by one");
                insert_each(db, batch).await;
                return;
            }
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "inserting analytics failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "analytics rows dropped");
                metrics::counter!("tandem_analytics_rows_dropped_total")
                    .increment(batch.len() as u64);
                batch.clear();
            }
        }
    }
}

/// Inserts `batch` row by row, dropping (and counting) only refused rows.
async fn insert_each(db: &Arc<dyn Database>, batch: &mut Vec<AnalyticsRow>) {
    for row in batch.drain(..) {
        match db.insert_analytics(std::slice::from_ref(&row), false).await {
            Ok(n) => metrics::counter!("tandem_analytics_rows_inserted_total").increment(n),
            Err(e) => {
                tracing::warn!(error = %e, "an analytics row was refused and dropped");
                metrics::counter!("tandem_analytics_rows_dropped_total").increment(1);
            }
        }
    }
}
