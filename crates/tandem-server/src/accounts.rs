//! Accounts, the domain: signing up, logging in and out, changing the
//! password, deleting the account, and the login sessions ("my devices").
//! It owns the rules: field checks, the login budgets (per address, per
//! account and address, per account), session rotation at login, which
//! sessions a change ends and the realtime sockets that end with them, and
//! what a change invalidates. Handlers (`routes/auth.rs`, `sessions.rs`,
//! `users.rs`) translate HTTP to these calls and set or clear the cookie.

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tandem_db::{AuthSession, NewUser};
use tandem_realtime::hub::Hub;
use tandem_sessions::{SessionToken, Sessions};
use uuid::Uuid;

use crate::{
    ApiError, Data, Limits, Media,
    config::AccountSettings,
    extract::ClientInfo,
    passwords::Passwords,
    reads,
    routes::realtime::guard::sessions_ended,
    validate::{self, Errors, MAX_PASSWORD_BYTES},
};

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const REGISTER_WINDOW: Duration = Duration::from_secs(60 * 60);

/// The accounts service: a handler's part, cloned from the [`crate::App`]
/// on every signed-in request (by the `Authenticated` extractor), so one
/// `Arc` clone, not one per field.
#[derive(Clone)]
pub struct Accounts(Arc<AccountsInner>);

impl std::ops::Deref for Accounts {
    type Target = AccountsInner;
    fn deref(&self) -> &AccountsInner {
        &self.0
    }
}

/// What [`Accounts`] holds.
pub struct AccountsInner {
    /// Login sessions, in the database or in Redis.
    pub sessions: Sessions,
    /// The accounts section of the configuration.
    pub settings: AccountSettings,
    /// Whether client addresses come from `X-Forwarded-For`.
    pub trust_proxy: bool,
    passwords: Passwords,
    data: Data,
    limits: Limits,
    hub: Arc<Hub>,
}

/// An account to create, as asked.
pub struct SignUp {
    /// E-mail address (case-insensitive).
    pub email: String,
    /// At least 10 characters, not a common password.
    pub password: String,
    /// Name shown to other students (1–50 characters).
    pub display_name: String,
}

impl Accounts {
    /// The service over the app's other parts.
    pub fn new(
        sessions: Sessions,
        settings: AccountSettings,
        trust_proxy: bool,
        (data, limits, hub): (Data, Limits, Arc<Hub>),
    ) -> Self {
        Self(Arc::new(AccountsInner {
            sessions,
            settings,
            trust_proxy,
            passwords: Passwords::new(),
            data,
            limits,
            hub,
        }))
    }

    /// Creates an account (every field checked first) and logs it in.
    pub async fn register(
        &self,
        asked: SignUp,
        client: &ClientInfo,
    ) -> Result<(Uuid, SessionToken), ApiError> {
        let key = format!("register:ip:{}", client.ip);
        let max = self.settings.register_max_per_ip;
        self.limits.check(&key, max, REGISTER_WINDOW).await?;
        let mut errors = Errors::default();
        let email = errors.check("email", validate::email(&asked.email));
        let name = errors.check("display_name", validate::line(&asked.display_name, 1, 50));
        if let Some(email) = &email {
            errors.check("password", validate::password(&asked.password, email));
        }
        errors.finish()?;
        let (Some(email), Some(display_name)) = (email, name) else {
            return Err(ApiError::invalid("email", "missing"));
        };
        let password_hash = self.passwords.hash(asked.password).await?;
        let user = self
            .data
            .db
            .create_user(&NewUser {
                id: Uuid::now_v7(),
                email,
                password_hash,
                display_name,
                created_at: self.data.clock.now(),
            })
            .await?;
        tracing::info!(user_id = %user.id, "account created");
        // The account is read back (through the cache): from a replica that has it.
        reads::user_changed(&self.data, user.id).await;
        Ok((user.id, self.start_session(user.id, client).await?))
    }

    /// Logs in with a new session id; the browser's `previous` session, if
    /// any, ends.
    pub async fn login(
        &self,
        (email, password): (&str, String),
        client: &ClientInfo,
        previous: Option<SessionToken>,
    ) -> Result<(Uuid, SessionToken), ApiError> {
        let ip_key = format!("login:ip:{}", client.ip);
        let max = self.settings.login_max_per_ip;
        self.limits.check(&ip_key, max, LOGIN_WINDOW).await?;
        // No stored address has control characters (sign-up refuses them), and
        // PostgreSQL refuses NUL in text: answer as for any unknown account.
        if password.len() > MAX_PASSWORD_BYTES
            || email.len() > 320
            || email.chars().any(char::is_control)
        {
            return Err(ApiError::InvalidCredentials);
        }
        let email = email.trim().to_lowercase();
        // Failed guesses lock the (account, address) pair, not the account, so
        // a stranger cannot lock the owner out (OWASP); an account-wide budget
        // ten times larger still stops guessing spread over many addresses.
        let account_key = account_limit_key(&email);
        let pair_key = format!("{account_key}:ip:{}", client.ip);
        let per_pair = self.settings.login_max_per_account;
        self.limits.check(&pair_key, per_pair, LOGIN_WINDOW).await?;
        let per_account = per_pair.saturating_mul(10);
        self.limits
            .check(&account_key, per_account, LOGIN_WINDOW)
            .await?;
        let credentials = self.data.db.credentials_by_email(&email).await?;
        let user_id = credentials.as_ref().map(|c| c.user_id);
        let hash = credentials.map(|c| c.password_hash);
        let valid = self.passwords.verify(password, hash).await?;
        let (true, Some(user_id)) = (valid, user_id) else {
            metrics::counter!("tandem_logins_total", "result" => "failure").increment(1);
            return Err(ApiError::InvalidCredentials);
        };
        self.limits.reset(&pair_key).await?;
        self.logout(previous).await?;
        let token = self.start_session(user_id, client).await?;
        metrics::counter!("tandem_logins_total", "result" => "success").increment(1);
        Ok((user_id, token))
    }

    /// Ends the session `token` names, if it is live, and its sockets.
    pub async fn logout(&self, token: Option<SessionToken>) -> Result<(), ApiError> {
        if let Some(token) = token
            && let Some(session) = self.sessions.resolve(&token).await?
        {
            self.sessions.end(&session).await?;
            sessions_ended(&self.hub, session.user_id, Some(&session.id), None);
        }
        Ok(())
    }

    /// Changes the password and ends every session of the user (their
    /// sockets too); returns a fresh session for this browser.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        (current, new): (String, String),
        client: &ClientInfo,
    ) -> Result<SessionToken, ApiError> {
        self.verify_password(user_id, current, "current_password")
            .await?;
        let user = self
            .data
            .db
            .user_by_id(user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        validate::password(&new, &user.email).map_err(|m| ApiError::invalid("new_password", m))?;
        let hash = self.passwords.hash(new).await?;
        let now = self.data.clock.now();
        self.data.db.set_password_hash(user_id, &hash, now).await?;
        let revoked = self.sessions.revoke_all(user_id, None).await?;
        sessions_ended(&self.hub, user_id, None, None);
        tracing::info!(%user_id, revoked, "password changed; sessions revoked");
        self.start_session(user_id, client).await
    }

    /// Deletes the account (the password confirms it): its sessions and
    /// sockets end, its rows go, and its uploads stop being served (a CDN
    /// may keep a copy for a day).
    pub async fn delete(
        &self,
        user_id: Uuid,
        password: String,
        media: &Media,
    ) -> Result<(), ApiError> {
        self.verify_password(user_id, password, "password").await?;
        self.sessions.revoke_all(user_id, None).await?;
        sessions_ended(&self.hub, user_id, None, None);
        self.data.db.delete_user(user_id).await?;
        reads::user_changed(&self.data, user_id).await;
        if let Err(e) = media
            .images
            .delete_uploads(&format!("avatars/{user_id}"))
            .await
        {
            tracing::error!(error = %e, %user_id, "could not delete a deleted account's uploads");
        }
        tracing::info!(%user_id, "account deleted");
        Ok(())
    }

    /// The user's live sessions, newest first.
    pub async fn devices(&self, user_id: Uuid) -> Result<Vec<AuthSession>, ApiError> {
        Ok(self.sessions.list(user_id).await?)
    }

    /// Ends every session of the user but `keep`; returns how many ended.
    pub async fn log_out_others(&self, user_id: Uuid, keep: &str) -> Result<u64, ApiError> {
        let revoked = self.sessions.revoke_all(user_id, Some(keep)).await?;
        sessions_ended(&self.hub, user_id, None, Some(keep));
        Ok(revoked)
    }

    /// Ends one session of the user; `false` if they have no such session.
    pub async fn log_out_device(&self, user_id: Uuid, id: &str) -> Result<bool, ApiError> {
        if !self.sessions.revoke(user_id, id).await? {
            return Ok(false);
        }
        sessions_ended(&self.hub, user_id, Some(id), None);
        Ok(true)
    }

    /// Checks `password` against the user's; a mismatch is a 422 on `field`.
    /// Guesses share one budget per account (`TANDEM_LOGIN_MAX_PER_ACCOUNT` per
    /// 15 minutes) whatever asks: password change, account deletion.
    async fn verify_password(
        &self,
        user_id: Uuid,
        password: String,
        field: &str,
    ) -> Result<(), ApiError> {
        let key = format!("password:user:{user_id}");
        let max = self.settings.login_max_per_account;
        self.limits.check(&key, max, LOGIN_WINDOW).await?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::invalid(field, "The password is incorrect."));
        }
        let hash = (self.data.db)
            .credentials_by_id(user_id)
            .await?
            .map(|c| c.password_hash);
        if self.passwords.verify(password, hash).await? {
            Ok(())
        } else {
            Err(ApiError::invalid(field, "The password is incorrect."))
        }
    }

    async fn start_session(
        &self,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<SessionToken, ApiError> {
        let ip = Some(client.ip.to_string());
        let (token, _) = (self.sessions)
            .start(user_id, client.user_agent.as_deref(), ip)
            .await?;
        Ok(token)
    }
}

/// Rate-limit key for an account: hashed, so Redis never holds e-mail addresses.
fn account_limit_key(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let short: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("login:account:{short}")
}
