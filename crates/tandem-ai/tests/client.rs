//! The chat client against a scripted, local OpenAI-compatible server.
//!
//! Each test starts its own axum server on 127.0.0.1:0 (bound before the
//! task is spawned, so no readiness wait), tells it how to answer, then
//! checks what the client sent and how it classified the outcome.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tandem_ai::{AiClient, AiConfig, AiError, ChatMessage};
use tandem_core::SecretString;

const KEY: &str = "sk-test-0123456789abcdef";

/// How the fake provider answers.
#[derive(Clone)]
enum Reply {
    /// This status, extra headers and body.
    Fixed(StatusCode, Vec<(&'static str, &'static str)>, String),
    /// A valid answer, but only after this long.
    Slow(Duration),
}

/// What the fake provider received.
#[derive(Clone, Debug)]
struct Seen {
    authorization: Option<String>,
    body: serde_json::Value,
}

#[derive(Clone)]
struct Fake {
    reply: Reply,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn success_body() -> String {
    serde_json::json!({
        "id": "chatcmpl-1",
        "model": "tiny-model-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "  Keep going!\n"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
    .to_string()
}

async fn answer(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let seen = Seen {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    };
    fake.seen.lock().expect("lock not poisoned").push(seen);
    match fake.reply {
        Reply::Fixed(status, headers, body) => {
            let mut response = (status, body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("valid header value"));
            }
            response
        }
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, success_body()).into_response()
        }
    }
}

/// Starts a fake provider; returns its base URL and the request log.
async fn serve(reply: Reply) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("bound address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(Fake {
            reply,
            seen: seen.clone(),
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), seen)
}

fn fixed(status: u16, headers: Vec<(&'static str, &'static str)>, body: &str) -> Reply {
    let status = StatusCode::from_u16(status).expect("valid status");
    Reply::Fixed(status, headers, body.to_owned())
}

/// A client with a time limit generous enough for a loaded CI machine; only
/// the timeout test uses a short one.
fn client(base_url: &str) -> AiClient {
    client_within(base_url, Duration::from_secs(10))
}

fn client_within(base_url: &str, timeout: Duration) -> AiClient {
    let config = AiConfig::new(base_url, "tiny-model")
        .with_api_key(SecretString::from(KEY.to_owned()))
        .with_timeout(timeout);
    AiClient::new(config).expect("valid config")
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("How am I doing?"),
    ]
}

/// Calls the fake once and returns the error, checking the key never leaks.
async fn fail_with(reply: Reply) -> AiError {
    fail_within(reply, Duration::from_secs(10)).await
}

async fn fail_within(reply: Reply, timeout: Duration) -> AiError {
    let (url, _) = serve(reply).await;
    let error = client_within(&url, timeout)
        .chat(&messages())
        .await
        .expect_err("the call should fail");
    assert!(
        !error.to_string().contains(KEY),
        "Display leaks the key: {error}"
    );
    assert!(
        !format!("{error:?}").contains(KEY),
        "Debug leaks the key: {error:?}"
    );
    error
}

#[tokio::test]
async fn a_success_returns_the_first_choice_and_sends_the_right_request() {
    let (url, seen) = serve(fixed(200, vec![], &success_body())).await;
    let completion = client(&format!("{url}/"))
        .chat(&messages())
        .await
        .expect("the call succeeds");
    assert_eq!(completion.content, "Keep going!");
    assert_eq!(completion.model, "tiny-model-0613");
    assert_eq!(completion.usage.map(|u| u.total_tokens), Some(15));

    let seen = seen.lock().expect("lock not poisoned").clone();
    assert_eq!(seen.len(), 1, "exactly one attempt");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(seen[0].body["model"], "tiny-model");
    assert_eq!(seen[0].body["max_tokens"], 512);
    assert_eq!(
        seen[0].body["messages"],
        serde_json::json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How am I doing?"}
        ])
    );
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent() {
    let (url, seen) = serve(fixed(200, vec![], &success_body())).await;
    let config = AiConfig::new(url, "tiny-model");
    let client = AiClient::new(config).expect("valid config");
    client.chat(&messages()).await.expect("the call succeeds");
    let seen = seen.lock().expect("lock not poisoned").clone();
    assert_eq!(seen[0].authorization, None);
}

#[tokio::test]
async fn a_429_is_retryable_after_the_providers_delay() {
    let error = fail_with(fixed(429, vec![("retry-after", "7")], "{}")).await;
    assert!(matches!(error, AiError::RateLimited { .. }), "{error:?}");
    assert!(error.retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error.to_string().contains("rate limiting"), "{error}");
}

#[tokio::test]
async fn a_503_is_retryable() {
    let error = fail_with(fixed(503, vec![], "<html>busy</html>")).await;
    assert!(
        matches!(error, AiError::Unavailable { status: 503, .. }),
        "{error:?}"
    );
    assert!(error.retryable());
    assert_eq!(error.retry_after(), None);
    assert!(
        error
            .to_string()
            .contains("temporarily unavailable (HTTP 503)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_400_is_final_and_quotes_the_provider() {
    let body = r#"{"error":{"message":"model not found","type":"invalid_request_error"}}"#;
    let error = fail_with(fixed(400, vec![], body)).await;
    assert!(!error.retryable());
    assert_eq!(error.retry_after(), None);
    assert!(error.to_string().contains("model not found"), "{error}");
    assert!(error.to_string().contains("HTTP 400"), "{error}");
}

#[tokio::test]
async fn a_key_echoed_by_the_provider_is_redacted() {
    let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
    let error = fail_with(fixed(401, vec![], &body)).await;
    assert!(!error.retryable());
    let text = error.to_string();
    assert!(text.contains("API key is missing or invalid"), "{text}");
    assert!(
        text.contains("Incorrect API key provided: [redacted]"),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_provider_times_out_as_retryable() {
    let started = Instant::now();
    let error = fail_within(
        Reply::Slow(Duration::from_secs(2)),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "gave up late"
    );
    assert!(matches!(error, AiError::Timeout(_)), "{error:?}");
    assert!(error.retryable());
    assert!(
        error.to_string().contains("did not answer within 0.2 s"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_or_empty_answers_are_final() {
    let garbage = fail_with(fixed(200, vec![], "{not json")).await;
    assert!(
        matches!(garbage, AiError::InvalidResponse(_)),
        "{garbage:?}"
    );
    assert!(!garbage.retryable());

    let empty = fail_with(fixed(200, vec![], r#"{"choices":[]}"#)).await;
    assert!(!empty.retryable());
    assert!(empty.to_string().contains("no choices"), "{empty}");
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let huge = "x".repeat(2 * 1024 * 1024);
    let error = fail_with(fixed(200, vec![], &huge)).await;
    assert!(!error.retryable());
    assert!(error.to_string().contains("larger than 1 MiB"), "{error}");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_retryable_connection_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    let error = client(&format!("http://{addr}/v1"))
        .chat(&messages())
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, AiError::Connection(_)), "{error:?}");
    assert!(error.retryable());
    let text = error.to_string();
    assert!(
        text.starts_with("could not reach the AI provider: "),
        "{text}"
    );
    assert!(
        !text.contains(&addr.to_string()),
        "no URL in the message: {text}"
    );
}

#[tokio::test]
async fn oversized_requests_are_refused_before_sending() {
    let (url, seen) = serve(fixed(200, vec![], &success_body())).await;
    let client = client(&url);
    let many = vec![ChatMessage::user("hi"); 101];
    let error = client.chat(&many).await.expect_err("too many messages");
    assert!(matches!(error, AiError::InvalidRequest(_)) && !error.retryable());
    let long = vec![ChatMessage::user("x".repeat(64 * 1024 + 1))];
    let error = client.chat(&long).await.expect_err("too long");
    assert!(error.to_string().contains("too long"), "{error}");
    assert!(client.chat(&[]).await.is_err());
    assert!(
        seen.lock().expect("lock not poisoned").is_empty(),
        "nothing was sent"
    );
}

#[test]
fn configuration_is_checked_up_front() {
    let error = AiClient::new(AiConfig::new("  ", "m")).expect_err("no base URL");
    assert!(matches!(error, AiError::NotConfigured));
    assert_eq!(error.to_string(), "AI provider not configured");
    assert!(AiClient::new(AiConfig::new("http://127.0.0.1:1/v1", "")).is_err());
    assert!(AiClient::new(AiConfig::new("ftp://example.com", "m")).is_err());
    assert!(AiClient::new(AiConfig::new("not a url", "m")).is_err());
    let https = AiClient::new(AiConfig::new("https://api.openai.com/v1", "m"));
    assert_eq!(https.is_ok(), cfg!(feature = "rustls-tls"));
    let debug = format!(
        "{:?}",
        AiConfig::new("http://x", "m").with_api_key(SecretString::from(KEY.to_owned()))
    );
    assert!(!debug.contains(KEY), "{debug}");
}
