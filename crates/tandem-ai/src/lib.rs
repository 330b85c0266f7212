//! Tandem's AI building blocks.
//!
//! Two independent halves:
//!
//! - [`AiClient`]: a small client for any OpenAI-compatible
//!   `chat/completions` endpoint (OpenAI, Ollama, vLLM, llama.cpp server).
//!   It makes exactly one attempt per call and classifies failures through
//!   [`AiError::retryable`] and [`AiError::retry_after`], so the job queue can
//!   own retries and backoff.
//! - [`insights`]: deterministic progress analysis and engagement prediction
//!   computed from a user's real study sessions. No model is needed; when a
//!   provider is configured, [`insights::summary_prompt`] turns the reports
//!   into a short prompt for an optional friendly summary.

mod chat;
mod client;
mod error;
pub mod insights;

pub use chat::{ChatMessage, Completion, Role, Usage};
pub use client::{AiClient, AiConfig, DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT};
pub use error::AiError;
