//! Study rooms, the domain: when a room may be scheduled and for how long,
//! how many seats and how many upcoming rooms one owner may run; joining,
//! leaving and cancelling; and what each change invalidates (the cached
//! lists and achievements of everyone affected), ends (a leaver's live
//! chat) and records (the visit, for analytics). Handlers in
//! `routes/rooms.rs` only translate HTTP to these calls.

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{DateTime, Duration, Utc};
use tandem_db::{JoinOutcome, Member, NewRoom, Room};
use tandem_realtime::hub::Hub;
use uuid::Uuid;

use crate::{
    ApiError, AppState, Data,
    analytics::AnalyticsSink,
    reads,
    routes::realtime::guard,
    validate::{self, Errors},
};

/// Most seats a room (and so its video call) may have; the TURN server's
/// default per-user quota is sized from it.
pub const MAX_SEATS: i32 = 50;
/// Most upcoming rooms one student may run at once.
const MAX_UPCOMING_OWNED: i64 = 20;

/// The rooms service: a handler's part, cloned from the [`crate::App`].
#[derive(Clone)]
pub struct Rooms {
    data: Data,
    hub: Arc<Hub>,
    analytics: Arc<AnalyticsSink>,
}

impl FromRef<AppState> for Rooms {
    fn from_ref(app: &AppState) -> Self {
        Self {
            data: app.data.clone(),
            hub: app.live.hub.clone(),
            analytics: app.analytics.sink.clone(),
        }
    }
}

/// A room as its owner asks for it.
pub struct Schedule {
    /// 1–100 characters.
    pub title: String,
    /// 1–60 characters.
    pub subject: String,
    /// Up to 2000 characters.
    pub description: String,
    /// Not in the past (5 minutes' grace), within a year.
    pub starts_at: DateTime<Utc>,
    /// After the start, at most 12 hours later.
    pub ends_at: DateTime<Utc>,
    /// 2 to [`MAX_SEATS`], the owner's included.
    pub capacity: i32,
}

/// A room with its members.
pub type WithMembers = (Room, Vec<Member>);

impl Rooms {
    /// Schedules a room owned by `owner`, its first member; every field is
    /// checked before anything is written (422 with each field's problem).
    pub async fn schedule(&self, owner: Uuid, asked: Schedule) -> Result<Room, ApiError> {
        let now = self.data.clock.now();
        let mut errors = Errors::default();
        let title = errors.check("title", validate::line(&asked.title, 1, 100));
        let subject = errors.check("subject", validate::line(&asked.subject, 1, 60));
        let description = errors.check("description", validate::text(&asked.description, 2000));
        errors.check("starts_at", starts_in_time(asked.starts_at, now));
        errors.check("ends_at", lasts_in_bounds(asked.starts_at, asked.ends_at));
        if !(2..=MAX_SEATS).contains(&asked.capacity) {
            errors.check::<()>("capacity", Err(format!("Use 2 to {MAX_SEATS} seats.")));
        }
        errors.finish()?;
        let (Some(title), Some(subject), Some(description)) = (title, subject, description) else {
            return Err(ApiError::invalid("title", "missing"));
        };
        let room = NewRoom {
            id: Uuid::now_v7(),
            owner_id: owner,
            title,
            subject,
            description,
            starts_at: asked.starts_at,
            ends_at: asked.ends_at,
            capacity: asked.capacity,
            created_at: now,
        };
        let created = self
            .data
            .db
            .create_room(&room, MAX_UPCOMING_OWNED)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "You already run {MAX_UPCOMING_OWNED} upcoming sessions; cancel one first."
                ))
            })?;
        reads::room_changed(&self.data, &[owner]).await;
        Ok(created)
    }

    /// Scheduled rooms not over yet, soonest first.
    pub async fn upcoming(&self) -> Result<Vec<Room>, ApiError> {
        reads::upcoming_rooms(&self.data).await
    }

    /// The rooms `user` runs or joined, latest first.
    pub async fn of(&self, user: Uuid) -> Result<Vec<Room>, ApiError> {
        reads::my_rooms(&self.data, user).await
    }

    /// One room with its members, as `reader` may see it (after their own writes).
    pub async fn detail(&self, reader: Uuid, id: Uuid) -> Result<WithMembers, ApiError> {
        let (room, members) = self
            .data
            .read(reader, |db| async move {
                Ok((db.room(id).await?, db.members(id).await?))
            })
            .await?;
        Ok((room.ok_or(ApiError::NotFound("study session"))?, members))
    }

    /// `user` joins (idempotent): never past capacity, never a closed room.
    pub async fn join(&self, id: Uuid, user: Uuid) -> Result<WithMembers, ApiError> {
        match self
            .data
            .db
            .join_room(id, user, self.data.clock.now())
            .await?
        {
            JoinOutcome::Joined | JoinOutcome::AlreadyMember => {}
            JoinOutcome::Full => return Err(ApiError::Conflict("This session is full.".into())),
            JoinOutcome::Closed => {
                return Err(ApiError::Conflict(
                    "This session was cancelled or is over.".into(),
                ));
            }
            JoinOutcome::NotFound => return Err(ApiError::NotFound("study session")),
        }
        self.changed(id, &[]).await
    }

    /// `user` leaves a room not over yet (owners cancel instead): their
    /// live chat there ends and the time they spent is recorded.
    pub async fn leave(&self, id: Uuid, user: Uuid) -> Result<WithMembers, ApiError> {
        let room = self.find(id).await?;
        if room.owner_id == user {
            return Err(ApiError::Conflict(
                "Owners cancel a session instead of leaving it.".into(),
            ));
        }
        if room.ends_at <= self.data.clock.now() {
            return Err(ApiError::Conflict(
                "This session is over; it stays in your history.".into(),
            ));
        }
        let joined_at = self
            .data
            .db
            .members(id)
            .await?
            .into_iter()
            .find(|m| m.user_id == user)
            .map(|m| m.joined_at);
        if !self.data.db.leave_room(id, user).await? {
            return Err(ApiError::NotFound("membership"));
        }
        guard::left_room(&self.hub, user, id);
        if let Some(started_at) = joined_at {
            self.record_visit(id, user, started_at);
        }
        self.changed(id, &[user]).await
    }

    /// The owner cancels a room not over yet.
    pub async fn cancel(&self, id: Uuid, user: Uuid) -> Result<WithMembers, ApiError> {
        let room = self.find(id).await?;
        if room.owner_id != user {
            return Err(ApiError::Forbidden("Only the owner can cancel a session."));
        }
        let now = self.data.clock.now();
        if room.ends_at <= now {
            return Err(ApiError::Conflict(
                "This session is over and cannot be cancelled.".into(),
            ));
        }
        if !self.data.db.cancel_room(id, user, now).await? {
            return Err(ApiError::Conflict(
                "This session is already cancelled.".into(),
            ));
        }
        self.changed(id, &[]).await
    }

    /// Time spent in the room, for analytics; a full buffer only loses this row.
    fn record_visit(&self, room: Uuid, user: Uuid, started_at: DateTime<Utc>) {
        let visit = tandem_db::AnalyticsRow::StudyVisit(tandem_db::StudyVisit {
            id: 0,
            occurred_at: self.data.clock.now(),
            user_id: user,
            study_session_id: Some(room),
            started_at,
        });
        if self.analytics.offer(vec![visit]).is_err() {
            tracing::warn!("analytics buffer full; a study visit was not recorded");
        }
    }

    /// Invalidates what a change touched (its members' and `former`
    /// members' lists and achievements, the browse list) and returns the
    /// room's new state.
    async fn changed(&self, id: Uuid, former: &[Uuid]) -> Result<WithMembers, ApiError> {
        let room = self.find(id).await?;
        let members = self.data.db.members(id).await?;
        let affected: Vec<Uuid> = members
            .iter()
            .map(|m| m.user_id)
            .chain(former.iter().copied())
            .collect();
        reads::room_changed(&self.data, &affected).await;
        Ok((room, members))
    }

    async fn find(&self, id: Uuid) -> Result<Room, ApiError> {
        self.data
            .db
            .room(id)
            .await?
            .ok_or(ApiError::NotFound("study session"))
    }
}

fn starts_in_time(start: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if start < now - Duration::minutes(5) {
        return Err("Choose a start time in the future.".into());
    }
    if start > now + Duration::days(365) {
        return Err("Schedule at most a year ahead.".into());
    }
    Ok(())
}

fn lasts_in_bounds(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), String> {
    if end <= start {
        return Err("End after the start.".into());
    }
    if end - start > Duration::hours(12) {
        return Err("Sessions last at most 12 hours.".into());
    }
    Ok(())
}
