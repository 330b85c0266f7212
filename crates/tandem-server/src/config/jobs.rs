//! Background jobs (the queue and its workers) and the AI provider they call.

use std::time::Duration;

use tandem_core::SecretString;

use super::{ConfigError, Env};

/// The job queue.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// `TANDEM_QUEUE_WORKERS`: whether `serve` also runs the job workers.
    pub workers: bool,
    /// `TANDEM_QUEUE_PREFIX`: BullMQ key prefix on Redis (BullMQ's default `bull`).
    pub prefix: String,
    /// `TANDEM_QUEUE_STALLED_INTERVAL`: a job whose worker stopped renewing
    /// its lease this long ago runs again.
    pub stalled_interval: Duration,
}

impl QueueSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            workers: env.flag("TANDEM_QUEUE_WORKERS", true)?,
            prefix: env.text("TANDEM_QUEUE_PREFIX", "bull"),
            stalled_interval: env
                .duration("TANDEM_QUEUE_STALLED_INTERVAL", Duration::from_secs(30))?,
        })
    }
}

/// The AI provider.
#[derive(Debug, Clone)]
pub struct AiSettings {
    /// `AI_BASE_URL`: an OpenAI-compatible API (`https://api.openai.com/v1`,
    /// Ollama's `http://127.0.0.1:11434/v1`, vLLM, llama.cpp). Unset: no provider.
    pub base_url: Option<String>,
    /// `AI_MODEL`: the model to ask.
    pub model: String,
    /// `AI_API_KEY` (or `OPENAI_API_KEY`): bearer key, if the provider needs one.
    pub api_key: Option<SecretString>,
    /// `AI_TIMEOUT`: longest wait for one answer.
    pub timeout: Duration,
}

impl AiSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: env.get("AI_BASE_URL"),
            model: env.text("AI_MODEL", "gpt-4o-mini"),
            api_key: env
                .secret("AI_API_KEY")
                .or_else(|| env.secret("OPENAI_API_KEY")),
            timeout: env.duration("AI_TIMEOUT", tandem_ai::DEFAULT_TIMEOUT)?,
        })
    }
}
