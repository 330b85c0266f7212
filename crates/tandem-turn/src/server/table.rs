//! The server's table of relay ports: allocations by client, EVEN-PORT
//! reservations by token, and how many of both each user holds, so the
//! per-user and total quotas count every port a user keeps bound
//! (reservations included: otherwise Allocate with EVEN-PORT R followed by
//! a delete would hold one more port per round, past every quota).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::allocation::Allocation;
use super::link::ClientKey;
use crate::stun::Attribute;

/// A port held back for the second allocation of an RTP/RTCP pair; it
/// counts against its user's quota and the total until used or expired.
#[derive(Debug)]
pub(super) struct Reservation {
    /// The bound relay socket.
    pub(super) socket: std::net::UdpSocket,
    /// The user who reserved it.
    pub(super) user: String,
    /// When it is released unless redeemed.
    pub(super) expires: Instant,
}

/// Allocations and reservations; `per_user` counts both.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) allocations: HashMap<ClientKey, Arc<Allocation>>,
    pub(super) per_user: HashMap<String, usize>,
    pub(super) reservations: HashMap<[u8; 8], Reservation>,
}

/// Which quota an Allocate would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Over {
    /// The user's (486).
    User,
    /// The server's (508).
    Total,
}

impl Table {
    /// Relay ports held: allocations and reservations.
    fn held(&self) -> usize {
        self.allocations.len() + self.reservations.len()
    }

    /// Counts one more port for `user`.
    pub(super) fn charge(&mut self, user: &str) {
        *self.per_user.entry(user.to_owned()).or_insert(0) += 1;
    }

    /// Counts one port fewer for `user`.
    pub(super) fn uncharge(&mut self, user: &str) {
        if let Some(n) = self.per_user.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
    }

    /// Removes a reservation (redeemed or expired) and its charge.
    pub(super) fn take_reservation(&mut self, token: &[u8; 8]) -> Option<Reservation> {
        let reservation = self.reservations.remove(token)?;
        self.uncharge(&reservation.user);
        Some(reservation)
    }

    /// Whether `user` may take the relay ports an Allocate asks for: two
    /// with EVEN-PORT R, one otherwise, and none more when it redeems a
    /// RESERVATION-TOKEN (that port is counted already). `quotas` is (per
    /// user, total); 0 means no cap.
    pub(super) fn check_quotas(
        &self,
        user: &str,
        token: Option<&Attribute>,
        even: Option<&Attribute>,
        (user_quota, total_quota): (usize, usize),
    ) -> Result<(), Over> {
        let redeemed = match token {
            Some(Attribute::ReservationToken(t)) => self.reservations.get(t),
            _ => None,
        };
        let wanted = match even {
            Some(Attribute::EvenPort(true)) => 2,
            _ => 1,
        };
        let held = self.held() - usize::from(redeemed.is_some());
        if total_quota != 0 && held + wanted > total_quota {
            return Err(Over::Total);
        }
        let own = usize::from(redeemed.is_some_and(|r| r.user == user));
        let mine = self.per_user.get(user).copied().unwrap_or(0) - own;
        if user_quota != 0 && mine + wanted > user_quota {
            return Err(Over::User);
        }
        Ok(())
    }
}
