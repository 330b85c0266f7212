//! Allocate (RFC 8656 §7): the request's checks, quotas, relay ports
//! (EVEN-PORT and reservations) and the new allocation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::{Auth, Reply, Server, Stats};
use crate::server::allocation::{Allocation, NewAllocation};
use crate::server::link::{ClientKey, Link};
use crate::server::table::{Over, Reservation, Table};
use crate::server::udp_socket;
use crate::stun::{AddressFamily, Attribute, Class, Message};

/// Allocations last this long unless the client asks for longer (RFC 8656).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// A reserved port (EVEN-PORT with R) is held this long (RFC 8656 §7.2).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// Ports tried before giving up on finding a free relay port.
const PORT_ATTEMPTS: usize = 256;
/// UDP protocol number, the only REQUESTED-TRANSPORT served.
const UDP: u8 = 17;

impl Server {
    /// The lifetime a request asks for, within bounds; `None` for zero
    /// (end the allocation).
    pub(super) fn lifetime(&self, message: &Message) -> Option<Duration> {
        let requested = message.attributes.iter().find_map(|a| match a {
            Attribute::Lifetime(secs) => Some(Duration::from_secs(u64::from(*secs))),
            _ => None,
        });
        match requested {
            Some(Duration::ZERO) => None,
            Some(d) => Some(d.min(self.config.max_lifetime).max(DEFAULT_LIFETIME)),
            None => Some(DEFAULT_LIFETIME),
        }
    }

    /// An Allocate request: a relay for the client, or the error that says
    /// why not (RFC 8656 §7.2).
    pub(super) fn allocate(
        self: &Arc<Self>,
        message: &Message,
        client: ClientKey,
        link: &Link,
        auth: Auth,
    ) -> Reply {
        let key = Some(auth.key);
        let mut table = self.table();
        if let Some(existing) = table.allocations.get(&client) {
            return if existing.transaction == message.transaction_id {
                // A retransmission: the same answer, so the client's
                // retries cannot create or fail anything.
                Reply {
                    class: Class::Success,
                    attributes: self.allocate_attributes(
                        existing.relay_addr,
                        client,
                        existing.reservation,
                        existing.state().expires,
                    ),
                    key,
                }
            } else {
                Reply::error(437, "Allocation Mismatch", key)
            };
        }
        let (token, even) = match self.requested(message, key) {
            Ok(wanted) => wanted,
            Err(reply) => return reply,
        };
        let user = auth
            .username
            .split_once(':')
            .map_or(auth.username.as_str(), |(_, user)| user)
            .to_owned();
        let quotas = (self.config.user_quota, self.config.total_quota);
        match table.check_quotas(&user, token, even, quotas) {
            Ok(()) => {}
            Err(Over::User) => {
                Stats::refused("quota_user");
                return Reply::error(486, "Allocation Quota Reached", key);
            }
            Err(Over::Total) => {
                Stats::refused("quota_total");
                return Reply::error(508, "Insufficient Capacity", key);
            }
        }
        let Some(lifetime) = self.lifetime(message) else {
            return Reply::error(400, "Bad Request", key);
        };
        let now = Instant::now();
        let Some((socket, token)) = self.relay_socket(&mut table, &user, token, even, now) else {
            return Reply::error(508, "Insufficient Capacity", key);
        };
        let (relay, relay_addr) = match socket
            .local_addr()
            .and_then(|a| Ok((UdpSocket::from_std(socket)?, a)))
        {
            Ok(pair) => pair,
            Err(_) => return Reply::error(508, "Insufficient Capacity", key),
        };
        let attributes = self.allocate_attributes(relay_addr, client, token, now + lifetime);
        let allocation = Arc::new(Allocation::new(NewAllocation {
            link: link.clone(),
            username: auth.username,
            user: user.clone(),
            key: auth.key,
            relay: Arc::new(relay),
            relay_addr,
            transaction: message.transaction_id,
            reservation: token,
            lifetime,
            bytes_per_sec: self.config.bytes_per_sec,
        }));
        let task = tokio::spawn(self.clone().relay_to_client(allocation.clone()));
        allocation.attach(task.abort_handle());
        table.allocations.insert(client, allocation);
        table.charge(&user);
        self.stats.allocations.increment(1.0);
        self.stats.allocations_total.increment(1);
        Reply {
            class: Class::Success,
            attributes,
            key,
        }
    }

    /// The REQUESTED-TRANSPORT, address family and port options of an
    /// Allocate: its RESERVATION-TOKEN and EVEN-PORT attributes, if valid.
    fn requested<'m>(
        &self,
        message: &'m Message,
        key: Option<[u8; 16]>,
    ) -> Result<(Option<&'m Attribute>, Option<&'m Attribute>), Reply> {
        let find = |pick: fn(&Attribute) -> bool| message.attributes.iter().find(|a| pick(a));
        match find(|a| matches!(a, Attribute::RequestedTransport(_))) {
            Some(Attribute::RequestedTransport(UDP)) => {}
            Some(_) => return Err(Reply::error(442, "Unsupported Transport Protocol", key)),
            None => return Err(Reply::error(400, "Bad Request", key)),
        }
        let even = find(|a| matches!(a, Attribute::EvenPort(_)));
        let token = find(|a| matches!(a, Attribute::ReservationToken(_)));
        let family = find(|a| matches!(a, Attribute::RequestedAddressFamily(_)));
        if token.is_some() && (even.is_some() || family.is_some()) {
            return Err(Reply::error(400, "Bad Request", key));
        }
        let relay_family = if self.config.relay_ip.is_ipv4() {
            AddressFamily::V4
        } else {
            AddressFamily::V6
        };
        if let Some(Attribute::RequestedAddressFamily(f)) = family
            && *f != relay_family
        {
            return Err(Reply::error(440, "Address Family not Supported", key));
        }
        Ok((token, even))
    }

    /// The relay socket: a reserved one redeemed by `token`, an even port
    /// (holding the next one for a new reservation token if asked), or any
    /// free port. `None` when none is free.
    fn relay_socket(
        &self,
        table: &mut Table,
        user: &str,
        token: Option<&Attribute>,
        even: Option<&Attribute>,
        now: Instant,
    ) -> Option<(std::net::UdpSocket, Option<[u8; 8]>)> {
        let (socket, reserved) = match (token, even) {
            (Some(Attribute::ReservationToken(token)), _) => {
                (table.take_reservation(token)?.socket, None)
            }
            (_, Some(Attribute::EvenPort(reserve))) => self.bind_even(*reserve)?,
            _ => (self.bind_relay(|_| true)?, None),
        };
        let token = reserved.map(|socket| {
            let token: [u8; 8] = rand::random();
            table.reservations.insert(
                token,
                Reservation {
                    socket,
                    user: user.to_owned(),
                    expires: now + RESERVATION_LIFETIME,
                },
            );
            table.charge(user);
            token
        });
        Some((socket, token))
    }

    fn allocate_attributes(
        &self,
        relay_addr: SocketAddr,
        client: ClientKey,
        token: Option<[u8; 8]>,
        expires: Instant,
    ) -> Vec<Attribute> {
        let remaining = expires.saturating_duration_since(Instant::now()).as_secs();
        let mut attributes = vec![
            Attribute::XorRelayedAddress(SocketAddr::new(self.config.relay_ip, relay_addr.port())),
            Attribute::Lifetime(u32::try_from(remaining).unwrap_or(u32::MAX)),
            Attribute::XorMappedAddress(client.addr),
        ];
        if let Some(token) = token {
            attributes.push(Attribute::ReservationToken(token));
        }
        attributes
    }

    /// A relay socket on a free port in the range that satisfies `wanted`.
    fn bind_relay(&self, wanted: impl Fn(u16) -> bool) -> Option<std::net::UdpSocket> {
        let (low, high) = (
            *self.config.relay_ports.start(),
            *self.config.relay_ports.end(),
        );
        let span = usize::from(high - low) + 1;
        let start = rand::random_range(0..span);
        (0..span.min(PORT_ATTEMPTS))
            .map(|i| low + u16::try_from((start + i) % span).unwrap_or(0))
            .filter(|port| wanted(*port))
            .find_map(|port| udp_socket(SocketAddr::new(self.config.relay_ip, port)).ok())
    }

    /// EVEN-PORT: an even relay port, and with R also the next port held
    /// for a RESERVATION-TOKEN.
    fn bind_even(
        &self,
        reserve: bool,
    ) -> Option<(std::net::UdpSocket, Option<std::net::UdpSocket>)> {
        for _ in 0..PORT_ATTEMPTS {
            let even = self.bind_relay(|p| p % 2 == 0)?;
            if !reserve {
                return Some((even, None));
            }
            let port = even.local_addr().ok()?.port();
            if port < *self.config.relay_ports.end()
                && let Ok(odd) = udp_socket(SocketAddr::new(self.config.relay_ip, port + 1))
            {
                return Some((even, Some(odd)));
            }
        }
        None
    }
}
