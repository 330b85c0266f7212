//! The chat-completions wire format: messages in, the first choice out.
//!
//! Only the fields every OpenAI-compatible server agrees on are modelled;
//! anything else in a response is ignored, so provider extensions (logprobs,
//! timings, tool calls) never break parsing.

use serde::{Deserialize, Serialize};

use crate::AiError;

/// The most messages one request may carry.
const MAX_MESSAGES: usize = 100;
/// The most content bytes, summed over all messages, one request may carry.
const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Who wrote a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person (or application) asking.
    User,
    /// The model's earlier answers.
    Assistant,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A system (instruction) message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Token accounting, when the provider reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both together.
    #[serde(default)]
    pub total_tokens: u64,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The first choice's text, trimmed.
    pub content: String,
    /// The model that answered (as the provider names it; the configured
    /// model if the provider does not say).
    pub model: String,
    /// Token usage, if reported.
    pub usage: Option<Usage>,
}

/// The request body, borrowed from the caller.
#[derive(Serialize)]
pub(crate) struct RequestBody<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u32>,
}

/// The parts of a response body we use; everything else is ignored.
#[derive(Deserialize)]
pub(crate) struct ResponseBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ResponseMessage>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
}

/// Refuses requests no provider should be sent.
pub(crate) fn check_request(messages: &[ChatMessage]) -> Result<(), AiError> {
    if messages.is_empty() {
        return Err(AiError::InvalidRequest("there are no messages".into()));
    }
    if messages.len() > MAX_MESSAGES {
        return Err(AiError::InvalidRequest(format!(
            "too many messages ({}, at most {MAX_MESSAGES})",
            messages.len()
        )));
    }
    let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
    if bytes > MAX_CONTENT_BYTES {
        return Err(AiError::InvalidRequest(format!(
            "the messages are too long ({bytes} bytes, at most {MAX_CONTENT_BYTES})"
        )));
    }
    Ok(())
}

/// The first choice of a 2xx body, or why there is none.
pub(crate) fn parse_completion(
    bytes: &[u8],
    configured_model: &str,
) -> Result<Completion, AiError> {
    let invalid = |why: &str| AiError::InvalidResponse(why.to_owned());
    let body: ResponseBody = serde_json::from_slice(bytes)
        .map_err(|_| invalid("the answer is not chat-completion JSON"))?;
    let first = body
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the answer contained no choices"))?;
    let content = first
        .message
        .and_then(|m| m.content)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("the answer was empty"))?;
    Ok(Completion {
        content,
        model: body
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| configured_model.to_owned()),
        usage: body.usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_are_ignored_and_the_model_falls_back() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"Hi","tool_calls":[]},
            "logprobs":null}],"timings":{"predicted_ms":3}}"#;
        let completion = parse_completion(body, "llama3.2").expect("valid answer");
        assert_eq!(completion.content, "Hi");
        assert_eq!(completion.model, "llama3.2");
        assert_eq!(completion.usage, None);
    }

    #[test]
    fn a_missing_or_blank_text_is_an_invalid_response() {
        for body in [
            &br#"{"choices":[{"message":{"role":"assistant","content":null}}]}"#[..],
            br#"{"choices":[{"message":{"content":"  \n"}}]}"#,
            br#"{"choices":[{}]}"#,
            br#"{"choices":[]}"#,
            br#"[]"#,
            b"",
        ] {
            let error = parse_completion(body, "m").expect_err("unusable answer");
            assert!(matches!(error, AiError::InvalidResponse(_)), "{error:?}");
        }
    }

    #[test]
    fn request_limits_are_inclusive() {
        let hundred = vec![ChatMessage::user("hi"); MAX_MESSAGES];
        assert!(check_request(&hundred).is_ok());
        let exactly = vec![ChatMessage::user("x".repeat(MAX_CONTENT_BYTES))];
        assert!(check_request(&exactly).is_ok());
        let split = vec![
            ChatMessage::system("x".repeat(MAX_CONTENT_BYTES / 2)),
            ChatMessage::user("x".repeat(MAX_CONTENT_BYTES / 2 + 1)),
        ];
        assert!(check_request(&split).is_err(), "the limit is on the total");
    }

    #[test]
    fn roles_serialize_in_lowercase() {
        let json = serde_json::to_value(ChatMessage::assistant("ok")).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"role": "assistant", "content": "ok"})
        );
    }
}
