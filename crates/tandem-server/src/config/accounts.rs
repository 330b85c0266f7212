//! Accounts: the session cookie, how long a login lasts, and how fast
//! anyone may sign in or sign up.

use std::time::Duration;

use tandem_sessions::SessionPolicy;

use super::{ConfigError, Env};

/// Login sessions and the limits on signing in and up.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// `TANDEM_COOKIE_SECURE`: mark the session cookie `Secure` (turn off only for plain http).
    pub cookie_secure: bool,
    /// `TANDEM_SESSION_IDLE_TIMEOUT`: a session unused this long ends.
    pub session_idle_timeout: Duration,
    /// `TANDEM_SESSION_ABSOLUTE_TIMEOUT`: a session ends this long after login.
    pub session_absolute_timeout: Duration,
    /// `TANDEM_LOGIN_MAX_PER_ACCOUNT`: failed logins per account per 15 minutes.
    pub login_max_per_account: u32,
    /// `TANDEM_LOGIN_MAX_PER_IP`: login attempts per client IP per 15 minutes.
    pub login_max_per_ip: u32,
    /// `TANDEM_REGISTER_MAX_PER_IP`: sign-ups per client IP per hour.
    pub register_max_per_ip: u32,
}

impl AccountSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let policy = SessionPolicy::default();
        let std = |d: chrono::Duration| d.to_std().unwrap_or(Duration::MAX);
        Ok(Self {
            cookie_secure: env.flag("TANDEM_COOKIE_SECURE", true)?,
            session_idle_timeout: env
                .duration("TANDEM_SESSION_IDLE_TIMEOUT", std(policy.idle_timeout))?,
            session_absolute_timeout: env.duration(
                "TANDEM_SESSION_ABSOLUTE_TIMEOUT",
                std(policy.absolute_timeout),
            )?,
            login_max_per_account: env.count("TANDEM_LOGIN_MAX_PER_ACCOUNT", 10)?,
            login_max_per_ip: env.count("TANDEM_LOGIN_MAX_PER_IP", 100)?,
            register_max_per_ip: env.count("TANDEM_REGISTER_MAX_PER_IP", 20)?,
        })
    }

    /// The session rules these settings give.
    pub fn session_policy(&self) -> SessionPolicy {
        let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        SessionPolicy {
            idle_timeout: chrono(self.session_idle_timeout),
            absolute_timeout: chrono(self.session_absolute_timeout),
            ..SessionPolicy::default()
        }
    }
}
