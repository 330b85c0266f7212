use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use tandem_db::AuthSession;
use uuid::Uuid;

use crate::{SessionStore, StoreError};

/// Sessions in Redis, shared by every instance (the roadmap's point).
///
/// Layout under the configured prefix:
/// - `session:{id}` → JSON record, expiring at the session's idle/absolute
///   deadline, so Redis itself forgets dead sessions;
/// - `user-sessions:{user}` → sorted set of that user's ids scored by
///   absolute expiry, trimmed on every login and expiring with its newest
///   member: the index never outgrows the live sessions (unlike tag sets
///   without TTLs).
#[derive(Clone)]
pub struct RedisSessionStore {
    conn: ConnectionManager,
    prefix: String,
}

/// Adds a session and keeps the user index trimmed and expiring.
/// KEYS: session key, index key. ARGV: json, ttl ms, id, expires ms, now ms.
const CREATE: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local want = tonumber(ARGV[4]) - tonumber(ARGV[5])
if redis.call('PTTL', KEYS[2]) < want then
  redis.call('PEXPIRE', KEYS[2], want)
end
return 1
"#;

/// Deletes a session only if it is in the given user's index: nobody can
/// delete someone else's session by guessing its id.
/// KEYS: index key, session key. ARGV: id.
const DELETE: &str = r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  return redis.call('DEL', KEYS[2])
end
return 0
"#;

impl RedisSessionStore {
    /// A store using `conn`, with every key under `prefix` (e.g. `tandem:`).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn index_key(&self, user_id: Uuid) -> String {
        format!("{}user-sessions:{user_id}", self.prefix)
    }
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Milliseconds until `deadline`, at least 1 (Redis rejects 0).
fn ttl_ms(deadline: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (deadline - now).num_milliseconds().max(1)
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(
        &self,
        session: &AuthSession,
        idle_deadline: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = session.last_seen_at;
        Script::new(CREATE)
            .key(self.session_key(&session.id))
            .key(self.index_key(session.user_id))
            .arg(serde_json::to_string(session)?)
            .arg(ttl_ms(idle_deadline, now))
            .arg(&session.id)
            .arg(session.expires_at.timestamp_millis())
            .arg(now.timestamp_millis())
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<AuthSession>, StoreError> {
        let raw: Option<String> = self.conn.clone().get(self.session_key(id)).await?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    async fn touch(
        &self,
        session: &AuthSession,
        idle_deadline: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // XX: only overwrite a live key, so a concurrent logout wins.
        redis::cmd("SET")
            .arg(self.session_key(&session.id))
            .arg(serde_json::to_string(session)?)
            .arg("PX")
            .arg(ttl_ms(idle_deadline, session.last_seen_at))
            .arg("XX")
            .query_async::<Option<String>>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn delete(&self, user_id: Uuid, id: &str) -> Result<bool, StoreError> {
        let deleted: i64 = Script::new(DELETE)
            .key(self.index_key(user_id))
            .key(self.session_key(id))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(deleted > 0)
    }

    async fn list(&self, user_id: Uuid) -> Result<Vec<AuthSession>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.zrange(self.index_key(user_id), 0, -1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.session_key(id)).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let mut sessions = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (id, record) in ids.iter().zip(raw) {
            match record {
                Some(r) => sessions.push(serde_json::from_str::<AuthSession>(&r)?),
                None => gone.push(id.as_str()),
            }
        }
        if !gone.is_empty() {
            conn.zrem::<_, _, i64>(self.index_key(user_id), gone)
                .await?;
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn delete_all(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let index = self.index_key(user_id);
        let ids: Vec<String> = conn.zrange(&index, 0, -1).await?;
        let doomed: Vec<&String> = ids.iter().filter(|id| Some(id.as_str()) != keep).collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = doomed.iter().map(|id| self.session_key(id)).collect();
        let (deleted, _): (u64, i64) = redis::pipe()
            .atomic()
            .del(keys)
            .zrem(&index, doomed)
            .query_async(&mut conn)
            .await?;
        Ok(deleted)
    }

    async fn purge_expired(&self, _: DateTime<Utc>, _: DateTime<Utc>) -> Result<u64, StoreError> {
        // Every key carries its own TTL: Redis expires sessions by itself.
        Ok(0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
