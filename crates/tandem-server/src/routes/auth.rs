//! Sign-up, login, logout and password change.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tandem_db::NewUser;
use tandem_sessions::SessionToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    Accounts, ApiError, Data, Limits, Live, cookies,
    error::Problem,
    extract::{ApiJson, Authenticated, ClientInfo, MaybeToken},
    routes::users::Me,
    validate::{self, Errors, MAX_PASSWORD_BYTES},
};

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const REGISTER_WINDOW: Duration = Duration::from_secs(60 * 60);

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
    State(limits): State<Limits>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Me>), ApiError> {
    let key = format!("register:ip:{}", client.ip);
    limits
        .check(&key, accounts.settings.register_max_per_ip, REGISTER_WINDOW)
        .await?;
    let mut errors = Errors::default();
    let email = errors.check("email", validate::email(&req.email));
    let name = errors.check("display_name", validate::line(&req.display_name, 1, 50));
    if let Some(email) = &email {
        errors.check("password", validate::password(&req.password, email));
    }
    errors.finish()?;
    let (Some(email), Some(display_name)) = (email, name) else {
        return Err(ApiError::invalid("email", "missing"));
    };
    let password_hash = accounts.passwords.hash(req.password).await?;
    let user = data
        .db
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            email,
            password_hash,
            display_name,
            created_at: data.clock.now(),
        })
        .await?;
    tracing::info!(user_id = %user.id, "account created");
    // The account is read back below (through the cache): from a replica
    // that has it.
    crate::reads::user_changed(&data, user.id).await;
    let headers = start_session(&accounts, user.id, &client).await?;
    let me = Me::load(&data, user.id).await?;
    Ok((StatusCode::CREATED, headers, axum::Json(me)))
}

/// Logs in. Any existing session of this browser is ended and a new id issued.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; session cookie set", body = Me),
        (status = 401, description = "Invalid e-mail or password", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem)))]
pub async fn login(
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(accounts): State<Accounts>,
    State(live): State<Live>,
    client: ClientInfo,
    MaybeToken(previous): MaybeToken,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(HeaderMap, axum::Json<Me>), ApiError> {
    let ip_key = format!("login:ip:{}", client.ip);
    limits
        .check(&ip_key, accounts.settings.login_max_per_ip, LOGIN_WINDOW)
        .await?;
    // No stored address has control characters (sign-up refuses them), and
    // PostgreSQL refuses NUL in text: answer as for any unknown account.
    if req.password.len() > MAX_PASSWORD_BYTES
        || req.email.len() > 320
        || req.email.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidCredentials);
    }
    let email = req.email.trim().to_lowercase();
    // Failed guesses lock the (account, address) pair, not the account, so
    // a stranger cannot lock the owner out (OWASP); an account-wide budget
    // ten times larger still stops guessing spread over many addresses.
    let account_key = account_limit_key(&email);
    let pair_key = format!("{account_key}:ip:{}", client.ip);
    let per_pair = accounts.settings.login_max_per_account;
    limits.check(&pair_key, per_pair, LOGIN_WINDOW).await?;
    limits
        .check(&account_key, per_pair.saturating_mul(10), LOGIN_WINDOW)
        .await?;
    let credentials = data.db.credentials_by_email(&email).await?;
    let user_id = credentials.as_ref().map(|c| c.user_id);
    let valid = accounts
        .passwords
        .verify(req.password, credentials.map(|c| c.password_hash))
        .await?;
    let (true, Some(user_id)) = (valid, user_id) else {
        metrics::counter!("tandem_logins_total", "result" => "failure").increment(1);
        return Err(ApiError::InvalidCredentials);
    };
    limits.reset(&pair_key).await?;
    end_session(&accounts, &live, previous).await?;
    let headers = start_session(&accounts, user_id, &client).await?;
    metrics::counter!("tandem_logins_total", "result" => "success").increment(1);
    Ok((headers, axum::Json(Me::load(&data, user_id).await?)))
}

/// Ends this browser's session. Always succeeds and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out")))]
pub async fn logout(
    State(accounts): State<Accounts>,
    State(live): State<Live>,
    MaybeToken(token): MaybeToken,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    end_session(&accounts, &live, token).await?;
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
    State(data): State<Data>,
    State(limits): State<Limits>,
    State(accounts): State<Accounts>,
    State(live): State<Live>,
    auth: Authenticated,
    client: ClientInfo,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let user_id = auth.user_id();
    let parts = (&data, &limits, &accounts);
    verify_password(parts, user_id, req.current_password, "current_password").await?;
    let user = data
        .db
        .user_by_id(user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    validate::password(&req.new_password, &user.email)
        .map_err(|m| ApiError::invalid("new_password", m))?;
    let hash = accounts.passwords.hash(req.new_password).await?;
    data.db
        .set_password_hash(user_id, &hash, data.clock.now())
        .await?;
    let revoked = accounts.sessions.revoke_all(user_id, None).await?;
    super::realtime::guard::sessions_ended(&live.hub, user_id, None, None);
    tracing::info!(%user_id, revoked, "password changed; sessions revoked");
    let headers = start_session(&accounts, user_id, &client).await?;
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Checks `password` against the user's; a mismatch is a 422 on `field`.
/// Guesses share one budget per account (`TANDEM_LOGIN_MAX_PER_ACCOUNT` per
/// 15 minutes) whatever asks: password change, account deletion.
pub async fn verify_password(
    (data, limits, accounts): (&Data, &Limits, &Accounts),
    user_id: Uuid,
    password: String,
    field: &str,
) -> Result<(), ApiError> {
    let key = format!("password:user:{user_id}");
    let max = accounts.settings.login_max_per_account;
    limits.check(&key, max, LOGIN_WINDOW).await?;
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(field, "The password is incorrect."));
    }
    let hash = data
        .db
        .credentials_by_id(user_id)
        .await?
        .map(|c| c.password_hash);
    if accounts.passwords.verify(password, hash).await? {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "The password is incorrect."))
    }
}

/// Ends the session `token` names, if it is live.
async fn end_session(
    accounts: &Accounts,
    live: &Live,
    token: Option<SessionToken>,
) -> Result<(), ApiError> {
    if let Some(token) = token
        && let Some(session) = accounts.sessions.resolve(&token).await?
    {
        accounts.sessions.end(&session).await?;
        let (user, id) = (session.user_id, Some(session.id.as_str()));
        super::realtime::guard::sessions_ended(&live.hub, user, id, None);
    }
    Ok(())
}

/// Starts a session and returns the `Set-Cookie` header for it.
async fn start_session(
    accounts: &Accounts,
    user_id: Uuid,
    client: &ClientInfo,
) -> Result<HeaderMap, ApiError> {
    let (token, _) = accounts
        .sessions
        .start(
            user_id,
            client.user_agent.as_deref(),
            Some(client.ip.to_string()),
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        cookies::set(
            &token,
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

/// Rate-limit key for an account: hashed, so Redis never holds e-mail addresses.
fn account_limit_key(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let short: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("login:account:{short}")
}
