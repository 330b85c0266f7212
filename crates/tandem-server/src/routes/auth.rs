//! Sign-up, login, logout and password change.

//! The rules live in the accounts service ([`crate::accounts`]); these
//! handlers translate HTTP to its calls and set or clear the cookie.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::Deserialize;
use tandem_sessions::SessionToken;
use utoipa::ToSchema;

use crate::{
    Accounts, ApiError, Data,
    accounts::SignUp,
    cookies,
    error::Problem,
    extract::{ApiJson, Authenticated, ClientInfo, MaybeToken},
    routes::users::Me,
};

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// E-mail address (case-insensitive).
    #[schema(example = "ada@example.com")]
    email: String,
    /// At least 10 characters, not a common password.
    password: String,
    /// Name shown to other students (1–50 characters).
    #[schema(example = "Ada")]
    display_name: String,
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address.
    email: String,
    /// Password.
    password: String,
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password in use now.
    current_password: String,
    /// The new password (same rules as at sign-up).
    new_password: String,
}

/// Creates an account and logs it in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; session cookie set", body = Me),
        (status = 409, description = "E-mail already registered", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "Too many sign-ups from this address", body = Problem)))]
pub async fn register(
    State(data): State<Data>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Me>), ApiError> {
    let asked = SignUp {
        email: req.email,
        password: req.password,
        display_name: req.display_name,
    };
    let (user, token) = accounts.register(asked, &client).await?;
    let me = Me::load(&data, user).await?;
    Ok((
        StatusCode::CREATED,
        session_cookie(&accounts, &token)?,
        axum::Json(me),
    ))
}

/// Logs in. Any existing session of this browser is ended and a new id issued.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; session cookie set", body = Me),
        (status = 401, description = "Invalid e-mail or password", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem)))]
pub async fn login(
    State(data): State<Data>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    MaybeToken(previous): MaybeToken,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(HeaderMap, axum::Json<Me>), ApiError> {
    let credentials = (req.email.as_str(), req.password);
    let (user, token) = accounts.login(credentials, &client, previous).await?;
    let me = Me::load(&data, user).await?;
    Ok((session_cookie(&accounts, &token)?, axum::Json(me)))
}

/// Ends this browser's session. Always succeeds and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out")))]
pub async fn logout(
    State(accounts): State<Accounts>,
    MaybeToken(token): MaybeToken,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    accounts.logout(token).await?;
    Ok((StatusCode::NO_CONTENT, clear_cookie(&accounts)))
}

/// Changes the password and logs out every session, this one included; this
/// browser gets a fresh session.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; other sessions ended; new cookie set"),
        (status = 401, description = "Not logged in", body = Problem),
        (status = 422, description = "Current password wrong or new one too weak", body = Problem)))]
pub async fn change_password(
    State(accounts): State<Accounts>,
    auth: Authenticated,
    client: ClientInfo,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let passwords = (req.current_password, req.new_password);
    let token = (accounts.change_password(auth.user_id(), passwords, &client)).await?;
    Ok((StatusCode::NO_CONTENT, session_cookie(&accounts, &token)?))
}

/// The `Set-Cookie` header for a new session (and no caching of the answer).
fn session_cookie(accounts: &Accounts, token: &SessionToken) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        cookies::set(
            token,
            accounts.settings.session_absolute_timeout,
            accounts.settings.cookie_secure,
        ),
    );
    headers.insert(
        header::CACHE_CONTROL,
        "no-store".parse().map_err(anyhow::Error::from)?,
    );
    Ok(headers)
}

/// Headers that remove the session cookie.
pub fn clear_cookie(accounts: &Accounts) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        cookies::clear(accounts.settings.cookie_secure),
    );
    headers
}
