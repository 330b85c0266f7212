//! What can go wrong talking to an AI provider, and whether trying again
//! could help.
//!
//! The client makes one attempt per call; the job queue owns retries. This
//! module therefore classifies every failure ([`AiError::retryable`]) and
//! carries the provider's `Retry-After` hint ([`AiError::retry_after`]).
//! Messages are written for end users and never contain the API key: the
//! client redacts it from anything the provider echoes back.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `Retry-After` we pass on; a provider asking for more is
/// treated as asking for this much, so a typo cannot park a job for days.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// The longest provider error message kept, in characters.
pub(crate) const MAX_PROVIDER_MESSAGE: usize = 300;

/// A failed chat completion.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// No provider is set up (no base URL). Callers raise this themselves
    /// when AI features are optional and unconfigured.
    #[error("AI provider not configured")]
    NotConfigured,
    /// The configuration cannot work (bad URL, empty model, missing TLS).
    #[error("AI provider configuration is invalid: {0}")]
    InvalidConfig(String),
    /// The request was refused before sending (too many messages, too long).
    #[error("AI request not sent: {0}")]
    InvalidRequest(String),
    /// The provider answered 429 Too Many Requests.
    #[error("the AI provider is rate limiting requests; try again later{}", detail(.message))]
    RateLimited {
        /// The provider's `Retry-After`, when it sent a usable one.
        retry_after: Option<Duration>,
        /// The provider's own explanation, truncated and redacted.
        message: Option<String>,
    },
    /// The provider failed on its side (any 5xx, or 408).
    #[error("the AI provider is temporarily unavailable (HTTP {status}){}", detail(.message))]
    Unavailable {
        /// The HTTP status code.
        status: u16,
        /// The provider's `Retry-After`, when it sent a usable one.
        retry_after: Option<Duration>,
        /// The provider's own explanation, truncated and redacted.
        message: Option<String>,
    },
    /// The provider refused the request (4xx other than 408/429, or an
    /// unexpected status); sending it again will not help.
    #[error("the AI provider rejected the request: {} (HTTP {status}){}", hint(*.status), detail(.message))]
    Rejected {
        /// The HTTP status code.
        status: u16,
        /// The provider's own explanation, truncated and redacted.
        message: Option<String>,
    },
    /// No complete answer arrived within the configured timeout.
    #[error("the AI provider did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The provider could not be reached or the connection broke.
    #[error("could not reach the AI provider: {0}")]
    Connection(String),
    /// The provider answered 2xx but the body is unusable (not JSON, no
    /// choices, no text, too large).
    #[error("the AI provider sent an unusable response: {0}")]
    InvalidResponse(String),
}

impl AiError {
    /// Whether the same request could succeed later: rate limits, provider
    /// outages (5xx), timeouts and connection failures. Bad requests, bad
    /// keys, unknown models and malformed answers are final.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::Timeout(_)
                | Self::Connection(_)
        )
    }

    /// How long the provider asked us to wait before retrying, if it said
    /// (capped at one hour). `None` for errors that carry no hint.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// `": message"` when the provider explained itself, else nothing.
fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

/// A plain-language reading of a refusing status code.
fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "the API key is missing or invalid",
        404 => "the model or endpoint was not found",
        400 | 422 => "the request was invalid",
        413 => "the request was too large",
        _ => "unexpected answer",
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP-date (the
/// IMF-fixdate form, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`) turned into the
/// delay from `now` (zero if already past). Anything else is ignored.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The provider's explanation from an error body, in any of the shapes
/// compatible servers use: `{"error":{"message":..}}` (OpenAI, vLLM,
/// llama.cpp), `{"error":".."}` (Ollama) or `{"message"|"detail":..}`.
/// Untruncated, so the caller can redact secrets before cutting.
pub(crate) fn provider_message(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = match json.get("error") {
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(error) => error.get("message")?.as_str()?,
        None => json
            .get("message")
            .or_else(|| json.get("detail"))?
            .as_str()?,
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `text` cut to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid test timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn provider_messages_come_from_every_common_shape() {
        let openai = br#"{"error":{"message":"model not found","type":"x"}}"#;
        assert_eq!(provider_message(openai).as_deref(), Some("model not found"));
        let ollama = br#"{"error":"model 'llama9' not found"}"#;
        assert_eq!(
            provider_message(ollama).as_deref(),
            Some("model 'llama9' not found")
        );
        assert_eq!(
            provider_message(br#"{"detail":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(provider_message(b"<html>502</html>"), None);
        assert_eq!(provider_message(br#"{"error":{"code":1}}"#), None);
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long, MAX_PROVIDER_MESSAGE);
        assert_eq!(cut.chars().count(), MAX_PROVIDER_MESSAGE + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn classification_matches_the_contract() {
        let limited = AiError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: None,
        };
        assert!(limited.retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        let missing = AiError::Rejected {
            status: 404,
            message: Some("model not found".into()),
        };
        assert!(!missing.retryable());
        assert_eq!(missing.retry_after(), None);
        assert_eq!(
            missing.to_string(),
            "the AI provider rejected the request: the model or endpoint was not found \
             (HTTP 404): model not found"
        );
        assert_eq!(
            AiError::NotConfigured.to_string(),
            "AI provider not configured"
        );
        assert!(!AiError::InvalidResponse("x".into()).retryable());
        assert!(AiError::Timeout(Duration::from_millis(200)).retryable());
    }
}
