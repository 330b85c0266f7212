//! Building blocks for Tandem's embedded TURN server.
//!
//! This crate holds the parts that need no sockets: the TURN REST API
//! credential scheme (coturn's `use-auth-secret`) and a STUN/TURN message
//! codec that never panics on untrusted input, and the STUN Binding answer
//! the server gives; and the server itself (`server`), which puts them on
//! sockets.

pub mod binding;
pub mod credentials;
pub mod server;
pub mod stun;
