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

/// Everything a handler can fail with: one variant per answer, so the
/// status follows from the variant. Messages are fixed, written for a
/// person; library text goes to the logs only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be understood (bad JSON, path or query).
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed input that breaks a rule, field by field.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 422: well-formed input that cannot be processed, not tied to a field.
    #[error("{0}")]
    Unprocessable(String),
    /// 401: not logged in, or the session ended.
    #[error("authentication required")]
    Unauthenticated,
    /// 401: wrong e-mail or password (deliberately one message for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403: logged in, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: the named thing does not exist (or is not yours to see).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the endpoint exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body (or an upload) is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not in a type this endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: too many requests; retry after the duration.
    #[error("rate limited")]
    RateLimited(Duration),
    /// 503: this instance is at a capacity limit right now; retry shortly.
    #[error("{0}")]
    Busy(&'static str),
    /// 503: a dependency (database, Redis, storage) failed; the reason is
    /// logged, never shown.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure: logged, answered without details.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How long a client should wait before retrying a 503.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(5);

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail)
            | Self::Unprocessable(detail)
            | Self::Conflict(detail)
            | Self::PayloadTooLarge(detail)
            | Self::UnsupportedMediaType(detail) => detail.clone(),
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("Please check: {}.", fields.join(", "))
            }
            Self::Unauthenticated => "Log in to continue.".into(),
            Self::InvalidCredentials => "Invalid e-mail or password.".into(),
            Self::Forbidden(why) | Self::Busy(why) => (*why).to_owned(),
            Self::NotFound(what) => format!("No such {what}."),
            Self::MethodNotAllowed => "This endpoint does not accept that method.".into(),
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

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(after) => Some(*after),
            Self::Busy(_) | Self::Unavailable(_) => Some(RETRY_UNAVAILABLE),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(err) => tracing::error!(error = ?err, "internal error"),
            Self::Unavailable(what) => tracing::warn!(%what, "dependency unavailable"),
            _ => {}
        }
        let status = self.status();
        let retry_after = self.retry_after();
        let body = Problem {
            kind: format!("/problems/{}", slug(status)),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(errors) => errors,
                _ => Vec::new(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = retry_after {
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

/// An extractor's refusal as a fixed message for its status (`part` names
/// what was wrong); the extractor's own text is logged at debug level only.
fn rejected(status: StatusCode, text: &str, part: &str) -> ApiError {
    tracing::debug!(%status, %text, "request refused by an extractor");
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("The request body is too large.".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
            "Send the body as JSON, with Content-Type: application/json.".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(format!(
            "The {part} does not have the expected fields and types."
        )),
        s if s.is_client_error() => ApiError::BadRequest(format!("The {part} is not valid.")),
        _ => ApiError::Internal(anyhow::anyhow!("extractor failed: {text}")),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        rejected(rejection.status(), &rejection.body_text(), "JSON body")
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        rejected(rejection.status(), &rejection.body_text(), "URL path")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        rejected(rejection.status(), &rejection.body_text(), "query string")
    }
}

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
            err if err.is_unavailable() => Self::Unavailable(err.to_string()),
            err => Self::Internal(err.into()),
        }
    }
}

impl From<tandem_queue::QueueError> for ApiError {
    fn from(err: tandem_queue::QueueError) -> Self {
        match err {
            tandem_queue::QueueError::Db(db) => db.into(),
            err if err.is_unavailable() => Self::Unavailable(err.to_string()),
            err => Self::Internal(err.into()),
        }
    }
}

impl From<tandem_ratelimit::LimitError> for ApiError {
    fn from(err: tandem_ratelimit::LimitError) -> Self {
        Self::Unavailable(err.to_string())
    }
}
