//! One TURN allocation: its relay socket, permissions, channel bindings,
//! lifetime and bandwidth budget (RFC 8656 §2.2, §9, §12).
//!
//! All mutable state sits behind one short-held mutex; the hot paths take it
//! once per packet to check a permission, look up a channel and spend
//! bandwidth, then send outside the lock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::link::Link;
use super::policy::Reach;

/// How long a permission lives without refresh (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lives without refresh (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel binding expires its number and peer stay reserved this
/// long so stale packets cannot reach a new binding (RFC 8656 §12).
const CHANNEL_QUARANTINE: Duration = Duration::from_secs(300);
/// Permissions one allocation may hold (a call needs a handful).
pub const MAX_PERMISSIONS: usize = 64;
/// Channels one allocation may bind.
pub const MAX_CHANNELS: usize = 64;

/// A token bucket: `rate` bytes per second, bursts up to one second's worth.
#[derive(Debug)]
pub struct Bandwidth {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bandwidth {
    /// A bucket for `bytes_per_sec`; 0 means unlimited.
    pub fn new(bytes_per_sec: u64, now: Instant) -> Self {
        let rate = bytes_per_sec as f64;
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Spends `bytes` if the budget allows; `false` means drop the packet.
    pub fn spend(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        let cost = bytes as f64;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Permission {
    expires: Instant,
    reach: Reach,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    peer: SocketAddr,
    expires: Instant,
}

/// The mutable part of an allocation.
#[derive(Debug)]
pub struct State {
    /// When the allocation ends unless refreshed.
    pub expires: Instant,
    permissions: HashMap<IpAddr, Permission>,
    channels: HashMap<u16, Channel>,
    by_peer: HashMap<SocketAddr, u16>,
    bandwidth: Bandwidth,
}

/// Why a ChannelBind was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// The number or the peer is bound to something else (400).
    Conflict,
    /// Too many channels (508).
    Full,
}

impl State {
    /// Installs or refreshes a permission for `ip`; `false` when the table
    /// is full and `ip` is new.
    pub fn permit(&mut self, ip: IpAddr, reach: Reach, now: Instant) -> bool {
        self.permissions.retain(|_, p| p.expires > now);
        if self.permissions.len() >= MAX_PERMISSIONS && !self.permissions.contains_key(&ip) {
            return false;
        }
        self.permissions.insert(
            ip,
            Permission {
                expires: now + PERMISSION_LIFETIME,
                reach,
            },
        );
        true
    }

    /// Whether a live permission covers `peer` (its reach includes the port).
    pub fn permits(
        &self,
        peer: SocketAddr,
        relay_ports: &std::ops::RangeInclusive<u16>,
        now: Instant,
    ) -> bool {
        self.permissions
            .get(&peer.ip())
            .is_some_and(|p| p.expires > now && p.reach.permits(peer.port(), relay_ports))
    }

    /// Binds or refreshes `channel` to `peer`.
    pub fn bind(&mut self, channel: u16, peer: SocketAddr, now: Instant) -> Result<(), BindError> {
        let quarantined = |c: &Channel| c.expires + CHANNEL_QUARANTINE > now;
        self.channels.retain(|_, c| quarantined(c));
        self.by_peer.retain(|_, n| self.channels.contains_key(n));
        match (self.channels.get(&channel), self.by_peer.get(&peer)) {
            (Some(c), _) if c.peer != peer => return Err(BindError::Conflict),
            (_, Some(&n)) if n != channel => return Err(BindError::Conflict),
            (None, _) if self.channels.len() >= MAX_CHANNELS => return Err(BindError::Full),
            _ => {}
        }
        self.channels.insert(
            channel,
            Channel {
                peer,
                expires: now + CHANNEL_LIFETIME,
            },
        );
        self.by_peer.insert(peer, channel);
        Ok(())
    }

    /// The peer a live channel is bound to.
    pub fn channel_peer(&self, channel: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .get(&channel)
            .filter(|c| c.expires > now)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`, if any.
    pub fn peer_channel(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let n = *self.by_peer.get(&peer)?;
        self.channel_peer(n, now).map(|_| n)
    }

    /// Spends relay bandwidth; `false` means over budget.
    pub fn spend(&mut self, bytes: usize, now: Instant) -> bool {
        self.bandwidth.spend(bytes, now)
    }
}

/// A live allocation.
#[derive(Debug)]
pub struct Allocation {
    /// How to reach the client.
    pub link: Link,
    /// The TURN username that created it; later requests must use it too.
    pub username: String,
    /// The user id part of the username (for the per-user quota).
    pub user: String,
    /// The long-term key, to sign responses.
    pub key: [u8; 16],
    /// The relayed transport address handed to the client.
    pub relay_addr: SocketAddr,
    /// The relay socket.
    pub relay: Arc<UdpSocket>,
    /// The Allocate transaction, so retransmissions get the same answer.
    pub transaction: [u8; 12],
    /// The RESERVATION-TOKEN that answer carried, if any.
    pub reservation: Option<[u8; 8]>,
    state: Mutex<State>,
    task: Mutex<Option<AbortHandle>>,
}

/// Everything needed to create an [`Allocation`].
#[derive(Debug)]
pub struct NewAllocation {
    /// See [`Allocation::link`].
    pub link: Link,
    /// See [`Allocation::username`].
    pub username: String,
    /// See [`Allocation::user`].
    pub user: String,
    /// See [`Allocation::key`].
    pub key: [u8; 16],
    /// See [`Allocation::relay`].
    pub relay: Arc<UdpSocket>,
    /// See [`Allocation::relay_addr`].
    pub relay_addr: SocketAddr,
    /// See [`Allocation::transaction`].
    pub transaction: [u8; 12],
    /// See [`Allocation::reservation`].
    pub reservation: Option<[u8; 8]>,
    /// The granted lifetime.
    pub lifetime: Duration,
    /// Bytes per second this allocation may relay (0 = unlimited).
    pub bytes_per_sec: u64,
}

impl Allocation {
    /// Creates the allocation (its relay task is attached by the caller).
    pub fn new(n: NewAllocation) -> Self {
        let now = Instant::now();
        Self {
            link: n.link,
            username: n.username,
            user: n.user,
            key: n.key,
            relay_addr: n.relay_addr,
            relay: n.relay,
            transaction: n.transaction,
            reservation: n.reservation,
            state: Mutex::new(State {
                expires: now + n.lifetime,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                by_peer: HashMap::new(),
                bandwidth: Bandwidth::new(n.bytes_per_sec, now),
            }),
            task: Mutex::new(None),
        }
    }

    /// Locks the mutable state (poisoning is ignored: the state stays
    /// consistent between statements).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the relay task so [`Self::stop`] can end it.
    pub fn attach(&self, task: AbortHandle) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Stops relaying: the relay task ends and the socket closes.
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_refills_at_its_rate_and_caps_bursts() {
        let t0 = Instant::now();
        let mut b = Bandwidth::new(1000, t0);
        assert!(b.spend(1000, t0));
        assert!(!b.spend(1, t0), "burst is one second's worth");
        assert!(b.spend(500, t0 + Duration::from_millis(500)));
        assert!(!b.spend(100, t0 + Duration::from_millis(500)));
        assert!(b.spend(1000, t0 + Duration::from_secs(60)));
        assert!(
            !b.spend(1, t0 + Duration::from_secs(60)),
            "idle time does not bank more"
        );
        let mut unlimited = Bandwidth::new(0, t0);
        assert!(unlimited.spend(usize::MAX, t0));
    }

    fn state(now: Instant) -> State {
        State {
            expires: now,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            by_peer: HashMap::new(),
            bandwidth: Bandwidth::new(0, now),
        }
    }

    #[test]
    fn permissions_expire_and_respect_reach() {
        let now = Instant::now();
        let mut s = state(now);
        let ports = 50000..=50100;
        let peer: SocketAddr = "198.51.100.1:4000".parse().expect("addr");
        assert!(!s.permits(peer, &ports, now));
        assert!(s.permit(peer.ip(), Reach::Any, now));
        assert!(s.permits(peer, &ports, now));
        assert!(!s.permits(peer, &ports, now + PERMISSION_LIFETIME));
        let own: SocketAddr = "127.0.0.1:50010".parse().expect("addr");
        assert!(s.permit(own.ip(), Reach::RelayPorts, now));
        assert!(s.permits(own, &ports, now));
        assert!(!s.permits("127.0.0.1:6379".parse().expect("addr"), &ports, now));
    }

    #[test]
    fn permission_table_is_bounded() {
        let now = Instant::now();
        let mut s = state(now);
        for i in 0..MAX_PERMISSIONS {
            let ip = IpAddr::from([198, 51, 100, u8::try_from(i).expect("small")]);
            assert!(s.permit(ip, Reach::Any, now));
        }
        assert!(!s.permit(IpAddr::from([203, 0, 113, 1]), Reach::Any, now));
        assert!(
            s.permit(IpAddr::from([198, 51, 100, 0]), Reach::Any, now),
            "refresh"
        );
    }

    #[test]
    fn channels_bind_one_to_one() {
        let now = Instant::now();
        let mut s = state(now);
        let a: SocketAddr = "198.51.100.1:4000".parse().expect("addr");
        let b: SocketAddr = "198.51.100.2:4000".parse().expect("addr");
        assert_eq!(s.bind(0x4000, a, now), Ok(()));
        assert_eq!(s.bind(0x4000, a, now), Ok(()), "refresh");
        assert_eq!(s.bind(0x4000, b, now), Err(BindError::Conflict));
        assert_eq!(s.bind(0x4001, a, now), Err(BindError::Conflict));
        assert_eq!(s.bind(0x4001, b, now), Ok(()));
        assert_eq!(s.channel_peer(0x4001, now), Some(b));
        assert_eq!(s.peer_channel(a, now), Some(0x4000));
        let later = now + CHANNEL_LIFETIME;
        assert_eq!(s.channel_peer(0x4000, later), None, "expired");
        assert_eq!(
            s.bind(0x4000, b, later),
            Err(BindError::Conflict),
            "quarantined"
        );
    }
}
