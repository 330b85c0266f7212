//! Study partners, the domain: finding them (the cached matches at once,
//! else a matching job whose end is announced on realtime), partnering and
//! blocking, and the cached matches each change drops. Handlers in
//! `routes/partners.rs` check the request and translate the answer.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use serde_json::{Map, Value};
use tandem_matching::Preferences;
use tandem_queue::QueueBackend;
use uuid::Uuid;

use crate::{
    ApiError, AppState, Data, Limits,
    jobs::{
        self,
        matching::{Suggestion, cache_key, cache_tag},
    },
};

/// The partners service: a handler's part, cloned from the [`crate::App`].
#[derive(Clone)]
pub struct Partners {
    data: Data,
    limits: Limits,
    queue: Arc<dyn QueueBackend>,
}

impl FromRef<AppState> for Partners {
    fn from_ref(app: &AppState) -> Self {
        Self {
            data: app.data.clone(),
            limits: app.limits.clone(),
            queue: app.queue.clone(),
        }
    }
}

/// What a search found.
pub enum Search {
    /// The cached matches, best first.
    Found(Vec<Suggestion>),
    /// The matching job computing them.
    Queued(String),
}

/// How one student relates to another.
#[derive(Clone, Copy)]
pub enum Relation {
    /// Study partners: no longer suggested to each other.
    Partner,
    /// Blocked: never suggested either way; any partnership ends.
    Blocked,
}

impl Partners {
    /// Partners for `me`: the matches cached for these preferences, else a
    /// queued matching job (30 searches a minute at most).
    pub async fn search(&self, me: Uuid, preferences: Preferences) -> Result<Search, ApiError> {
        if let Some(matches) = self.data.cache.get(&cache_key(me, &preferences)).await {
            return Ok(Search::Found(matches));
        }
        let key = format!("matching:{me}");
        self.limits.check(&key, 30, Duration::from_secs(60)).await?;
        let mut job = Map::new();
        job.insert(
            "preferences".into(),
            serde_json::to_value(&preferences).unwrap_or(Value::Null),
        );
        let (queue, name) = (self.queue.as_ref(), jobs::PARTNER_MATCHING);
        let id = jobs::enqueue(queue, name, "find-partners", me, job).await?;
        Ok(Search::Queued(id))
    }

    /// Records how `me` relates to `other` (someone else who exists) and
    /// drops both students' cached matches.
    pub async fn relate(&self, me: Uuid, other: Uuid, relation: Relation) -> Result<(), ApiError> {
        if other == me {
            return Err(ApiError::invalid("id", "That is you."));
        }
        let db = &self.data.db;
        db.user_by_id(other)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
        let now = self.data.clock.now();
        match relation {
            Relation::Partner => db.add_partner(me, other, now).await?,
            Relation::Blocked => db.block_partner(me, other, now).await?,
        }
        for user in [me, other] {
            self.data.cache.invalidate_tag(&cache_tag(user)).await;
        }
        Ok(())
    }
}
