//! The job queue's promises, on every engine: SQLite and PostgreSQL (the
//! database backend) and Redis (BullMQ's layout). The reliability test kills
//! real worker processes with SIGKILL; the children are this test binary,
//! re-executed to run only the ignored `queue::worker_child` entry point.

use std::{
    future::Future,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde_json::{Value, json};
use tandem_core::Shutdown;
use tandem_db::{Database, sqlite::SqliteDatabase};
use tandem_queue::{
    JobError, JobOptions, JobState, NewJob, Processor, QueueBackend, Retention, WorkerOptions,
    database::DatabaseQueue, redis::RedisQueue,
};
use tempfile::TempDir;

use crate::helpers::Backend;

/// The engine under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
    Redis,
}

/// A queue engine, a fresh queue name, and how a child process reaches them.
struct Fixture {
    backend: Arc<dyn QueueBackend>,
    queue: String,
    engine: Engine,
    /// SQLite file path, PostgreSQL URL or Redis URL.
    location: String,
    _dir: Option<TempDir>,
}

impl Fixture {
    /// A job that must still be in the queue.
    async fn job(&self, id: &str) -> tandem_queue::JobInfo {
        let job = self.backend.job(&self.queue, id).await.expect("job");
        job.expect("the job is kept")
    }
}

async fn connect(engine: Engine, location: &str) -> Arc<dyn QueueBackend> {
    match engine {
        Engine::Sqlite | Engine::Postgres => {
            let db: Arc<dyn Database> = if engine == Engine::Sqlite {
                Arc::new(
                    SqliteDatabase::open(&PathBuf::from(location), &Default::default())
                        .await
                        .expect("open sqlite"),
                )
            } else {
                tandem_db::connect(
                    Some(location),
                    std::path::Path::new("."),
                    &Default::default(),
                )
                .await
                .expect("connect postgres")
            };
            db.migrate().await.expect("migrate");
            Arc::new(DatabaseQueue::new(db, Retention::default()))
        }
        Engine::Redis => Arc::new(RedisQueue::new(location, "bull", Retention::default())),
    }
}

async fn fixture(engine: Engine) -> Option<Fixture> {
    let (location, dir) = match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("queue.db");
            (path.to_string_lossy().into_owned(), Some(dir))
        }
        Engine::Postgres => match Backend::distributed().await? {
            Backend::Distributed { database_url, .. } => (database_url, None),
            Backend::Embedded => unreachable!(),
        },
        Engine::Redis => match Backend::distributed().await? {
            Backend::Distributed { redis_url, .. } => (redis_url, None),
            Backend::Embedded => unreachable!(),
        },
    };
    Some(Fixture {
        backend: connect(engine, &location).await,
        queue: format!("test-{}", uuid::Uuid::new_v4().simple()),
        engine,
        location,
        _dir: dir,
    })
}

macro_rules! on_every_queue {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
            if let Some(f) = super::fixture(super::Engine::Sqlite).await { super::$name(f).await }
        })* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
            if let Some(f) = super::fixture(super::Engine::Postgres).await { super::$name(f).await }
        })* }
        mod redis { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
            if let Some(f) = super::fixture(super::Engine::Redis).await { super::$name(f).await }
        })* }
    };
}

on_every_queue!(
    jobs_complete_with_results_and_progress,
    retries_follow_the_backoff_then_fail_with_the_reason,
    fatal_errors_fail_without_retrying,
    delayed_jobs_wait_and_priorities_order_the_rest,
    an_id_deduplicates,
    retention_keeps_the_last_100_completed_and_50_failed,
    shutdown_hands_active_jobs_back,
    killed_workers_lose_no_jobs,
);

/// Polls `check` until it holds; fails the test after `limit`.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker running in this process.
struct Running(Shutdown, tokio::task::JoinHandle<()>);

impl Running {
    /// Stops it and waits until it has handed its jobs back.
    async fn stop(self) {
        self.0.trigger();
        self.1.await.expect("worker stops");
    }
}

/// Starts a worker on the fixture's queue.
fn spawn_worker(f: &Fixture, options: WorkerOptions, processor: Arc<dyn Processor>) -> Running {
    let shutdown = Shutdown::new();
    let (backend, queue, stop) = (f.backend.clone(), f.queue.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        backend
            .work(&queue, options, processor, stop)
            .await
            .expect("worker runs");
    });
    Running(shutdown, task)
}

fn concurrency(n: usize) -> WorkerOptions {
    WorkerOptions {
        concurrency: n,
        ..WorkerOptions::default()
    }
}

async fn counts_reach(f: &Fixture, completed: u64, failed: u64) {
    until("job counts", Duration::from_secs(30), || async {
        let c = f.backend.counts(&f.queue).await.expect("counts");
        c.completed == completed && c.failed == failed
    })
    .await;
}

struct Doubler;

#[async_trait]
impl Processor for Doubler {
    async fn process(&self, job: &tandem_queue::Job) -> Result<Value, JobError> {
        job.progress(json!(50))
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let n = job.data["n"]
            .as_i64()
            .ok_or_else(|| JobError::fatal("n missing"))?;
        Ok(json!({ "double": n * 2 }))
    }
}

async fn jobs_complete_with_results_and_progress(f: Fixture) {
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = f
            .backend
            .add(&f.queue, NewJob::new("double", json!({ "n": n })))
            .await;
        ids.push(id.expect("add"));
    }
    let worker = spawn_worker(&f, concurrency(4), Arc::new(Doubler));
    counts_reach(&f, 20, 0).await;
    for (n, id) in ids.iter().enumerate() {
        let job = f.job(id).await;
        assert_eq!(job.state, JobState::Completed);
        assert_eq!(job.result, Some(json!({ "double": n * 2 })));
        assert_eq!(job.progress, json!(50));
        assert_eq!(job.name, "double");
    }
    assert!(
        f.backend
            .job(&f.queue, "no-such-job")
            .await
            .expect("job")
            .is_none()
    );
    worker.stop().await;
}

/// Fails every attempt, recording when each started.
#[derive(Default)]
struct AlwaysFails {
    fatal: bool,
    starts: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Processor for AlwaysFails {
    async fn process(&self, job: &tandem_queue::Job) -> Result<Value, JobError> {
        self.starts.lock().expect("lock").push(Instant::now());
        let message = format!("attempt {} broke", job.attempts_made + 1);
        Err(if self.fatal {
            JobError::fatal(message)
        } else {
            JobError::retryable(message)
        })
    }
}

async fn retries_follow_the_backoff_then_fail_with_the_reason(f: Fixture) {
    let options = JobOptions {
        attempts: 3,
        backoff: Duration::from_millis(200),
        ..JobOptions::default()
    };
    let job = NewJob {
        options,
        ..NewJob::new("flaky", json!({}))
    };
    let id = f.backend.add(&f.queue, job).await.expect("add");
    let processor = Arc::new(AlwaysFails::default());
    let worker = spawn_worker(&f, concurrency(1), processor.clone());
    counts_reach(&f, 0, 1).await;
    let job = f.job(&id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts_made, 3);
    assert_eq!(job.failed_reason.as_deref(), Some("attempt 3 broke"));
    let starts = processor.starts.lock().expect("lock").clone();
    assert_eq!(starts.len(), 3, "one run per attempt");
    for (gap, backoff) in starts.windows(2).map(|w| w[1] - w[0]).zip([200, 400]) {
        let backoff = Duration::from_millis(backoff);
        assert!(
            gap >= backoff - Duration::from_millis(15) && gap < backoff + Duration::from_secs(2),
            "retry after {gap:?}, backoff {backoff:?}"
        );
    }
    worker.stop().await;
}

async fn fatal_errors_fail_without_retrying(f: Fixture) {
    let id = f
        .backend
        .add(&f.queue, NewJob::new("bad", json!({})))
        .await
        .expect("add");
    let processor = Arc::new(AlwaysFails {
        fatal: true,
        ..AlwaysFails::default()
    });
    let worker = spawn_worker(&f, concurrency(1), processor.clone());
    counts_reach(&f, 0, 1).await;
    let job = f.job(&id).await;
    assert_eq!(job.failed_reason.as_deref(), Some("attempt 1 broke"));
    assert_eq!(processor.starts.lock().expect("lock").len(), 1);
    worker.stop().await;
}

/// Records the names of the jobs it runs, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl Processor for Recorder {
    async fn process(&self, job: &tandem_queue::Job) -> Result<Value, JobError> {
        self.0.lock().expect("lock").push(job.name.clone());
        Ok(Value::Null)
    }
}

async fn delayed_jobs_wait_and_priorities_order_the_rest(f: Fixture) {
    let with = |name: &str, priority: u32, delay: u64| NewJob {
        options: JobOptions {
            priority,
            delay: Duration::from_millis(delay),
            ..JobOptions::default()
        },
        ..NewJob::new(name, json!({}))
    };
    let delayed = f
        .backend
        .add(&f.queue, with("later", 9, 2000))
        .await
        .expect("add");
    for (name, priority) in [("p3", 3), ("p1", 1), ("p2", 2)] {
        f.backend
            .add(&f.queue, with(name, priority, 0))
            .await
            .expect("add");
    }
    let job = f.job(&delayed).await;
    assert_eq!(job.state, JobState::Delayed);
    let recorder = Arc::new(Recorder::default());
    let worker = spawn_worker(&f, concurrency(1), recorder.clone());
    counts_reach(&f, 4, 0).await;
    assert_eq!(
        *recorder.0.lock().expect("lock"),
        ["p1", "p2", "p3", "later"]
    );
    let job = f.job(&delayed).await;
    let waited = job.processed_on.expect("processed") - job.created_at;
    assert!(waited >= 2000, "delayed job ran after {waited} ms");
    worker.stop().await;
}

async fn an_id_deduplicates(f: Fixture) {
    let job = || NewJob {
        options: JobOptions {
            id: Some("matching-user-7".into()),
            ..JobOptions::default()
        },
        ..NewJob::new("match", json!({ "n": 1 }))
    };
    let first = f.backend.add(&f.queue, job()).await.expect("add");
    let second = f.backend.add(&f.queue, job()).await.expect("add again");
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("matching-user-7", "matching-user-7")
    );
    let counts = f.backend.counts(&f.queue).await.expect("counts");
    assert_eq!(counts.waiting, 1);
}

/// Completes jobs named `ok`, fails the others for good.
struct OkOrFail;

#[async_trait]
impl Processor for OkOrFail {
    async fn process(&self, job: &tandem_queue::Job) -> Result<Value, JobError> {
        match job.name.as_str() {
            "ok" => Ok(json!(true)),
            _ => Err(JobError::fatal("no")),
        }
    }
}

async fn retention_keeps_the_last_100_completed_and_50_failed(f: Fixture) {
    for i in 0..180 {
        let name = if i % 3 == 0 { "bad" } else { "ok" };
        f.backend
            .add(&f.queue, NewJob::new(name, json!({ "i": i })))
            .await
            .expect("add");
    }
    let worker = spawn_worker(&f, concurrency(8), Arc::new(OkOrFail));
    until("every job to run", Duration::from_secs(30), || async {
        let c = f.backend.counts(&f.queue).await.expect("counts");
        c.waiting + c.active + c.delayed == 0
    })
    .await;
    worker.stop().await;
    counts_reach(&f, 100, 50).await;
    let newest = f.backend.failed(&f.queue, 1).await.expect("failed");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].failed_reason.as_deref(), Some("no"));
}

/// Never finishes.
struct Hangs;

#[async_trait]
impl Processor for Hangs {
    async fn process(&self, _job: &tandem_queue::Job) -> Result<Value, JobError> {
        std::future::pending().await
    }
}

async fn shutdown_hands_active_jobs_back(f: Fixture) {
    let id = f
        .backend
        .add(&f.queue, NewJob::new("long", json!({ "n": 4 })))
        .await
        .expect("add");
    let options = WorkerOptions {
        shutdown_grace: Duration::from_millis(100),
        ..concurrency(1)
    };
    let worker = spawn_worker(&f, options, Arc::new(Hangs));
    until("the job to start", Duration::from_secs(10), || async {
        let job = f.job(&id).await;
        job.state == JobState::Active
    })
    .await;
    worker.stop().await;
    let job = f.job(&id).await;
    assert_eq!((job.state, job.attempts_made), (JobState::Waiting, 0));
    let worker = spawn_worker(&f, concurrency(1), Arc::new(Doubler));
    counts_reach(&f, 1, 0).await;
    worker.stop().await;
}

const CHILD_ENV: &str = "TANDEM_TEST_QUEUE_CHILD";
/// What a worker child prints once it is connected (and migrated).
const CHILD_READY: &str = "worker child ready";
const STALLED_INTERVAL: Duration = Duration::from_secs(2);

/// Sleeps a while, then completes: long enough to be killed mid-job.
struct Slow;

#[async_trait]
impl Processor for Slow {
    async fn process(&self, _job: &tandem_queue::Job) -> Result<Value, JobError> {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(json!("done"))
    }
}

/// Entry point of the worker processes `killed_workers_lose_no_jobs` kills.
#[tokio::test]
#[ignore = "run as a child process by killed_workers_lose_no_jobs"]
async fn worker_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (engine, queue, location) = (
        parts.next().expect("engine"),
        parts.next().expect("queue"),
        parts.next().expect("location"),
    );
    let engine = match engine {
        "sqlite" => Engine::Sqlite,
        "postgres" => Engine::Postgres,
        _ => Engine::Redis,
    };
    let options = WorkerOptions {
        concurrency: 5,
        stalled_interval: STALLED_INTERVAL,
        max_stalled: 100,
        ..WorkerOptions::default()
    };
    let backend = connect(engine, location).await;
    println!("{CHILD_READY}");
    backend
        .work(queue, options, Arc::new(Slow), Shutdown::new())
        .await
        .expect("child worker");
}

fn spawn_child(f: &Fixture) -> Child {
    let engine = format!("{:?}", f.engine).to_lowercase();
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["queue::worker_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, format!("{engine}|{}|{}", f.queue, f.location))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker process")
}

/// Waits until the child has said it is connected, then keeps draining its
/// output so it never blocks on a full pipe.
async fn child_ready(child: &mut Child) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready, said) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if line == CHILD_READY
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), said)
        .await
        .expect("the worker child to start within 30 s")
        .expect("the worker child said it was ready");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

async fn killed_workers_lose_no_jobs(f: Fixture) {
    const JOBS: usize = 40;
    let mut ids = Vec::new();
    for n in 0..JOBS {
        ids.push(
            f.backend
                .add(&f.queue, NewJob::new("slow", json!({ "n": n })))
                .await
                .expect("add"),
        );
    }
    let mut child = spawn_child(&f);
    child_ready(&mut child).await;
    for round in 0..3 {
        until("jobs to be active", Duration::from_secs(20), || async {
            f.backend.counts(&f.queue).await.expect("counts").active > 0
        })
        .await;
        let mut active = Vec::new();
        for id in &ids {
            let job = f.job(id).await;
            if job.state == JobState::Active {
                active.push(id.clone());
            }
        }
        child.kill().expect("SIGKILL the worker");
        child.wait().expect("reap");
        let killed_at = (Instant::now(), now_ms());
        child = spawn_child(&f);
        // The child's own start (exec, connect, migrate) is the test's cost: in a
        // deployment the surviving workers are already running.
        child_ready(&mut child).await;
        let start_up = killed_at.0.elapsed();
        until(
            "the killed worker's jobs to run again",
            Duration::from_secs(20),
            || async {
                for id in &active {
                    let job = f.job(id).await;
                    let finished_before = job.state == JobState::Completed
                        && job.finished_on.is_some_and(|t| t <= killed_at.1);
                    if job.processed_on.unwrap_or(0) <= killed_at.1 && !finished_before {
                        return false;
                    }
                }
                true
            },
        )
        .await;
        let recovered = killed_at.0.elapsed();
        eprintln!(
            "round {round}: {} jobs running again {recovered:?} after the kill, {start_up:?} of it starting the new worker",
            active.len()
        );
        assert!(
            recovered < 2 * STALLED_INTERVAL + start_up,
            "recovery took {recovered:?}, {start_up:?} of it starting the new worker"
        );
    }
    until("every job to complete", Duration::from_secs(60), || async {
        f.backend.counts(&f.queue).await.expect("counts").completed == JOBS as u64
    })
    .await;
    child.kill().expect("stop the last worker");
    child.wait().expect("reap");
    let counts = f.backend.counts(&f.queue).await.expect("counts");
    assert_eq!((counts.failed, counts.waiting, counts.delayed), (0, 0, 0));
}

/// The database engine's rules run on its clock, not the wall's: a job
/// delayed by an hour stays delayed until the (manual) clock has moved that
/// hour, then a worker runs it at once. (BullMQ keeps its own time in Redis.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_engine_runs_on_its_clock() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("queue.db");
    let db = SqliteDatabase::open(&path, &Default::default())
        .await
        .expect("open sqlite");
    db.migrate().await.expect("migrate");
    let clock = Arc::new(tandem_core::ManualClock::new());
    let queue = DatabaseQueue::new(Arc::new(db), Retention::default()).with_clock(clock.clone());
    let f = Fixture {
        backend: Arc::new(queue),
        queue: "clocked".into(),
        engine: Engine::Sqlite,
        location: path.to_string_lossy().into_owned(),
        _dir: Some(dir),
    };
    let job = NewJob {
        options: JobOptions {
            delay: Duration::from_secs(3600),
            ..JobOptions::default()
        },
        ..NewJob::new("double", json!({ "n": 2 }))
    };
    let later = f.backend.add(&f.queue, job).await.expect("add");
    let worker = spawn_worker(&f, concurrency(1), Arc::new(Doubler));
    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(f.job(&later).await.state, JobState::Delayed);
    clock.advance(chrono::Duration::minutes(1));
    counts_reach(&f, 1, 0).await;
    assert_eq!(f.job(&later).await.result, Some(json!({ "double": 4 })));
    worker.stop().await;
}
