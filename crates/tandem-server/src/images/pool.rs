//! The image pool: every decode, resize and encode (variants and uploads
//! alike) runs here, at most one per core and within a memory budget, behind
//! a bounded queue. A job waits for its memory and a core; a job whose
//! requester has gone before it starts is dropped unstarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::ImageError;

/// Bounded CPU and memory for image work.
pub struct Pool {
    cores: Arc<Semaphore>,
    /// Pixel memory, in MiB permits.
    memory: Arc<Semaphore>,
    memory_mb: u32,
    queue_max: usize,
    queued: Arc<AtomicUsize>,
    stats: Arc<Stats>,
}

/// High-water marks, for tests and metrics.
#[derive(Default)]
struct Stats {
    running: AtomicU64,
    peak_running: AtomicU64,
    memory_mb: AtomicU64,
    peak_memory_mb: AtomicU64,
}

/// A place in the queue, held from admission until the job ends.
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("tandem_image_jobs_queued").decrement(1.0);
    }
}

/// Counts a running job until dropped (on the blocking thread).
struct Running {
    stats: Arc<Stats>,
    memory_mb: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stats.running.fetch_sub(1, Ordering::Relaxed);
        self.stats
            .memory_mb
            .fetch_sub(self.memory_mb, Ordering::Relaxed);
    }
}

impl Pool {
    /// `cores` jobs at once, `memory_mb` MiB of pixels among them, and at
    /// most `queue_max` jobs admitted (waiting or running).
    pub fn new(cores: usize, memory_mb: u32, queue_max: usize) -> Self {
        let memory_mb = memory_mb.max(1);
        Self {
            cores: Arc::new(Semaphore::new(cores.max(1))),
            memory: Arc::new(Semaphore::new(memory_mb as usize)),
            memory_mb,
            queue_max: queue_max.max(1),
            queued: Arc::new(AtomicUsize::new(0)),
            stats: Arc::new(Stats::default()),
        }
    }

    /// Admits a job, or `Busy` when the queue is full.
    pub fn admit(&self) -> Result<Ticket, ImageError> {
        let ahead = self.queued.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("tandem_image_jobs_queued").increment(1.0);
        let ticket = Ticket(self.queued.clone());
        if ahead >= self.queue_max {
            metrics::counter!("tandem_image_jobs_refused_total").increment(1);
            return Err(ImageError::Busy);
        }
        Ok(ticket)
    }

    /// Runs `job` on a blocking thread once `memory_bytes` of the memory
    /// budget (all of it, for a job larger than the budget) and a core are
    /// free, unless `abandoned` completes first (the requester left): then
    /// the job never starts. Once started it runs to the end.
    pub async fn run<T: Send + 'static>(
        &self,
        ticket: Ticket,
        memory_bytes: u64,
        abandoned: impl Future<Output = ()>,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ImageError> {
        let mb = u32::try_from(memory_bytes.div_ceil(1 << 20))
            .unwrap_or(u32::MAX)
            .clamp(1, self.memory_mb);
        let permits = async {
            let memory = self.memory.clone().acquire_many_owned(mb).await;
            let core = self.cores.clone().acquire_owned().await;
            memory.and_then(|m| core.map(|c| (m, c)))
        };
        let permits = tokio::select! {
            biased;
            () = abandoned => return Err(ImageError::Abandoned),
            permits = permits => permits.map_err(|e| ImageError::Unavailable(e.to_string()))?,
        };
        let stats = self.stats.clone();
        let running = stats.running.fetch_add(1, Ordering::Relaxed) + 1;
        stats.peak_running.fetch_max(running, Ordering::Relaxed);
        let memory = stats.memory_mb.fetch_add(u64::from(mb), Ordering::Relaxed) + u64::from(mb);
        stats.peak_memory_mb.fetch_max(memory, Ordering::Relaxed);
        let guard = Running {
            stats,
            memory_mb: u64::from(mb),
        };
        tokio::task::spawn_blocking(move || {
            // Held until the job ends, even if every caller went away; the
            // count drops before the permits let the next job in.
            let _held = (guard, permits, ticket);
            let output = job();
            // The job's buffers are freed by now: give them back before
            // this thread goes idle with them.
            tandem_core::memory::release_freed();
            output
        })
        .await
        .map_err(|e| ImageError::Unavailable(e.to_string()))
    }

    /// Most jobs that ran at once.
    pub fn peak_running(&self) -> u64 {
        self.stats.peak_running.load(Ordering::Relaxed)
    }

    /// Most pixel memory (MiB) reserved at once.
    pub fn peak_memory_mb(&self) -> u64 {
        self.stats.peak_memory_mb.load(Ordering::Relaxed)
    }

    /// Jobs running now.
    pub fn running(&self) -> u64 {
        self.stats.running.load(Ordering::Relaxed)
    }

    /// Jobs admitted and not yet finished (waiting or running).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Pixel memory a job may use at its peak: the decoded source and a
/// converted copy of it (8-bit RGBA), and the output twice (resized, and
/// the encoder's working memory).
pub fn estimate_bytes(source_pixels: u64, output_pixels: u64) -> u64 {
    source_pixels
        .saturating_mul(8)
        .saturating_add(output_pixels.saturating_mul(8))
}
