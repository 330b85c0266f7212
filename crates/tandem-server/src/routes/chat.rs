//! Chat in study sessions: stored, paginated, and pushed live to the
//! session's realtime channel (`realtime:room:{id}`, event `messages`: a list,
//! batched over `TANDEM_REALTIME_BATCH_MS`).

use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    ApiError, Data, Limits, Live,
    api::ChatMessage,
    error::Problem,
    extract::{ApiJson, ApiPath, ApiQuery, Authenticated},
    validate,
};

/// Messages one user may send per minute (across instances with Redis).
const MESSAGES_PER_MINUTE: u32 = 60;

/// A message to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 1–2000 characters.
    body: String,
}

/// Which page of history.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Only messages older than this message id (from `next_before`).
    before: Option<Uuid>,
    /// Page size, 1–100 (default 50).
    limit: Option<i64>,
}

/// A page of history, newest first.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// Pass as `before` for the next (older) page; `null` at the start.
    pub next_before: Option<Uuid>,
}

/// Sends a message to a study session's chat (members only).
#[utoipa::path(post, path = "/api/study-sessions/{id}/messages", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id")), request_body = NewMessage,
    responses((status = 401, body = Problem), (status = 201, body = ChatMessage), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn send(
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(live): State<Live>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewMessage>,
) -> Result<(StatusCode, axum::Json<ChatMessage>), ApiError> {
    let user = auth.user_id();
    let key = format!("chat:user:{user}");
    limits
        .check(&key, MESSAGES_PER_MINUTE, Duration::from_secs(60))
        .await?;
    let body = validate::text(&req.body, 2000)
        .and_then(|b| {
            if b.is_empty() {
                Err("Write something first.".into())
            } else {
                Ok(b)
            }
        })
        .map_err(|m| ApiError::invalid("body", m))?;
    require_member(&data, id, user).await?;
    let message: ChatMessage = data
        .db
        .insert_message(Uuid::now_v7(), id, user, &body, data.clock.now())
        .await?
        .into();
    let payload = serde_json::to_value(&message).map_err(anyhow::Error::from)?;
    let topic = format!("realtime:room:{id}");
    live.batcher.add(&topic, "messages", payload);
    Ok((StatusCode::CREATED, axum::Json(message)))
}

/// A study session's chat history, newest first (members only).
#[utoipa::path(get, path = "/api/study-sessions/{id}/messages", tag = "study-sessions",
    params(("id" = Uuid, Path, description = "Session id"), Page),
    responses((status = 401, body = Problem), (status = 200, body = MessagePage), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn history(
    State(data): State<Data>,
    auth: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<MessagePage>, ApiError> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "Use 1 to 100."));
    }
    let user = auth.user_id();
    require_member(&data, id, user).await?;
    let before = page.before;
    let messages = data
        .read(
            user,
            |db| async move { db.messages(id, before, limit).await },
        )
        .await?;
    let full = i64::try_from(messages.len()).unwrap_or(i64::MAX) == limit;
    let next_before = messages.last().filter(|_| full).map(|m| m.id);
    Ok(axum::Json(MessagePage {
        messages: messages.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

async fn require_member(data: &Data, session: Uuid, user: Uuid) -> Result<(), ApiError> {
    let members = data
        .read(user, |db| async move { db.members(session).await })
        .await?;
    if members.iter().any(|m| m.user_id == user) {
        return Ok(());
    }
    if data.db.room(session).await?.is_none() {
        return Err(ApiError::NotFound("study session"));
    }
    Err(ApiError::Forbidden(
        "Only members can read and write this chat.",
    ))
}
