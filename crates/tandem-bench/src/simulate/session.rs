//! One simulated visit: the steps of [`SCRIPT`] as one signed-in student,
//! against one of the Tandem URLs, every request timed.

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use reqwest::{Method, header};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{
    model::{Action, Community, SCRIPT, Step},
    stats::Recorder,
};

/// How long any request may take before it counts as failed.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
/// A client's retries of a request that met a restarting dependency (no
/// answer, 502, 503, 504), as the web app and proxies do.
pub(super) const RETRY_AFTER: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
    Duration::from_millis(4000),
];

fn transient(status: u16) -> bool {
    matches!(status, 0 | 502 | 503 | 504)
}

/// A student account the simulator signed up.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its e-mail.
    pub email: String,
    /// Its password.
    pub password: String,
    /// The session cookie (`name=value`).
    pub cookie: String,
}

/// Everything sessions share.
pub struct Sim {
    /// HTTP client (connection pools per host).
    pub http: reqwest::Client,
    /// Tandem base URLs; sessions are spread over them.
    pub urls: Vec<String>,
    /// Latencies and errors.
    pub recorder: Recorder,
    /// The load model of the current step.
    community: RwLock<Community>,
    /// Study rooms to join.
    pub rooms: RwLock<Vec<String>>,
    /// Path of an uploaded avatar, for image loads.
    pub avatar: RwLock<String>,
    /// Accounts not in a session now.
    pub accounts: Mutex<Vec<Account>>,
    /// Accounts signed up in all.
    pub account_count: AtomicUsize,
    /// AI jobs queued.
    pub jobs_queued: AtomicU64,
    /// AI jobs seen finished (`completed`, `failed`) by their session.
    pub jobs_finished: Mutex<(u64, u64)>,
    /// One watcher per queued AI job, polling its status as the app does.
    pub job_watchers: Mutex<tokio::task::JoinSet<JobState>>,
    /// Failed requests by action and HTTP status (0: no answer).
    pub failures: Mutex<std::collections::BTreeMap<(Action, u16), u64>>,
    /// Sessions that found no free account (the simulator's own limit).
    pub starved: AtomicU64,
    stopping: AtomicBool,
    stop: Notify,
    next_url: AtomicUsize,
}

impl Sim {
    /// Shared state for a run, with no accounts or rooms yet.
    pub fn new(urls: Vec<String>, community: Community) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .unwrap_or_default(),
            urls,
            recorder: Recorder::new(),
            community: RwLock::new(community),
            rooms: RwLock::default(),
            avatar: RwLock::default(),
            accounts: Mutex::default(),
            account_count: AtomicUsize::new(0),
            jobs_queued: AtomicU64::new(0),
            jobs_finished: Mutex::default(),
            job_watchers: Mutex::default(),
            failures: Mutex::default(),
            starved: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            next_url: AtomicUsize::new(0),
        }
    }

    /// The load model in force.
    pub fn community(&self) -> Community {
        self.community
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Switches to the next step's load model.
    pub fn set_community(&self, community: Community) {
        *self.community.write().unwrap_or_else(|e| e.into_inner()) = community;
    }

    /// Makes every session finish now (pauses end, remaining steps are skipped).
    pub fn stop_sessions(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Lets sessions run again.
    pub fn resume_sessions(&self) {
        self.stopping.store(false, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits `seconds` of real pace at the current speed, or until stopped.
    async fn pause(&self, seconds: f64) {
        let wait = self.community().pause(seconds);
        let stopped = self.stop.notified();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped => {}
        }
    }

    /// The next base URL, round robin.
    pub fn base(&self) -> String {
        let i = self.next_url.fetch_add(1, Ordering::Relaxed);
        self.urls[i % self.urls.len()].clone()
    }

    /// Sends the request `build` makes, again after a pause while the
    /// answer is transient (none, 502, 503, 504); the last response (or
    /// `None` if none came) and whether a retry was needed.
    async fn send_retrying(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> (Option<reqwest::Response>, bool) {
        let mut attempt = 0;
        loop {
            let res = build().timeout(TIMEOUT).send().await.ok();
            let status = res.as_ref().map_or(0, |r| r.status().as_u16());
            if !transient(status) || attempt == RETRY_AFTER.len() {
                return (res, attempt > 0);
            }
            tokio::time::sleep(RETRY_AFTER[attempt]).await;
            attempt += 1;
        }
    }

    /// Sends a request as `cookie`, records it under `action`; the JSON body
    /// of a 2xx answer (`Null` when empty), `None` otherwise.
    pub(super) async fn call(
        &self,
        action: Action,
        method: Method,
        url: String,
        cookie: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let began = Instant::now();
        let (res, retried) = self
            .send_retrying(|| {
                let req = self
                    .http
                    .request(method.clone(), &url)
                    .header(header::COOKIE, cookie);
                match &body {
                    Some(body) => req.json(body),
                    None => req,
                }
            })
            .await;
        let (status, answer) = match res {
            Some(res) if res.status().is_success() => {
                let bytes = res.bytes().await.ok();
                (
                    200,
                    bytes.map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null)),
                )
            }
            Some(res) => (res.status().as_u16(), None),
            None => (0, None),
        };
        self.recorder
            .record(action, began, answer.is_some(), retried);
        if answer.is_none() {
            self.failed(action, status);
        }
        answer
    }

    /// Counts a failure of `action` with `status` (0: no answer).
    pub(super) fn failed(&self, action: Action, status: u16) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((action, status))
            .or_default() += 1;
    }

    /// Whether `cookie` is still a live session (`GET /api/users/me` answers 200).
    pub async fn signed_in(&self, cookie: &str) -> bool {
        let url = format!("{}/api/users/me", self.base());
        let (res, _) = self
            .send_retrying(|| self.http.get(&url).header(header::COOKIE, cookie))
            .await;
        res.is_some_and(|r| r.status() == reqwest::StatusCode::OK)
    }

    /// Looks at a queued job once, counting it if it is finished.
    pub async fn job_state(&self, base: &str, cookie: &str, id: &str) -> JobState {
        let res = self
            .http
            .get(format!("{base}/api/jobs/{id}/status"))
            .timeout(TIMEOUT)
            .header(header::COOKIE, cookie)
            .send()
            .await;
        let state = match res {
            Ok(res) if res.status() == reqwest::StatusCode::NOT_FOUND => return JobState::Missing,
            Ok(res) if res.status().is_success() => res.json::<Value>().await.ok(),
            _ => None,
        };
        let mut finished = self.jobs_finished.lock().unwrap_or_else(|e| e.into_inner());
        match state.as_ref().and_then(|s| s["state"].as_str()) {
            Some("completed") => finished.0 += 1,
            Some("failed") => finished.1 += 1,
            _ => return JobState::Pending,
        }
        JobState::Finished
    }
}

/// How often a job watcher asks for its job's status (the app polls each second).
const JOB_POLL: Duration = Duration::from_secs(1);

/// Follows a queued job from the moment it was queued until the queue says
/// it finished (or no longer knows it), as the app's status polling does;
/// watching from the start matters because the queue keeps only its latest
/// finished jobs.
fn watch_job(sim: &Arc<Sim>, base: String, cookie: String, id: String) {
    let watcher = sim.clone();
    sim.job_watchers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .spawn(async move {
            loop {
                match watcher.job_state(&base, &cookie, &id).await {
                    JobState::Pending => tokio::time::sleep(JOB_POLL).await,
                    done => return done,
                }
            }
        });
}

/// What the queue says about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Completed or failed (and counted).
    Finished,
    /// Waiting, active, delayed, or the status could not be read.
    Pending,
    /// The queue does not know it.
    Missing,
}

/// Runs the script from step `start_at` (warm starts begin midway).
pub async fn session(sim: Arc<Sim>, start_at: usize) {
    let Some(mut account) = sim.accounts.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
        sim.starved.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let base = sim.base();
    let mut rng = StdRng::from_os_rng();
    let mut room: Option<super::channel::Room> = None;
    for step in &SCRIPT[start_at.min(SCRIPT.len())..] {
        if sim.stopping() {
            break;
        }
        run_step(&sim, &base, &mut account, &mut rng, &mut room, *step).await;
    }
    if let Some(room) = room.take() {
        room.leave(&sim, &base, &account.cookie).await;
    }
    sim.accounts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(account);
}

/// One step of the script for `account`; `room` is the room it is in.
async fn run_step(
    sim: &Arc<Sim>,
    base: &str,
    account: &mut Account,
    rng: &mut StdRng,
    room: &mut Option<super::channel::Room>,
    step: Step,
) {
    let cookie = account.cookie.clone();
    match step {
        Step::SignIn(p) => {
            if rng.random_bool(p) {
                sign_in(sim, base, account).await;
            }
        }
        Step::PageView(path) => {
            let body = json!({"visitorId": uuid::Uuid::new_v4(), "events": [{"type": "pageView", "path": path}]});
            let url = format!("{base}/api/analytics/events");
            sim.call(Action::PageView, Method::POST, url, &cookie, Some(body))
                .await;
        }
        Step::Profile => {
            for path in ["users/me", "achievements"] {
                get(sim, Action::Profile, format!("{base}/api/{path}"), &cookie).await;
            }
        }
        Step::Matching => {
            sim.call(
                Action::Matching,
                Method::POST,
                format!("{base}/api/partners/matching"),
                &cookie,
                Some(json!({})),
            )
            .await;
        }
        Step::JoinRoom => {
            let id = sim
                .rooms
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .choose(rng)
                .cloned();
            if let Some(id) = id {
                *room = super::channel::join_room(sim, base, &cookie, id).await;
            }
        }
        Step::Ice => {
            get(
                sim,
                Action::Ice,
                format!("{base}/api/webrtc/ice-servers"),
                &cookie,
            )
            .await;
        }
        Step::Images(n) => images(sim, base, &cookie, n, rng).await,
        Step::Chat => {
            if let Some(room) = room {
                room.typing(sim).await;
                let body =
                    json!({"body": format!("working on problem {}", rng.random_range(1..100))});
                let url = format!("{base}/api/study-sessions/{}/messages", room.id);
                sim.call(Action::ChatSend, Method::POST, url, &cookie, Some(body))
                    .await;
            }
        }
        Step::Ai(p) => {
            if rng.random_bool(p) {
                ask_ai(sim, base, &cookie).await;
            }
        }
        Step::LeaveRoom => {
            if let Some(room) = room.take() {
                room.leave(sim, base, &cookie).await;
            }
        }
        Step::Pause(seconds) => sim.pause(seconds).await,
    }
}

async fn get(sim: &Sim, action: Action, url: String, cookie: &str) {
    sim.call(action, Method::GET, url, cookie, None).await;
}

/// `n` avatar variants of random widths, as a page of partners shows them.
async fn images(sim: &Sim, base: &str, cookie: &str, n: u32, rng: &mut StdRng) {
    for _ in 0..n {
        let width = [64, 96, 128].choose(rng).copied().unwrap_or(64);
        let avatar = sim.avatar.read().unwrap_or_else(|e| e.into_inner()).clone();
        get(
            sim,
            Action::Image,
            format!("{base}/cdn-cgi/image/width={width},quality=75{avatar}"),
            cookie,
        )
        .await;
    }
}

/// Queues a progress analysis and watches its job to the end.
async fn ask_ai(sim: &Arc<Sim>, base: &str, cookie: &str) {
    let url = format!("{base}/api/ai/progress-analysis");
    if let Some(job) = sim
        .call(Action::Ai, Method::POST, url, cookie, Some(json!({})))
        .await
        && let Some(id) = job["jobId"].as_str()
    {
        sim.jobs_queued.fetch_add(1, Ordering::Relaxed);
        watch_job(sim, base.to_owned(), cookie.to_owned(), id.to_owned());
    }
}

async fn sign_in(sim: &Sim, base: &str, account: &mut Account) {
    let began = Instant::now();
    let url = format!("{base}/api/auth/login");
    let body = json!({"email": account.email, "password": account.password});
    let (res, retried) = sim.send_retrying(|| sim.http.post(&url).json(&body)).await;
    let status = res.as_ref().map_or(0, |r| r.status().as_u16());
    let cookie = res
        .filter(|r| r.status().is_success())
        .and_then(|r| session_cookie(r.headers()));
    sim.recorder
        .record(Action::SignIn, began, cookie.is_some(), retried);
    match cookie {
        Some(cookie) => account.cookie = cookie,
        None => sim.failed(Action::SignIn, status),
    }
}

/// The `name=value` of a response's session cookie.
pub fn session_cookie(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.contains("tandem_session"))
        .find_map(|v| v.split(';').next().map(str::to_owned))
}
