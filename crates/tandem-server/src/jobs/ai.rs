//! The `ai-tasks` queue: `chat-completion` through the configured
//! OpenAI-compatible provider, and `progress-analysis` /
//! `engagement-prediction` computed from the user's own study sessions (the
//! provider, when configured, only adds a written summary).
//!
//! Job data follows the roadmap: the job name is the task type, and
//! `data.type` says it too, so jobs added by a Node service with BullMQ are
//! served. Provider errors that can pass (429, 5xx, timeouts) fail the
//! attempt as retryable, so the queue retries with backoff; others (bad key,
//! unknown model) fail the job at once with the provider's message.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_ai::{
    AiClient, AiError, ChatMessage,
    insights::{self, Activity, Attendance},
};
use tandem_queue::{Job, JobError, Processor};
use uuid::Uuid;

use crate::Data;

/// Task types of the `ai-tasks` queue.
pub const TASKS: [&str; 3] = [
    "chat-completion",
    "progress-analysis",
    "engagement-prediction",
];

/// What the study coach's system prompt tells the model.
const COACH: &str = "You are Tandem's study coach. Answer briefly and concretely; \
    help students plan, stay motivated and find study partners.";

/// Processor of `ai-tasks` jobs.
pub struct AiTasks {
    data: Data,
    client: Option<AiClient>,
}

impl AiTasks {
    /// A processor on the database and, if configured, the AI provider.
    pub fn new(data: Data, client: Option<AiClient>) -> Self {
        Self { data, client }
    }
}

/// A chat turn as stored in a `chat-completion` job.
#[derive(Deserialize)]
struct Turn {
    role: String,
    content: String,
}

fn job_error(error: AiError) -> JobError {
    if error.retryable() {
        JobError::retryable(error.to_string()).after(error.retry_after())
    } else {
        JobError::fatal(error.to_string())
    }
}

#[async_trait]
impl Processor for AiTasks {
    async fn process(&self, job: &Job) -> Result<Value, JobError> {
        let user_id = super::owner(&job.data)?;
        let task = job
            .data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&job.name);
        match task {
            "chat-completion" => self.chat(&job.data).await,
            "progress-analysis" => {
                let report = insights::progress_analysis(&self.activity(user_id).await?);
                let summary = self.summary(insights::summary_prompt(&report, None)).await;
                Ok(json!({ "report": report, "summary": summary }))
            }
            "engagement-prediction" => {
                let activity = self.activity(user_id).await?;
                let progress = insights::progress_analysis(&activity);
                let report = insights::engagement_prediction(&activity);
                let prompt = insights::summary_prompt(&progress, Some(&report));
                let summary = self.summary(prompt).await;
                Ok(json!({ "report": report, "summary": summary }))
            }
            other => Err(JobError::fatal(format!("unknown AI task type {other:?}"))),
        }
    }
}

impl AiTasks {
    async fn chat(&self, data: &Value) -> Result<Value, JobError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| JobError::fatal(AiError::NotConfigured.to_string()))?;
        let payload = data.get("data").unwrap_or(data);
        let turns: Vec<Turn> =
            serde_json::from_value(payload.get("messages").cloned().unwrap_or(Value::Null))
                .map_err(|_| JobError::fatal("chat-completion needs data.messages"))?;
        let mut messages = vec![ChatMessage::system(COACH)];
        for turn in turns {
            messages.push(match turn.role.as_str() {
                "assistant" => ChatMessage::assistant(turn.content),
                _ => ChatMessage::user(turn.content),
            });
        }
        let completion = client.chat(&messages).await.map_err(job_error)?;
        Ok(json!({ "reply": completion.content, "model": completion.model }))
    }

    /// A written summary if a provider is configured and answers; the
    /// computed report stands on its own otherwise.
    async fn summary(&self, prompt: Vec<ChatMessage>) -> Option<String> {
        let client = self.client.as_ref()?;
        match client.chat(&prompt).await {
            Ok(completion) => Some(completion.content),
            Err(error) => {
                tracing::warn!(%error, "AI summary unavailable; returning the report alone");
                None
            }
        }
    }

    /// The user's study sessions as insight input (a cancelled session
    /// counts as joined but not attended).
    async fn activity(&self, user_id: Uuid) -> Result<Activity, JobError> {
        let unavailable = |e: tandem_db::DbError| JobError::retryable(e.to_string());
        let (_, profile) = (self.data.db)
            .profile(user_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| JobError::fatal("the user no longer exists"))?;
        let sessions = (self.data.db)
            .rooms_of(user_id, 10_000)
            .await
            .map_err(unavailable)?;
        Ok(Activity {
            now: self.data.clock.now(),
            timezone: profile.timezone.parse().unwrap_or(chrono_tz::UTC),
            sessions: sessions
                .into_iter()
                .map(|s| Attendance {
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    attended: s.status != tandem_db::RoomStatus::Cancelled,
                })
                .collect(),
        })
    }
}
