//! Test harness: services, in-process apps, HTTP clients with a cookie jar.

pub mod services;

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tandem_core::{ManualClock, Shutdown};
use tandem_server::{AppState, Config, Server};
use tempfile::TempDir;

pub use services::Backend;

/// Runs each listed async test function once per backend: `embedded`
/// (SQLite, sessions in the database) and `distributed` (PostgreSQL, Redis).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::Backend::Embedded).await
            })*
        }
        mod distributed {
            $(#[tokio::test]
            async fn $name() {
                if let Some(backend) = $crate::helpers::Backend::distributed().await {
                    super::$name(backend).await
                }
            })*
        }
    };
}

/// A Tandem server running in this test process.
pub struct TestApp {
    pub url: String,
    /// Where `/metrics` is served (its own listener, off the public port).
    pub metrics_url: String,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    shutdown: Shutdown,
    _data_dir: TempDir,
}

impl TestApp {
    /// A server on `backend` with test defaults.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A server on `backend` with `tweak` applied to the configuration.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::from_lookup(|_| None).expect("default config");
        config.http.addr = "127.0.0.1:0".parse().expect("addr");
        config.data_dir = data_dir.path().to_owned();
        config.accounts.cookie_secure = false;
        // Tests that want the embedded TURN server give it a free port.
        config.turn.listen = None;
        config.telemetry.metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
        // Archive runs only when a test starts one.
        config.archive.schedule = None;
        backend.apply(&mut config);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new());
        let shutdown = Shutdown::new();
        let server = Server::bind(config, clock.clone(), shutdown.clone())
            .await
            .expect("server starts");
        let url = format!("http://{}", server.local_addr());
        let metrics_url = format!(
            "http://{}/metrics",
            server.metrics_addr().expect("metrics listener")
        );
        let state = server.app().clone();
        tokio::spawn(server.run());
        Self {
            url,
            metrics_url,
            clock,
            state,
            shutdown,
            _data_dir: data_dir,
        }
    }

    /// The Prometheus exposition text.
    pub async fn metrics(&self) -> String {
        let res = reqwest::get(&self.metrics_url)
            .await
            .expect("metrics reachable");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("metrics text")
    }

    /// A new "browser" with an empty cookie jar.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// A browser logged in as a fresh user; returns it with the e-mail used.
    pub async fn signed_up(&self) -> (Client, String) {
        let client = self.client();
        let email = unique_email();
        let res = client.register(&email, PASSWORD, "Test Student").await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "sign-up failed: {}",
            res.body
        );
        (client, email)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A password that passes the strength rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// An e-mail address no other test uses.
pub fn unique_email() -> String {
    format!("student-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A minimal browser: one session cookie, updated from `Set-Cookie`.
pub struct Client {
    base: String,
    http: reqwest::Client,
    cookie: Mutex<Option<String>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
}

impl Client {
    /// A client for the server at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .user_agent("tandem-tests")
                .build()
                .expect("http client"),
            cookie: Mutex::new(None),
        }
    }

    /// A client whose requests reach a `trust_proxy` server as if from
    /// `ip` (the proxy's `X-Forwarded-For`).
    pub fn from_ip(base: &str, ip: &str) -> Self {
        let mut headers = header::HeaderMap::new();
        headers.insert("x-forwarded-for", ip.parse().expect("header value"));
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .user_agent("tandem-tests")
                .default_headers(headers)
                .build()
                .expect("http client"),
            cookie: Mutex::new(None),
        }
    }

    /// The `name=value` of the session cookie held, if any.
    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().expect("lock").clone()
    }

    /// Replaces the held cookie (to replay an old one, or share one).
    pub fn set_cookie(&self, cookie: Option<String>) {
        *self.cookie.lock().expect("lock") = cookie;
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Option<Value>) -> Res {
        self.send(Method::DELETE, path, body).await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Res {
        let body = json!({"email": email, "password": password, "display_name": name});
        self.post("/api/auth/register", body).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Res {
        self.post(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        let bytes = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        self.raw(method, path, bytes).await
    }

    /// Sends raw bytes with a content type (for malformed-input tests).
    pub async fn raw(&self, method: Method, path: &str, body: Option<(Vec<u8>, &str)>) -> Res {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = self.cookie() {
            req = req.header(header::COOKIE, cookie);
        }
        if let Some((bytes, content_type)) = body {
            req = req.header(header::CONTENT_TYPE, content_type).body(bytes);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            let cleared = pair.ends_with('=');
            self.set_cookie((!cleared).then_some(pair));
        }
        let text = res.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Res {
            status,
            headers,
            body,
        }
    }
}

/// Asserts an RFC 9457 problem response with `status`.
pub fn assert_problem(res: &Res, status: StatusCode) {
    assert_eq!(res.status, status, "unexpected status; body: {}", res.body);
    let content_type = res
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        content_type,
        Some("application/problem+json"),
        "body: {}",
        res.body
    );
    assert_eq!(res.body["status"], status.as_u16(), "body: {}", res.body);
    let detail = res.body["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "problem without detail: {}", res.body);
}
