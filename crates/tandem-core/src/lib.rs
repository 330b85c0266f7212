//! Shared building blocks used by every Tandem subsystem.
//!
//! Kept deliberately tiny: a [`Clock`] so time-based rules (session timeouts,
//! rate windows) can be tested without sleeping, a [`Secret`] re-export so
//! configuration never prints credentials, and the [`Shutdown`] signal every
//! long-lived task listens to.

mod clock;
pub mod memory;
mod shutdown;

pub use clock::{Clock, ManualClock, SystemClock};
pub use secrecy::{ExposeSecret, SecretString};
pub use shutdown::Shutdown;
