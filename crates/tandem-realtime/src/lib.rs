//! The realtime server's core (roadmap Tier 2 §4): channels, broadcast and
//! presence, independent of the transport. The WebSocket endpoint speaking
//! Supabase Realtime's protocol sits on top of [`hub::Hub`].

pub mod access;
pub mod backplane;
pub mod batch;
pub mod hub;
pub mod limit;
pub mod presence;
pub mod protocol;
pub mod socket;
pub mod token;

/// Identifies one client connection within an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);
