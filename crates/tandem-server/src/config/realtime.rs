//! The realtime endpoint: its token key, its message budgets and chat
//! batching, and its defences against hostile clients (who may open a
//! socket from where, how long a stranger may hold one, how big presence
//! may grow, and how fast one user may broadcast).

use std::time::Duration;

use tandem_core::SecretString;

use super::{ConfigError, Env};

/// The realtime endpoint's settings.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// `TANDEM_REALTIME_SECRET`: signs realtime access tokens; set the same
    /// value on every instance (unset: a random key per process).
    pub secret: Option<SecretString>,
    /// `TANDEM_REALTIME_MESSAGES_PER_SECOND`: per-connection realtime message budget.
    pub messages_per_second: u32,
    /// `TANDEM_REALTIME_CHANNEL_MESSAGES_PER_SECOND`: client broadcasts one
    /// channel lets through per second, on each instance.
    pub channel_messages_per_second: u32,
    /// `TANDEM_REALTIME_BATCH_MS`: chat messages of a room within this many
    /// milliseconds are pushed as one broadcast (0 turns batching off).
    pub batch_window: Duration,
    /// Bounds against hostile clients.
    pub guards: RealtimeGuards,
}

impl RealtimeSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            secret: env.secret("TANDEM_REALTIME_SECRET"),
            messages_per_second: env.count("TANDEM_REALTIME_MESSAGES_PER_SECOND", 200)?,
            channel_messages_per_second: env
                .count("TANDEM_REALTIME_CHANNEL_MESSAGES_PER_SECOND", 1000)?,
            batch_window: Duration::from_millis(env.parse(
                "TANDEM_REALTIME_BATCH_MS",
                100,
                "expected milliseconds (0 turns batching off)",
            )?),
            guards: RealtimeGuards::from_env(env)?,
        })
    }
}

/// Bounds of the realtime endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeGuards {
    /// `TANDEM_ALLOWED_ORIGINS`: web origins (`https://app.example.org`)
    /// besides the server's own whose pages may open cookie-authenticated
    /// WebSockets; clients sending no `Origin` (servers, apps) are not
    /// affected.
    pub allowed_origins: Vec<String>,
    /// `TANDEM_REALTIME_MAX_ANONYMOUS`: sockets without a credential at a
    /// time, on each instance.
    pub max_anonymous: u32,
    /// `TANDEM_REALTIME_AUTH_DEADLINE`: a socket without a credential is
    /// closed unless it joins a channel within this long.
    pub auth_deadline: Duration,
    /// `TANDEM_REALTIME_PRESENCE_META_BYTES`: largest presence meta (JSON).
    pub presence_meta_bytes: u32,
    /// `TANDEM_REALTIME_PRESENCE_PER_TOPIC`: presences per channel, per instance.
    pub presence_per_topic: u32,
    /// `TANDEM_REALTIME_PRESENCE_PER_USER`: presences of one user per channel.
    pub presence_per_user: u32,
    /// `TANDEM_REALTIME_USER_BROADCASTS_PER_SECOND`: broadcasts one user may
    /// send per second through `POST /realtime/v1/api/broadcast`, per instance.
    pub user_broadcasts_per_second: u32,
}

impl RealtimeGuards {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let allowed_origins = env
            .items("TANDEM_ALLOWED_ORIGINS")
            .into_iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .map(|o| {
                if o.starts_with("http://") || o.starts_with("https://") {
                    Ok(o)
                } else {
                    Err(env.error(
                        "TANDEM_ALLOWED_ORIGINS",
                        &o,
                        "expected origins like https://app.example.org",
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowed_origins,
            max_anonymous: env.count("TANDEM_REALTIME_MAX_ANONYMOUS", 1000)?,
            auth_deadline: env
                .duration("TANDEM_REALTIME_AUTH_DEADLINE", Duration::from_secs(10))?,
            presence_meta_bytes: env.count("TANDEM_REALTIME_PRESENCE_META_BYTES", 1024)?,
            presence_per_topic: env.count("TANDEM_REALTIME_PRESENCE_PER_TOPIC", 200)?,
            presence_per_user: env.count("TANDEM_REALTIME_PRESENCE_PER_USER", 10)?,
            user_broadcasts_per_second: env
                .count("TANDEM_REALTIME_USER_BROADCASTS_PER_SECOND", 200)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn origins_are_normalised_and_checked() {
        let config = Config::from_lookup(|name| {
            (name == "TANDEM_ALLOWED_ORIGINS")
                .then(|| "https://App.example.org/, http://localhost:3000".to_owned())
        })
        .expect("valid");
        assert_eq!(
            config.realtime.guards.allowed_origins,
            ["https://app.example.org", "http://localhost:3000"]
        );
        assert_eq!(config.realtime.guards.presence_meta_bytes, 1024);
        let bad = Config::from_lookup(|name| {
            (name == "TANDEM_ALLOWED_ORIGINS").then(|| "app.example.org".to_owned())
        });
        assert!(bad.is_err());
    }
}
