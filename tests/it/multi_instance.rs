//! The roadmap's point: with Redis and PostgreSQL, a login through one
//! `tandem serve` process is a login on every process, and survives restarts.

use std::{path::Path, process::Stdio, time::Duration};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::helpers::{Backend, Client, PASSWORD, assert_problem, unique_email};

/// A `tandem serve` child process.
pub struct Instance {
    child: Child,
    /// The URL it announced.
    pub url: String,
}

impl Instance {
    /// Starts the real binary and waits for the line announcing its URL.
    pub async fn start(backend: &Backend, prefix: &str, dir: &Path) -> Self {
        let Backend::Distributed {
            database_url,
            redis_url,
        } = backend
        else {
            unreachable!("multi-instance tests need the distributed backend")
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .current_dir(dir)
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("TANDEM_REDIS_PREFIX", prefix)
            .env("TANDEM_DATA_DIR", dir)
            // Its own TURN server on a free port, beside the other instances.
            .env("TANDEM_TURN_LISTEN", "127.0.0.1:0")
            .env("TANDEM_COOKIE_SECURE", "false")
            .env(
                "TANDEM_REALTIME_SECRET",
                format!("{prefix}-realtime-secret-for-tests"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tandem binary starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("stdout readable") {
                if let Some(at) = line.find("http://") {
                    return line[at..].trim().to_owned();
                }
            }
            panic!("tandem exited before announcing its URL")
        })
        .await
        .expect("tandem announced its URL within 60 s");
        Self { child, url }
    }

    /// Stops the process with SIGTERM (graceful shutdown) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("tandem stops within 30 s of SIGTERM")
            .expect("wait");
        assert!(status.success(), "graceful shutdown exited with {status}");
    }
}

impl Instance {
    /// Kills the process outright (SIGKILL): no graceful clean-up.
    pub async fn crash(mut self) {
        self.child.kill().await.expect("kill -9");
    }
}

fn as_browser(url: &str, cookie: Option<String>) -> Client {
    let client = Client::new(url);
    client.set_cookie(cookie);
    client
}

#[tokio::test]
async fn a_login_holds_on_every_instance_and_across_restarts() {
    let Some(backend) = Backend::distributed().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let prefix = format!("tandem-test:{}:", uuid::Uuid::new_v4().simple());
    let first = Instance::start(&backend, &prefix, dir.path()).await;
    let second = Instance::start(&backend, &prefix, dir.path()).await;

    let email = unique_email();
    let browser = Client::new(&first.url);
    assert_eq!(
        browser.register(&email, PASSWORD, "Roamer").await.status,
        StatusCode::CREATED
    );
    assert_eq!(browser.login(&email, PASSWORD).await.status, StatusCode::OK);
    let cookie = browser.cookie();

    let me = as_browser(&second.url, cookie.clone())
        .get("/api/users/me")
        .await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "second instance refused the cookie"
    );
    assert_eq!(me.body["email"], email);

    first.stop().await;
    let first = Instance::start(&backend, &prefix, dir.path()).await;
    for url in [&first.url, &second.url] {
        let res = as_browser(url, cookie.clone()).get("/api/users/me").await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "cookie lost after restart on {url}"
        );
    }

    let res = as_browser(&second.url, cookie.clone())
        .post("/api/auth/logout", serde_json::json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    for url in [&first.url, &second.url] {
        let res = as_browser(url, cookie.clone()).get("/api/users/me").await;
        assert_problem(&res, StatusCode::UNAUTHORIZED);
    }
    first.stop().await;
    second.stop().await;
}
