use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tandem_db::{AuthSession, AuthSessionRepo};
use uuid::Uuid;

use crate::{SessionStore, StoreError};

/// Sessions in the `auth_sessions` table: the embedded default. Expired rows
/// are removed by [`SessionStore::purge_expired`], run periodically by `serve`.
#[derive(Clone)]
pub struct DbSessionStore {
    repo: Arc<dyn AuthSessionRepo>,
}

impl DbSessionStore {
    /// A store over the given repository.
    pub fn new(repo: Arc<dyn AuthSessionRepo>) -> Self {
        Self { repo }
    }
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, session: &AuthSession, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(self.repo.insert_session(session).await?)
    }

    async fn get(&self, id: &str) -> Result<Option<AuthSession>, StoreError> {
        Ok(self.repo.session(id).await?)
    }

    async fn touch(&self, session: &AuthSession, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(self
            .repo
            .touch_session(&session.id, session.last_seen_at)
            .await?)
    }

    async fn delete(&self, user_id: Uuid, id: &str) -> Result<bool, StoreError> {
        Ok(self.repo.delete_session(user_id, id).await?)
    }

    async fn list(&self, user_id: Uuid) -> Result<Vec<AuthSession>, StoreError> {
        Ok(self.repo.sessions_for_user(user_id).await?)
    }

    async fn delete_all(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64, StoreError> {
        Ok(self.repo.delete_sessions_for_user(user_id, keep).await?)
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.repo.delete_expired_sessions(now, idle_before).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reaching the database is checked by the database probe itself.
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "database"
    }
}
