//! Request extractors whose failures are problem+json [`ApiError`]s.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts},
    http::{header, request::Parts},
};
use tandem_db::AuthSession;
use tandem_sessions::SessionToken;

use crate::{Accounts, ApiError, cookies};

/// `axum::Json` whose rejections (syntax, wrong types, unknown fields,
/// missing content type, oversized body) become problem responses.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with problem-response rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with problem-response rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The logged-in user's live session. Rejects with 401 otherwise.
pub struct Authenticated {
    /// The session record.
    pub session: AuthSession,
}

impl Authenticated {
    /// The logged-in user.
    pub fn user_id(&self) -> uuid::Uuid {
        self.session.user_id
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Accounts: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let accounts = Accounts::from_ref(state);
        let token = cookies::read(&parts.headers, accounts.settings.cookie_secure)
            .ok_or(ApiError::Unauthenticated)?;
        let session = accounts
            .sessions
            .resolve(&token)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if let Some(writer) = parts.extensions.get::<crate::replicas::Writer>() {
            writer.set(session.user_id);
        }
        Ok(Self { session })
    }
}

/// The session token the request carries, if any (whether or not it is live).
pub struct MaybeToken(pub Option<SessionToken>);

impl<S> FromRequestParts<S> for MaybeToken
where
    S: Send + Sync,
    Accounts: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let secure = Accounts::from_ref(state).settings.cookie_secure;
        Ok(Self(cookies::read(&parts.headers, secure)))
    }
}

/// Who is calling: client IP (proxy-aware if configured) and User-Agent.
pub struct ClientInfo {
    /// The client's address.
    pub ip: IpAddr,
    /// The User-Agent header, if any.
    pub user_agent: Option<String>,
}

impl<S> FromRequestParts<S> for ClientInfo
where
    S: Send + Sync,
    Accounts: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Self {
            ip: client_ip(parts, Accounts::from_ref(state).trust_proxy),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// The peer address, or with `trust_proxy` the right-most `X-Forwarded-For`
/// entry (the one our own proxy appended; the left ones are client-supplied).
pub fn client_ip(parts: &Parts, trust_proxy: bool) -> IpAddr {
    let forwarded = trust_proxy
        .then(|| parts.headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok());
    forwarded.unwrap_or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ci| ci.0.ip())
    })
}
