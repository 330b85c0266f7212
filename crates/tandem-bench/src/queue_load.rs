//! Issue 5: no-op jobs through Tandem's queue and Node BullMQ on the same
//! Redis, side by side; the embedded SQLite backend alone; pickup latency.
//!
//! Each throughput run first adds all jobs, then times a worker from start
//! until every job has completed, and reads the worker process's CPU time
//! over that phase (Tandem: this process; Node: `process.cpuUsage()`), plus
//! the Redis server's.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Value, json};
use tandem_core::Shutdown;
use tandem_db::{Database, sqlite::SqliteDatabase};
use tandem_queue::{
    Job, JobError, NewJob, Processor, QueueBackend, Retention, WorkerOptions,
    database::DatabaseQueue, redis::RedisQueue,
};
use tokio::sync::Notify;

/// `tandem-bench queue-load` options.
#[derive(clap::Args)]
pub struct Args {
    /// Redis shared by Tandem and Node BullMQ.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// No-op jobs per throughput run.
    #[arg(long, default_value_t = 50_000)]
    jobs: usize,
    /// Worker concurrencies to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,1")]
    concurrency: Vec<usize>,
    /// Which sides to run: tandem-redis, bullmq-node, tandem-sqlite.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tandem-redis,bullmq-node,tandem-sqlite"
    )]
    targets: Vec<String>,
    /// Jobs added one by one to measure pickup latency (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    latency_jobs: usize,
    /// Runtime threads of this process (the Tandem side's worker).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Directory of the Node BullMQ peer (`npm ci` done there).
    #[arg(long, default_value = "bench/node-bullmq")]
    node_dir: PathBuf,
}

/// One throughput run.
struct Run {
    seconds: f64,
    cpu_seconds: f64,
    redis_cpu_seconds: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let redis_pid = redis_pid(&args.redis_url).await?;
    println!(
        "queue-load: {} no-op jobs per run, retention 100/50, Redis pid {redis_pid}",
        args.jobs
    );
    for &concurrency in &args.concurrency {
        let mut results: Vec<(String, Run)> = Vec::new();
        for target in &args.targets {
            let redis_before = cpu_seconds(&redis_pid);
            let mut run = match target.as_str() {
                "tandem-redis" => {
                    let prefix = prefix();
                    let queue = RedisQueue::new(&args.redis_url, &prefix, Retention::default());
                    let run = tandem_throughput(&queue, args.jobs, concurrency).await?;
                    remove_keys(&args.redis_url, &prefix).await?;
                    run
                }
                "tandem-sqlite" => {
                    let dir = tempfile_dir()?;
                    let db =
                        SqliteDatabase::open(&dir.join("bench.db"), &Default::default()).await?;
                    db.migrate().await?;
                    let db: Arc<dyn Database> = Arc::new(db);
                    let queue = DatabaseQueue::new(db, Retention::default());
                    let run = tandem_throughput(&queue, args.jobs, concurrency).await?;
                    let _ = std::fs::remove_dir_all(&dir);
                    run
                }
                "bullmq-node" => node_throughput(&args, concurrency).await?,
                other => anyhow::bail!("unknown target {other}"),
            };
            run.redis_cpu_seconds = cpu_seconds(&redis_pid) - redis_before;
            println!(
                "  concurrency {concurrency:>3} {target:<14} {:>9.0} jobs/s  worker CPU {:>6.2} s ({:.3} ms/job)  redis CPU {:>6.2} s",
                args.jobs as f64 / run.seconds,
                run.cpu_seconds,
                run.cpu_seconds * 1000.0 / args.jobs as f64,
                run.redis_cpu_seconds,
            );
            results.push((target.clone(), run));
        }
        print_ratios(&results, args.jobs);
    }
    if args.latency_jobs > 0 {
        latency(&args).await?;
    }
    Ok(())
}

fn print_ratios(results: &[(String, Run)], jobs: usize) {
    let find = |name: &str| results.iter().find(|(t, _)| t == name).map(|(_, r)| r);
    if let (Some(t), Some(n)) = (find("tandem-redis"), find("bullmq-node")) {
        let rate = |r: &Run| jobs as f64 / r.seconds;
        println!(
            "  ratio tandem/node: {:.2}x jobs/s, {:.2}x CPU per job (lower is better)",
            rate(t) / rate(n),
            t.cpu_seconds / n.cpu_seconds,
        );
    }
}

/// Counts completions; wakes the bench at the last one.
struct NoOp {
    done: AtomicUsize,
    target: usize,
    all_done: Notify,
}

#[async_trait]
impl Processor for NoOp {
    async fn process(&self, _job: &Job) -> Result<Value, JobError> {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.all_done.notify_one();
        }
        Ok(Value::Null)
    }
}

async fn tandem_throughput(
    queue: &dyn QueueBackend,
    jobs: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
    add_all(queue, &name, jobs).await?;
    let processor = Arc::new(NoOp {
        done: AtomicUsize::new(0),
        target: jobs,
        all_done: Notify::new(),
    });
    let shutdown = Shutdown::new();
    let options = WorkerOptions {
        concurrency,
        ..WorkerOptions::default()
    };
    let cpu0 = cpu_seconds("self");
    let started = Instant::now();
    let work = queue.work(&name, options, processor.clone(), shutdown.clone());
    let finished = async {
        processor.all_done.notified().await;
        // The last completions are written after their processor returned.
        loop {
            let c = queue.counts(&name).await?;
            if c.active + c.waiting == 0 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (seconds, cpu_seconds) = tokio::select! {
        done = finished => {
            done?;
            (started.elapsed().as_secs_f64(), cpu_seconds("self") - cpu0)
        }
        stopped = work => anyhow::bail!("worker stopped early: {stopped:?}"),
    };
    shutdown.trigger();
    Ok(Run {
        seconds,
        cpu_seconds,
        redis_cpu_seconds: 0.0,
    })
}

/// Adds `jobs` no-op jobs, 64 in flight at a time.
async fn add_all(queue: &dyn QueueBackend, name: &str, jobs: usize) -> anyhow::Result<()> {
    use futures_util::{StreamExt, stream};
    let mut adds = stream::iter(0..jobs)
        .map(|i| queue.add(name, NewJob::new("noop", json!({ "i": i }))))
        .buffer_unordered(64);
    while let Some(added) = adds.next().await {
        added?;
    }
    Ok(())
}

async fn node_throughput(args: &Args, concurrency: usize) -> anyhow::Result<Run> {
    let out = node(args, "throughput", args.jobs, concurrency).await?;
    Ok(Run {
        seconds: out["seconds"].as_f64().context("seconds")?,
        cpu_seconds: out["cpu_seconds"].as_f64().context("cpu_seconds")?,
        redis_cpu_seconds: 0.0,
    })
}

async fn node(args: &Args, mode: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let queue = format!("bench-node-{}", uuid::Uuid::new_v4().simple());
    let output = tokio::process::Command::new("node")
        .arg("bench.mjs")
        .args(["--mode", mode, "--queue", &queue, "--prefix", &prefix()])
        .args(["--jobs", &jobs.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .env("REDIS_URL", &args.redis_url)
        .current_dir(&args.node_dir)
        .output()
        .await
        .context("running node (is Node.js installed and `npm ci` done in bench/node-bullmq?)")?;
    anyhow::ensure!(
        output.status.success(),
        "node peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).context("node peer printed no JSON")
}

/// Records pickup delay: now minus the send time carried in the job.
struct Latency {
    delays_ms: std::sync::Mutex<Vec<f64>>,
    target: usize,
    all_done: Notify,
}

#[async_trait]
impl Processor for Latency {
    async fn process(&self, job: &Job) -> Result<Value, JobError> {
        let sent = job.data["t"].as_f64().unwrap_or(0.0);
        let mut delays = self.delays_ms.lock().unwrap_or_else(|e| e.into_inner());
        delays.push(now_ms() - sent);
        if delays.len() == self.target {
            self.all_done.notify_one();
        }
        Ok(Value::Null)
    }
}

async fn latency(args: &Args) -> anyhow::Result<()> {
    let n = args.latency_jobs;
    let key_prefix = prefix();
    let queue = RedisQueue::new(&args.redis_url, &key_prefix, Retention::default());
    let name = format!("bench-lat-{}", uuid::Uuid::new_v4().simple());
    let processor = Arc::new(Latency {
        delays_ms: std::sync::Mutex::default(),
        target: n,
        all_done: Notify::new(),
    });
    let shutdown = Shutdown::new();
    let options = WorkerOptions::default();
    let worker = queue.work(&name, options, processor.clone(), shutdown.clone());
    let feed = async {
        // Let the worker reach its blocking fetch before the first job.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..n {
            let job = NewJob::new("latency", json!({ "t": now_ms() }));
            queue.add(&name, job).await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        processor.all_done.notified().await;
        anyhow::Ok(())
    };
    tokio::select! {
        fed = feed => fed?,
        stopped = worker => anyhow::bail!("worker stopped early: {stopped:?}"),
    }
    shutdown.trigger();
    remove_keys(&args.redis_url, &key_prefix).await?;
    let mut delays = processor
        .delays_ms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    delays.sort_by(f64::total_cmp);
    let q = |p: f64| delays[((delays.len() as f64 * p).ceil() as usize).clamp(1, delays.len()) - 1];
    println!(
        "  pickup latency, tandem-redis: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms ({n} jobs, one every ~2 ms)",
        q(0.5),
        q(0.99),
        delays[delays.len() - 1]
    );
    let node = node(args, "latency", n, 1).await?;
    println!(
        "  pickup latency, bullmq-node:  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        node["p50_ms"].as_f64().unwrap_or(f64::NAN),
        node["p99_ms"].as_f64().unwrap_or(f64::NAN),
        node["max_ms"].as_f64().unwrap_or(f64::NAN),
    );
    Ok(())
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A key prefix of its own per run, so runs never see each other's jobs.
fn prefix() -> String {
    format!("bench-{}", uuid::Uuid::new_v4().simple())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tandem-queue-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn redis_pid(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|p| p.trim().to_owned())
        .context("Redis INFO has no process_id")
}

/// Deletes what a run left on Redis (kept jobs, event streams, metadata).
async fn remove_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    for chunk in keys.chunks(500) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// User + system CPU of a process (`self` for this one), in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    crate::realtime_load::cpu_ticks(pid) as f64 / 100.0
}
