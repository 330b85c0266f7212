//! A client for OpenAI-compatible `POST {base_url}/chat/completions`.
//!
//! OpenAI, Ollama, vLLM and the llama.cpp server all speak this shape, so
//! one small client covers hosted and self-hosted models. Each
//! [`AiClient::chat`] call makes exactly one HTTP attempt: retrying with
//! backoff is the job queue's business, guided by [`AiError::retryable`] and
//! [`AiError::retry_after`]. Requests and responses are size-limited, and
//! the API key is sent only as a bearer token, never logged, and redacted
//! from anything the provider echoes back.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{StatusCode, Url, header::RETRY_AFTER, redirect};
use tandem_core::{ExposeSecret, SecretString};

use crate::chat::{ChatMessage, Completion, RequestBody, check_request, parse_completion};
use crate::error::{AiError, MAX_PROVIDER_MESSAGE, parse_retry_after, provider_message, truncate};

/// How long one call may take, end to end, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default cap on generated tokens per answer.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// The most response bytes read; a bigger answer is refused.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// What replaces the API key if a provider echoes it back.
const REDACTED: &str = "[redacted]";

/// Where and how to reach the provider.
#[derive(Clone, Debug)]
pub struct AiConfig {
    /// E.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`;
    /// a trailing slash is fine. Empty means "not configured".
    pub base_url: String,
    /// The model name the provider knows, e.g. `gpt-4o-mini` or `llama3.2`.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set and non-empty.
    pub api_key: Option<SecretString>,
    /// The end-to-end limit for one call (connect, send, read the answer).
    pub timeout: Duration,
    /// The cap on generated tokens, sent as `max_tokens` (0 = omit).
    pub max_tokens: u32,
}

impl AiConfig {
    /// A keyless configuration with the default timeout and token cap.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// The same configuration, authenticating with `key`.
    pub fn with_api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The same configuration with another end-to-end timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A chat-completions client; cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct AiClient {
    http: reqwest::Client,
    endpoint: Url,
    config: AiConfig,
}

impl AiClient {
    /// Checks `config` and builds the client. An empty base URL is
    /// [`AiError::NotConfigured`]; a malformed one, an empty model, a zero
    /// timeout or an `https` URL without the `rustls-tls` feature is
    /// [`AiError::InvalidConfig`].
    pub fn new(config: AiConfig) -> Result<Self, AiError> {
        let base = config.base_url.trim();
        if base.is_empty() {
            return Err(AiError::NotConfigured);
        }
        let invalid = |why: &str| AiError::InvalidConfig(why.to_owned());
        if config.model.trim().is_empty() {
            return Err(invalid("the model name is empty"));
        }
        if config.timeout.is_zero() {
            return Err(invalid("the timeout is zero"));
        }
        let endpoint = Url::parse(&format!("{}/chat/completions", base.trim_end_matches('/')))
            .map_err(|e| {
                AiError::InvalidConfig(format!("the base URL is not a valid URL ({e})"))
            })?;
        match endpoint.scheme() {
            "http" => {}
            "https" if cfg!(feature = "rustls-tls") => {}
            "https" => {
                return Err(invalid(
                    "https base URLs need the `rustls-tls` feature of tandem-ai",
                ));
            }
            _ => return Err(invalid("the base URL must start with http:// or https://")),
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(redirect::Policy::none())
            .user_agent(concat!("tandem-ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AiError::InvalidConfig(format!("cannot build the HTTP client ({e})")))?;
        Ok(Self {
            http,
            endpoint,
            config,
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &AiConfig {
        &self.config
    }

    /// Sends `messages` and returns the first choice. One attempt only.
    pub async fn chat(&self, messages: &[ChatMessage]) -> Result<Completion, AiError> {
        check_request(messages)?;
        let body = RequestBody {
            model: &self.config.model,
            messages,
            max_tokens: (self.config.max_tokens > 0).then_some(self.config.max_tokens),
        };
        let mut request = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(key) = self.key() {
            request = request.bearer_auth(key);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let read = read_limited(response).await;
        tracing::debug!(
            model = %self.config.model,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "AI chat completion answered"
        );
        if !status.is_success() {
            // A broken or oversized error body must not hide the status.
            let body = read.map(|(bytes, _)| bytes).unwrap_or_default();
            return Err(self.status_error(status, retry_after, &body));
        }
        let (bytes, complete) = read.map_err(|e| self.transport_error(e))?;
        if !complete {
            return Err(AiError::InvalidResponse(format!(
                "the answer is larger than {} MiB",
                MAX_RESPONSE_BYTES / (1024 * 1024)
            )));
        }
        parse_completion(&bytes, &self.config.model)
    }

    /// The API key, if one is set and non-empty.
    fn key(&self) -> Option<&str> {
        let key = self.config.api_key.as_ref()?.expose_secret();
        (!key.is_empty()).then_some(key)
    }

    /// `text` with the API key blanked out and cut to a readable length.
    fn clean(&self, text: &str) -> String {
        let text = match self.key() {
            Some(key) if text.contains(key) => text.replace(key, REDACTED),
            _ => text.to_owned(),
        };
        truncate(&text, MAX_PROVIDER_MESSAGE)
    }

    /// Classifies a non-2xx answer.
    fn status_error(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> AiError {
        let message = provider_message(body).map(|m| self.clean(&m));
        match status.as_u16() {
            429 => AiError::RateLimited {
                retry_after,
                message,
            },
            status @ (408 | 500..=599) => AiError::Unavailable {
                status,
                retry_after,
                message,
            },
            status => AiError::Rejected { status, message },
        }
    }

    /// Classifies a failure to send or to read the answer.
    fn transport_error(&self, error: reqwest::Error) -> AiError {
        if error.is_timeout() {
            return AiError::Timeout(self.config.timeout);
        }
        let is_builder = error.is_builder();
        // The root cause ("Connection refused") reads best; never the URL.
        let error = error.without_url();
        let mut cause: &dyn std::error::Error = &error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let reason = self.clean(&cause.to_string());
        if is_builder {
            AiError::InvalidConfig(reason)
        } else {
            AiError::Connection(reason)
        }
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; the flag says whether that was all.
async fn read_limited(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Ok((Vec::new(), false));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok((bytes, false));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, true))
}
