//! The AI study coach: every request queues an `ai-tasks` job and answers
//! 202 with its id; results come from `/api/jobs/{jobId}/status`.

use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tandem_queue::QueueBackend;
use utoipa::ToSchema;

use crate::{
    ApiError, Limits,
    error::Problem,
    extract::{ApiJson, ApiPath, Authenticated},
    jobs,
};

const MAX_TURNS: usize = 20;
const MAX_TURN_CHARS: usize = 4_000;

/// A conversation with the coach (`{}` for the analysis tasks).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiRequest {
    /// For `chat`: the conversation so far, oldest first (1–20 turns of
    /// 1–4000 characters; roles `user` or `assistant`, ending with `user`).
    #[serde(default)]
    messages: Vec<ChatTurn>,
}

/// One turn.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    /// `user` or `assistant`.
    role: String,
    /// The text.
    content: String,
}

/// The queued job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiQueued {
    /// Always `processing`.
    status: &'static str,
    /// Poll `/api/jobs/{jobId}/status` for the result.
    job_id: String,
}

fn check_chat(messages: &[ChatTurn]) -> Result<(), ApiError> {
    let well_formed = (1..=MAX_TURNS).contains(&messages.len())
        && messages.iter().all(|m| {
            matches!(m.role.as_str(), "user" | "assistant")
                && !m.content.trim().is_empty()
                && m.content.chars().count() <= MAX_TURN_CHARS
        })
        && messages.last().is_some_and(|m| m.role == "user");
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "messages",
            format!(
                "1–{MAX_TURNS} turns of 1–{MAX_TURN_CHARS} characters, roles user or assistant, the last from the user."
            ),
        ))
    }
}

/// Queues an AI task: `chat`, `progress-analysis` or `engagement-prediction`.
#[utoipa::path(post, path = "/api/ai/{task}", tag = "ai", request_body = AiRequest,
    params(("task" = String, Path, description = "chat, progress-analysis or engagement-prediction")),
    responses((status = 202, body = AiQueued), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn queue_task(
    State(limits): State<Limits>,
    State(queue): State<Arc<dyn QueueBackend>>,
    auth: Authenticated,
    ApiPath(task): ApiPath<String>,
    ApiJson(request): ApiJson<AiRequest>,
) -> Result<(StatusCode, axum::Json<AiQueued>), ApiError> {
    let kind = match task.as_str() {
        "chat" => "chat-completion",
        "progress-analysis" | "engagement-prediction" => task.as_str(),
        _ => return Err(ApiError::NotFound("AI task")),
    };
    if kind == "chat-completion" {
        check_chat(&request.messages)?;
    } else if !request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "Only the chat task takes messages.",
        ));
    }
    let me = auth.user_id();
    limits
        .check(&format!("ai:{me}"), 20, Duration::from_secs(60))
        .await?;
    let mut data = Map::new();
    data.insert("type".into(), Value::String(kind.into()));
    data.insert("data".into(), json!({ "messages": request.messages }));
    let job_id = jobs::enqueue(queue.as_ref(), jobs::AI_TASKS, kind, me, data).await?;
    let body = AiQueued {
        status: "processing",
        job_id,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)))
}
