//! Attacks on the embedded TURN server, performed over real sockets against
//! a running server (issue 18), each asserting the defended behaviour.

mod client;
mod peers;
mod quotas;
mod tcp;
