//! The one error type of the HTTP boundary, answered as
//! `application/problem+json` (RFC 9457).

use std::time::Duration;

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem detail body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, written for a person.
    pub detail: String,
    /// Per-field validation messages, when the input was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field name.
    pub field: String,
    /// Why it was rejected.
    pub message: String,
}

impl FieldError {
    /// A message about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be understood (malformed JSON, bad path, ...).
    #[error("{detail}")]
    BadRequest {
        /// HTTP status (400, 413, 415, 422 from extractor rejections).
        status: StatusCode,
        /// Explanation for the client.
        detail: String,
    },
    /// Well-formed input that breaks a rule.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// Not logged in, or the session ended.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong e-mail or password (deliberately one message for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Logged in, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The named thing does not exist (or is not yours to see).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// Too many requests; retry later.
    #[error("rate limited")]
    RateLimited(Duration),
    /// A dependency (database, Redis) is unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged, answered without details.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { status, .. } => *status,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest { detail, .. } => detail.clone(),
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("Please check: {}.", fields.join(", "))
            }
            Self::Unauthenticated => "Log in to continue.".into(),
            Self::InvalidCredentials => "Invalid e-mail or password.".into(),
            Self::Forbidden(why) => (*why).to_owned(),
            Self::NotFound(what) => format!("No such {what}."),
            Self::Conflict(detail) => detail.clone(),
            Self::RateLimited(after) => format!(
                "Too many attempts. Try again in {} seconds.",
                after.as_secs().max(1)
            ),
            Self::Unavailable(_) => {
                "The service is temporarily unavailable. Try again soon.".into()
            }
            Self::Internal(_) => "Something went wrong on our side. It has been logged.".into(),
        }
    }
}

/// Builds a problem response with the given status and detail.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    ApiError::BadRequest {
        status,
        detail: detail.into(),
    }
    .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(err) => tracing::error!(error = ?err, "internal error"),
            Self::Unavailable(what) => tracing::warn!(%what, "dependency unavailable"),
            _ => {}
        }
        let status = self.status();
        let body = Problem {
            kind: format!("/problems/{}", slug(status)),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(ref errors) => errors.clone(),
                _ => Vec::new(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::RateLimited(after) = self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}

fn slug(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation",
        429 => "rate-limited",
        503 => "unavailable",
        _ => "error",
    }
}

macro_rules! rejection_to_problem {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(rejection: $rejection) -> Self {
                Self::BadRequest { status: rejection.status(), detail: rejection.body_text() }
            }
        }
    )*};
}
rejection_to_problem!(JsonRejection, PathRejection, QueryRejection);

impl From<tandem_db::DbError> for ApiError {
    fn from(err: tandem_db::DbError) -> Self {
        match err {
            tandem_db::DbError::Conflict(what) => Self::Conflict(format!("{what} already exists.")),
            err if err.is_unavailable() => Self::Unavailable(err.to_string()),
            err => Self::Internal(err.into()),
        }
    }
}

impl From<tandem_sessions::StoreError> for ApiError {
    fn from(err: tandem_sessions::StoreError) -> Self {
        match err {
            tandem_sessions::StoreError::Db(db) => db.into(),
            tandem_sessions::StoreError::Redis(e) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<tandem_queue::QueueError> for ApiError {
    fn from(err: tandem_queue::QueueError) -> Self {
        match err {
            tandem_queue::QueueError::Db(db) => db.into(),
            tandem_queue::QueueError::Redis(e) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<tandem_ratelimit::LimitError> for ApiError {
    fn from(err: tandem_ratelimit::LimitError) -> Self {
        Self::Unavailable(err.to_string())
    }
}
