use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tandem_core::Clock;
use tandem_db::AuthSession;
use uuid::Uuid;

use crate::{SessionStore, SessionToken, StoreError};

/// How long sessions live.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however active (roadmap: 30 days).
    pub absolute_timeout: Duration,
    /// Activity is written back at most this often, so reads stay reads.
    pub touch_interval: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::days(14),
            absolute_timeout: Duration::days(30),
            touch_interval: Duration::minutes(1),
        }
    }
}

/// Login sessions with their rules, over any [`SessionStore`].
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
}

/// Longest User-Agent kept for the device list.
const MAX_USER_AGENT: usize = 256;

impl Sessions {
    /// Sessions kept in `store`, timed by `clock`.
    pub fn new(store: Arc<dyn SessionStore>, policy: SessionPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            policy,
            clock,
        }
    }

    /// The timeouts in force.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The store, for readiness probes.
    pub fn store(&self) -> &dyn SessionStore {
        self.store.as_ref()
    }

    /// Starts a session for `user_id` with a brand-new token (never reusing
    /// one the client sent: no session fixation).
    pub async fn start(
        &self,
        user_id: Uuid,
        user_agent: Option<&str>,
        ip: Option<String>,
    ) -> Result<(SessionToken, AuthSession), StoreError> {
        let token = SessionToken::generate();
        let now = self.clock.now();
        let session = AuthSession {
            id: token.id(),
            user_id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.absolute_timeout,
            user_agent: user_agent.map(|ua| truncate(ua, MAX_USER_AGENT)),
            ip,
        };
        self.store.create(&session, self.deadline(&session)).await?;
        Ok((token, session))
    }

    /// The live session a token belongs to, if any. Expired sessions are
    /// deleted on sight; activity is recorded at most once per touch interval.
    pub async fn resolve(&self, token: &SessionToken) -> Result<Option<AuthSession>, StoreError> {
        let Some(mut session) = self.store.get(&token.id()).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if !self.is_live(&session, now) {
            self.store.delete(session.user_id, &session.id).await?;
            return Ok(None);
        }
        if now - session.last_seen_at >= self.policy.touch_interval {
            session.last_seen_at = now;
            self.store.touch(&session, self.deadline(&session)).await?;
        }
        Ok(Some(session))
    }

    /// Ends one session (logout).
    pub async fn end(&self, session: &AuthSession) -> Result<(), StoreError> {
        self.store.delete(session.user_id, &session.id).await?;
        Ok(())
    }

    /// A user's live sessions, newest first.
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<AuthSession>, StoreError> {
        let now = self.clock.now();
        let mut sessions = self.store.list(user_id).await?;
        sessions.retain(|s| self.is_live(s, now));
        Ok(sessions)
    }

    /// Ends session `id` if it belongs to `user_id`; false otherwise, so a
    /// user cannot even learn whether someone else's session exists.
    pub async fn revoke(&self, user_id: Uuid, id: &str) -> Result<bool, StoreError> {
        self.store.delete(user_id, id).await
    }

    /// Ends every session of `user_id` except `keep` ("log out everywhere").
    pub async fn revoke_all(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64, StoreError> {
        self.store.delete_all(user_id, keep).await
    }

    /// Deletes expired sessions from stores that do not expire them by themselves.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        self.store
            .purge_expired(now, now - self.policy.idle_timeout)
            .await
    }

    /// When `session` ends unless used again: the earlier of idle and absolute expiry.
    pub fn deadline(&self, session: &AuthSession) -> DateTime<Utc> {
        (session.last_seen_at + self.policy.idle_timeout).min(session.expires_at)
    }

    fn is_live(&self, session: &AuthSession, now: DateTime<Utc>) -> bool {
        now < self.deadline(session)
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
