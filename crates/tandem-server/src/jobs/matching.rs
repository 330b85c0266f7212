//! The `partner-matching` queue: ranks every student for one user with
//! `tandem-matching`, caches the result for 10 minutes under
//! `partners:{userId}:{hash of preferences}`, and tells the user's browser
//! over realtime (`user:{userId}`, event `matching-complete`).
//!
//! Candidate features are built from the whole user table at most once a
//! minute per process and shared by every job (the roadmap reloaded all
//! candidates per request); the searching user's own profile is always read
//! fresh, and exclusions (partners, blocks) are read per job.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tandem_db::{Level, StudyStyle, Weekday};
use tandem_matching::{Features, Match, Preferences, SubjectIndex, Window};
use tandem_queue::{Job, JobError, Processor};
use tandem_realtime::{
    hub::{Hub, Outbound},
    protocol::Body,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::Data;

/// How long matches stay cached (the roadmap's 10 minutes).
pub const RESULT_TTL: Duration = Duration::from_secs(600);
/// How long a process reuses the candidate features it built.
const POOL_TTL: Duration = Duration::from_secs(60);
const PAGE: i64 = 5_000;

/// The cache key of a user's matches for these preferences.
pub fn cache_key(user_id: Uuid, preferences: &Preferences) -> String {
    format!("partners:{user_id}:{}", preferences.hash_key())
}

/// The cache tag covering every cached result of a user (dropped when they
/// block someone or gain a partner).
pub fn cache_tag(user_id: Uuid) -> String {
    format!("partners:{user_id}")
}

/// One suggested partner, as the API returns it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// The student's user id.
    pub user_id: Uuid,
    /// Their display name.
    pub display_name: String,
    /// Relevance, 0–1.
    pub score: f32,
    /// Subjects you share.
    pub shared_subjects: Vec<String>,
    /// Weekly hours you are both free.
    pub overlap_hours: f32,
    /// Why they were suggested.
    pub reasons: Vec<String>,
}

/// Everyone's features, built once and shared by concurrent jobs.
struct CandidatePool {
    index: SubjectIndex,
    features: Vec<Features>,
    names: HashMap<Uuid, String>,
    built: Instant,
}

/// Processor of `partner-matching` jobs (`{userId, preferences}`).
pub struct Matching {
    data: Data,
    hub: Arc<Hub>,
    pool: Mutex<Option<Arc<CandidatePool>>>,
}

impl Matching {
    /// A processor on the database and cache, telling users through `hub`.
    pub fn new(data: Data, hub: Arc<Hub>) -> Self {
        Self {
            data,
            hub,
            pool: Mutex::new(None),
        }
    }

    /// The shared candidate pool, rebuilt when older than [`POOL_TTL`].
    async fn pool(&self) -> Result<Arc<CandidatePool>, JobError> {
        let mut slot = self.pool.lock().await;
        if let Some(pool) = slot.as_ref().filter(|p| p.built.elapsed() < POOL_TTL) {
            return Ok(pool.clone());
        }
        let mut profiles = Vec::new();
        let mut names = HashMap::new();
        let mut after = None;
        loop {
            let page = self
                .data
                .db
                .candidate_page(after, PAGE)
                .await
                .map_err(|e| JobError::retryable(format!("loading candidates: {e}")))?;
            let full = page.len() as i64 == PAGE;
            after = page.last().map(|(user, _)| user.id);
            for (user, profile) in page {
                profiles.push(to_matching(user.id, &profile));
                names.insert(user.id, user.display_name);
            }
            if !full {
                break;
            }
        }
        let pool = tokio::task::spawn_blocking(move || {
            let mut index = SubjectIndex::new();
            let features = tandem_matching::features_for(&profiles, &mut index);
            CandidatePool {
                index,
                features,
                names,
                built: Instant::now(),
            }
        })
        .await
        .map_err(|_| JobError::retryable("building candidate features failed"))?;
        let pool = Arc::new(pool);
        *slot = Some(pool.clone());
        Ok(pool)
    }
}

#[async_trait]
impl Processor for Matching {
    async fn process(&self, job: &Job) -> Result<Value, JobError> {
        let user_id = super::owner(&job.data)?;
        let preferences: Preferences =
            serde_json::from_value(job.data.get("preferences").cloned().unwrap_or(json!({})))
                .map_err(|e| JobError::fatal(format!("invalid preferences: {e}")))?;
        let db = &self.data.db;
        let unavailable = |e: tandem_db::DbError| JobError::retryable(e.to_string());
        let (_, profile) = db
            .profile(user_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| JobError::fatal("the user no longer exists"))?;
        let excluded: HashSet<Uuid> = db
            .partner_exclusions(user_id)
            .await
            .map_err(unavailable)?
            .into_iter()
            .collect();
        let _ = job.progress(json!(20)).await;
        let pool = self.pool().await?;
        let _ = job.progress(json!(60)).await;
        let me = to_matching(user_id, &profile);
        let ranked_pool = pool.clone();
        let prefs = preferences.clone();
        let matches = tokio::task::spawn_blocking(move || {
            let mut index = ranked_pool.index.clone();
            let me = Features::from_profile(&me, &mut index);
            tandem_matching::rank(&me, &ranked_pool.features, &excluded, &prefs, &index)
        })
        .await
        .map_err(|_| JobError::retryable("ranking failed"))?;
        let suggestions: Vec<Suggestion> = matches
            .into_iter()
            .map(|m| suggestion(m, &pool.names))
            .collect();
        let tag = cache_tag(user_id);
        let key = cache_key(user_id, &preferences);
        self.data
            .cache
            .set(&key, &suggestions, RESULT_TTL, &[tag.as_str()])
            .await;
        let payload = json!({ "matchCount": suggestions.len(), "jobId": job.id });
        self.hub.publish(&Outbound::broadcast(
            &format!("realtime:user:{user_id}"),
            "matching-complete",
            Body::Json(payload),
            None,
        ));
        Ok(json!({ "matches": suggestions }))
    }
}

fn suggestion(m: Match, names: &HashMap<Uuid, String>) -> Suggestion {
    Suggestion {
        display_name: names.get(&m.id).cloned().unwrap_or_default(),
        user_id: m.id,
        score: m.score,
        shared_subjects: m.shared_subjects,
        overlap_hours: m.overlap_hours,
        reasons: m.reasons,
    }
}

/// A stored profile in the matcher's terms.
fn to_matching(id: Uuid, p: &tandem_db::Profile) -> tandem_matching::Profile {
    use tandem_matching::{Level as L, Style as S};
    let day = |d: Weekday| match d {
        Weekday::Mon => chrono::Weekday::Mon,
        Weekday::Tue => chrono::Weekday::Tue,
        Weekday::Wed => chrono::Weekday::Wed,
        Weekday::Thu => chrono::Weekday::Thu,
        Weekday::Fri => chrono::Weekday::Fri,
        Weekday::Sat => chrono::Weekday::Sat,
        Weekday::Sun => chrono::Weekday::Sun,
    };
    tandem_matching::Profile {
        id,
        subjects: p.subjects.clone(),
        level: p.level.map(|l| match l {
            Level::Beginner => L::Beginner,
            Level::Intermediate => L::Intermediate,
            Level::Advanced => L::Advanced,
        }),
        goals: p.goals.clone(),
        study_style: p.study_style.map(|s| match s {
            StudyStyle::Quiet => S::Quiet,
            StudyStyle::Discussion => S::Discussion,
            StudyStyle::Mixed => S::Mixed,
        }),
        timezone: p.timezone.clone(),
        availability: p
            .availability
            .iter()
            .filter_map(|w| Window::new(day(w.day), w.start.minutes(), w.end.minutes()))
            .collect(),
    }
}
