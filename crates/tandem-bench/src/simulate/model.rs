//! The load model: how a day of a study community turns into arrivals and
//! sessions, and what one session does.
//!
//! Capacity is decided by the peak hour, so that is what a step replays:
//! sessions arrive as a Poisson process at the peak hour's rate (DAU ×
//! sessions per user × peak-hour share / 3600 s), multiplied by the speed;
//! every pause inside a session is divided by the speed. At 10× a session's
//! pauses are a tenth as long and ten times as many sessions start each
//! second, so the same number are open at once and requests come ten times
//! as fast.

use std::time::Duration;

/// Parameters of the simulated community.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Community {
    /// Daily active users.
    pub dau: u32,
    /// Share of a day's sessions that start in the busiest hour.
    pub peak_share: f64,
    /// Sessions (app visits) per user per day.
    pub sessions_per_user: f64,
    /// Time compression (1 = real pace).
    pub speed: f64,
}

impl Community {
    /// Sessions starting per second during the peak hour, at this speed.
    pub fn arrivals_per_second(&self) -> f64 {
        f64::from(self.dau) * self.sessions_per_user * self.peak_share / 3600.0 * self.speed
    }

    /// Sessions open at once in steady state (Little's law).
    pub fn concurrent_sessions(&self) -> f64 {
        self.arrivals_per_second() * SCRIPT_SECONDS / self.speed
    }

    /// A pause of `seconds` at real pace, at this speed.
    pub fn pause(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds / self.speed).max(0.0))
    }
}

/// What a session does; each step's latency is recorded under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `POST /api/auth/login` (argon2 verify).
    SignIn,
    /// `POST /api/analytics/events`.
    PageView,
    /// `GET /api/users/me`, `GET /api/achievements`.
    Profile,
    /// `POST /api/partners/matching` (cached, or a queued job).
    Matching,
    /// `GET /api/study-sessions`, `POST …/join`, `GET …/{id}`, `GET …/messages`.
    RoomJoin,
    /// `GET /api/webrtc/ice-servers`.
    Ice,
    /// `GET /cdn-cgi/image/…` of an avatar.
    Image,
    /// WebSocket connect and channel join (until the join is acknowledged).
    ChatJoin,
    /// A typing indicator broadcast on the room channel.
    Typing,
    /// `POST /api/study-sessions/{id}/messages` (persisted and pushed live).
    ChatSend,
    /// `POST /api/ai/progress-analysis` (a queued job).
    Ai,
    /// `POST /api/study-sessions/{id}/leave`.
    RoomLeave,
}

impl Action {
    /// Every action, in report order.
    pub const ALL: [Self; 12] = [
        Self::SignIn,
        Self::PageView,
        Self::Profile,
        Self::Matching,
        Self::RoomJoin,
        Self::Ice,
        Self::Image,
        Self::ChatJoin,
        Self::Typing,
        Self::ChatSend,
        Self::Ai,
        Self::RoomLeave,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::PageView => "page-view",
            Self::Profile => "profile",
            Self::Matching => "matching",
            Self::RoomJoin => "room-join",
            Self::Ice => "ice",
            Self::Image => "image",
            Self::ChatJoin => "chat-join",
            Self::Typing => "typing",
            Self::ChatSend => "chat-send",
            Self::Ai => "ai",
            Self::RoomLeave => "room-leave",
        }
    }
}

/// One step of the session script: do something, then pause (real-pace seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Sign in again, with this probability (otherwise the cookie is reused).
    SignIn(f64),
    /// Report a page view of this path.
    PageView(&'static str),
    /// Load the profile page's data.
    Profile,
    /// Ask for partner suggestions.
    Matching,
    /// Pick a room and join it, opening its chat channel.
    JoinRoom,
    /// Fetch ICE servers for the room's video call.
    Ice,
    /// Load this many avatars.
    Images(u32),
    /// Type (a typing broadcast), then send a chat message.
    Chat,
    /// Queue an AI task, with this probability.
    Ai(f64),
    /// Leave the room (closing its channel).
    LeaveRoom,
    /// Wait this many real-pace seconds.
    Pause(f64),
}

/// A session: an app visit of about four minutes at real pace.
pub const SCRIPT: &[Step] = &[
    Step::SignIn(0.25),
    Step::PageView("/profile"),
    Step::Profile,
    Step::Pause(20.0),
    Step::PageView("/partners"),
    Step::Matching,
    Step::Pause(30.0),
    Step::PageView("/rooms"),
    Step::JoinRoom,
    Step::Ice,
    Step::Images(3),
    Step::Pause(15.0),
    Step::Chat,
    Step::Pause(40.0),
    Step::Chat,
    Step::Pause(40.0),
    Step::Chat,
    Step::Ai(0.2),
    Step::Pause(60.0),
    Step::LeaveRoom,
    Step::PageView("/achievements"),
    Step::Profile,
    Step::Pause(30.0),
];

/// Real-pace length of [`SCRIPT`].
pub const SCRIPT_SECONDS: f64 = 235.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_length_is_its_pauses() {
        let pauses: f64 = SCRIPT
            .iter()
            .map(|s| if let Step::Pause(p) = s { *p } else { 0.0 })
            .sum();
        assert_eq!(pauses, SCRIPT_SECONDS);
    }

    #[test]
    fn speed_multiplies_arrivals_not_concurrency() {
        let one = Community {
            dau: 20_000,
            peak_share: 0.15,
            sessions_per_user: 2.0,
            speed: 1.0,
        };
        let ten = Community {
            speed: 10.0,
            ..one.clone()
        };
        assert!((one.arrivals_per_second() - 20_000.0 * 2.0 * 0.15 / 3600.0).abs() < 1e-9);
        assert!((ten.arrivals_per_second() / one.arrivals_per_second() - 10.0).abs() < 1e-9);
        assert!((ten.concurrent_sessions() - one.concurrent_sessions()).abs() < 1e-9);
        assert_eq!(ten.pause(30.0), Duration::from_secs(3));
    }
}
