//! Black-box tests of Tandem: real servers on port 0, real SQLite, and (for
#![allow(clippy::too_many_lines)] // a test reads top to bottom; production code stays under 80 lines
//! the distributed backends) the real PostgreSQL and Redis on this machine.
//! With `CI=true` a missing PostgreSQL/Redis fails the run; locally those
//! tests skip with a message.

mod helpers;

mod accounts;
mod analytics;
mod archive;
mod assets;
mod attacks;
mod bad_input;
mod cache;
mod conformance;
mod coturn;
mod images;
mod images_hostile;
mod images_pool;
mod jobs_api;
pub mod multi_instance;
mod queue;
mod realtime;
mod replicas;
mod rooms;
mod sessions;
mod store;
mod system;
mod turn;
mod webrtc;
