//! The server's state and its answers: authentication, Allocate, Refresh,
//! CreatePermission, ChannelBind, Send and ChannelData from clients, Data
//! and ChannelData towards them, and expiry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge};
use tokio::net::UdpSocket;

use super::allocation::{Allocation, BindError, NewAllocation, State};
use super::link::{ClientKey, Link};
use super::nonce::Nonces;
use super::policy::{PeerPolicy, Reach};
use super::table::{Over, Reservation, Table};
use super::{TurnConfig, udp_socket};
use crate::binding;
use crate::credentials::{self, CredentialError};
use crate::stun::{
    AddressFamily, Attribute, CHANNEL_MAX, CHANNEL_MIN, Class, Message, MessageBuilder, Method,
    channel,
};

/// Allocations last this long unless the client asks for longer (RFC 8656).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// A reserved port (EVEN-PORT with R) is held this long (RFC 8656 §7.2).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// Ports tried before giving up on finding a free relay port.
const PORT_ATTEMPTS: usize = 256;
/// UDP protocol number, the only REQUESTED-TRANSPORT served.
const UDP: u8 = 17;

/// Metric handles, registered once so the packet paths only touch atomics.
struct Stats {
    allocations: Gauge,
    allocations_total: Counter,
    to_peer: Counter,
    to_client: Counter,
    over_bandwidth: Counter,
    no_permission: Counter,
    malformed: Counter,
}

impl Stats {
    fn new() -> Self {
        let relayed = |direction: &'static str| metrics::counter!("tandem_turn_relayed_bytes_total", "direction" => direction);
        let dropped = |reason: &'static str| metrics::counter!("tandem_turn_dropped_total", "reason" => reason);
        Self {
            allocations: metrics::gauge!("tandem_turn_allocations"),
            allocations_total: metrics::counter!("tandem_turn_allocations_total"),
            to_peer: relayed("to_peer"),
            to_client: relayed("to_client"),
            over_bandwidth: dropped("bandwidth"),
            no_permission: dropped("no_permission"),
            malformed: dropped("malformed"),
        }
    }

    fn auth_failure(reason: &'static str) {
        metrics::counter!("tandem_turn_auth_failures_total", "reason" => reason).increment(1);
    }

    fn refused(reason: &'static str) {
        metrics::counter!("tandem_turn_refused_total", "reason" => reason).increment(1);
    }
}

/// Who sent an authenticated request.
struct Auth {
    username: String,
    key: [u8; 16],
}

/// An answer to a request: class, attributes, and whether to sign it.
struct Reply {
    class: Class,
    attributes: Vec<Attribute>,
    key: Option<[u8; 16]>,
}

impl Reply {
    fn ok(attributes: Vec<Attribute>, key: [u8; 16]) -> Self {
        Self {
            class: Class::Success,
            attributes,
            key: Some(key),
        }
    }

    fn error(code: u16, reason: &str, key: Option<[u8; 16]>) -> Self {
        Self {
            class: Class::Error,
            attributes: vec![Attribute::ErrorCode {
                code,
                reason: reason.into(),
            }],
            key,
        }
    }

    fn with(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    fn encode(self, request: &Message) -> Vec<u8> {
        let mut b = MessageBuilder::new(request.method, self.class, request.transaction_id);
        let software = Attribute::Software(binding::SOFTWARE.into());
        for attribute in self.attributes.iter().chain(std::iter::once(&software)) {
            // Every attribute built here is far below the 64 KiB limit.
            let _ = b.add(attribute);
        }
        b.build(self.key.as_ref().map(|k| &k[..]), request.has_fingerprint())
            .unwrap_or_default()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The shared state of one TURN server.
pub(super) struct Server {
    config: TurnConfig,
    policy: PeerPolicy,
    nonces: Nonces,
    table: Mutex<Table>,
    stats: Stats,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub(super) fn new(config: TurnConfig) -> Self {
        let mut own: Vec<_> = [config.relay_ip, config.listen.ip()]
            .into_iter()
            .filter(|ip| !ip.is_unspecified())
            .collect();
        own.dedup();
        let policy = PeerPolicy {
            allow: config.allow_peers.clone(),
            own,
            relay_ports: config.relay_ports.clone(),
        };
        let nonces = Nonces::new(rand::random(), config.nonce_lifetime.as_secs().max(1));
        Self {
            config,
            policy,
            nonces,
            table: Mutex::new(Table::default()),
            stats: Stats::new(),
        }
    }

    pub(super) fn config(&self) -> &TurnConfig {
        &self.config
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, client: ClientKey) -> Option<Arc<Allocation>> {
        self.table().allocations.get(&client).cloned()
    }

    pub(super) fn has_allocation(&self, client: ClientKey) -> bool {
        self.table().allocations.contains_key(&client)
    }

    pub(super) fn allocation_count(&self) -> usize {
        self.table().allocations.len()
    }

    pub(super) fn reservation_count(&self) -> usize {
        self.table().reservations.len()
    }

    pub(super) fn malformed(&self) {
        self.stats.malformed.increment(1);
    }

    /// Ends `client`'s allocation, if any.
    pub(super) fn end(&self, client: ClientKey) {
        let mut table = self.table();
        if let Some(allocation) = table.allocations.remove(&client) {
            Self::release(&mut table, &allocation);
            self.stats.allocations.decrement(1.0);
        }
    }

    fn release(table: &mut Table, allocation: &Allocation) {
        allocation.stop();
        table.uncharge(&allocation.user);
    }

    /// Ends every allocation (shutdown).
    pub(super) fn end_all(&self) {
        let mut table = self.table();
        let all: Vec<_> = table.allocations.drain().map(|(_, a)| a).collect();
        for allocation in &all {
            Self::release(&mut table, allocation);
        }
        self.stats.allocations.decrement(all.len() as f64);
        table.reservations.clear();
        table.per_user.clear();
    }

    /// Every second: ends expired allocations and drops stale reservations.
    pub(super) async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut table = self.table();
            let expired: Vec<ClientKey> = table
                .allocations
                .iter()
                .filter(|(_, a)| a.state().expires <= now)
                .map(|(k, _)| *k)
                .collect();
            for client in expired {
                if let Some(allocation) = table.allocations.remove(&client) {
                    Self::release(&mut table, &allocation);
                    self.stats.allocations.decrement(1.0);
                }
            }
            let stale: Vec<[u8; 8]> = table
                .reservations
                .iter()
                .filter(|(_, r)| r.expires <= now)
                .map(|(token, _)| *token)
                .collect();
            for token in stale {
                table.take_reservation(&token);
            }
        }
    }

    /// One STUN message from a client; `true` when it was a request whose
    /// credentials checked out (the client has authenticated).
    pub(super) async fn on_stun(
        self: &Arc<Self>,
        raw: &[u8],
        client: ClientKey,
        link: &Link,
    ) -> bool {
        let Ok(message) = Message::decode(raw) else {
            self.malformed();
            return false;
        };
        match (message.method, message.class) {
            (Method::Binding, Class::Request) => {
                if let Some(answer) = binding::answer(raw, client.addr) {
                    link.send(answer).await;
                }
                false
            }
            (Method::Send, Class::Indication) => {
                self.on_send(&message, client).await;
                false
            }
            (
                Method::Allocate | Method::Refresh | Method::CreatePermission | Method::ChannelBind,
                Class::Request,
            ) => {
                let (reply, authenticated) = match self.on_request(raw, &message, client) {
                    Ok(auth) => (self.on_authenticated(&message, client, link, auth), true),
                    Err(reply) => (reply, false),
                };
                link.send(reply.encode(&message)).await;
                authenticated
            }
            _ => false,
        }
    }

    /// Checks a request's attributes and credentials.
    fn on_request(&self, raw: &[u8], message: &Message, client: ClientKey) -> Result<Auth, Reply> {
        let unknown = message.unknown_comprehension_required();
        if !unknown.is_empty() {
            return Err(Reply::error(420, "Unknown Attribute", None)
                .with(Attribute::UnknownAttributes(unknown)));
        }
        self.authenticate(raw, message, client)
    }

    /// Answers an authenticated request.
    fn on_authenticated(
        self: &Arc<Self>,
        message: &Message,
        client: ClientKey,
        link: &Link,
        auth: Auth,
    ) -> Reply {
        if message.method == Method::Allocate {
            return self.allocate(message, client, link, auth);
        }
        let Some(allocation) = self.lookup(client) else {
            return Reply::error(437, "Allocation Mismatch", Some(auth.key));
        };
        if allocation.username != auth.username {
            return Reply::error(441, "Wrong Credentials", Some(auth.key));
        }
        match message.method {
            Method::Refresh => self.refresh(message, client, &allocation),
            Method::CreatePermission => self.create_permission(message, &allocation),
            _ => self.channel_bind(message, &allocation),
        }
    }

    /// Long-term credential check (RFC 8489 §9.2.4) with REST-API
    /// usernames: 401 with a fresh nonce to start, 400 for missing parts,
    /// 438 for a stale or foreign nonce, 401 for expired, unknown-secret or
    /// badly signed requests.
    fn authenticate(
        &self,
        raw: &[u8],
        message: &Message,
        client: ClientKey,
    ) -> Result<Auth, Reply> {
        let now = unix_now();
        let challenge = |code, reason: &str| {
            Reply::error(code, reason, None)
                .with(Attribute::Realm(self.config.realm.clone()))
                .with(Attribute::Nonce(self.nonces.mint(client.addr, now)))
        };
        if !message.has_integrity() {
            return Err(challenge(401, "Unauthorized"));
        }
        let text =
            |pick: fn(&Attribute) -> Option<&String>| message.attributes.iter().find_map(pick);
        let username = text(|a| {
            if let Attribute::Username(s) = a {
                Some(s)
            } else {
                None
            }
        });
        let realm = text(|a| {
            if let Attribute::Realm(s) = a {
                Some(s)
            } else {
                None
            }
        });
        let nonce = text(|a| {
            if let Attribute::Nonce(s) = a {
                Some(s)
            } else {
                None
            }
        });
        let (Some(username), Some(realm), Some(nonce)) = (username, realm, nonce) else {
            Stats::auth_failure("incomplete");
            return Err(Reply::error(400, "Bad Request", None));
        };
        if !self.nonces.check(nonce, client.addr, now) {
            Stats::auth_failure("stale_nonce");
            return Err(challenge(438, "Stale Nonce"));
        }
        if *realm != self.config.realm {
            Stats::auth_failure("wrong_realm");
            return Err(challenge(401, "Unauthorized"));
        }
        let password = match credentials::verify(&self.config.secret, username, now) {
            Ok(password) => password,
            Err(e) => {
                Stats::auth_failure(match e {
                    CredentialError::Expired { .. } => "expired",
                    _ => "bad_username",
                });
                return Err(challenge(401, "Unauthorized"));
            }
        };
        let key = credentials::long_term_key(username, realm, &password);
        if !message.verify_integrity(raw, &key) {
            Stats::auth_failure("bad_integrity");
            return Err(challenge(401, "Unauthorized"));
        }
        Ok(Auth {
            username: username.clone(),
            key,
        })
    }

    /// The lifetime to grant for a request (RFC 8656 §7.2/§7.3): the
    /// requested one capped at the maximum, never below the default;
    /// `None` for an explicit 0 (delete).
    fn lifetime(&self, message: &Message) -> Option<Duration> {
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

    fn allocate(
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
        let find = |pick: fn(&Attribute) -> bool| message.attributes.iter().find(|a| pick(a));
        match find(|a| matches!(a, Attribute::RequestedTransport(_))) {
            Some(Attribute::RequestedTransport(UDP)) => {}
            Some(_) => return Reply::error(442, "Unsupported Transport Protocol", key),
            None => return Reply::error(400, "Bad Request", key),
        }
        let even = find(|a| matches!(a, Attribute::EvenPort(_)));
        let token = find(|a| matches!(a, Attribute::ReservationToken(_)));
        let family = find(|a| matches!(a, Attribute::RequestedAddressFamily(_)));
        if token.is_some() && (even.is_some() || family.is_some()) {
            return Reply::error(400, "Bad Request", key);
        }
        let relay_family = if self.config.relay_ip.is_ipv4() {
            AddressFamily::V4
        } else {
            AddressFamily::V6
        };
        if let Some(Attribute::RequestedAddressFamily(f)) = family
            && *f != relay_family
        {
            return Reply::error(440, "Address Family not Supported", key);
        }
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
        let (socket, reserved) = match (token, even) {
            (Some(Attribute::ReservationToken(token)), _) => match table.take_reservation(token) {
                Some(r) => (r.socket, None),
                None => return Reply::error(508, "Insufficient Capacity", key),
            },
            (_, Some(Attribute::EvenPort(reserve))) => match self.bind_even(*reserve) {
                Some(pair) => pair,
                None => return Reply::error(508, "Insufficient Capacity", key),
            },
            _ => match self.bind_relay(|_| true) {
                Some(socket) => (socket, None),
                None => return Reply::error(508, "Insufficient Capacity", key),
            },
        };
        let token = reserved.map(|socket| {
            let token: [u8; 8] = rand::random();
            table.reservations.insert(
                token,
                Reservation {
                    socket,
                    user: user.clone(),
                    expires: now + RESERVATION_LIFETIME,
                },
            );
            table.charge(&user);
            token
        });
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

    fn refresh(&self, message: &Message, client: ClientKey, allocation: &Allocation) -> Reply {
        let granted = match self.lifetime(message) {
            None => {
                self.end(client);
                0
            }
            Some(lifetime) => {
                allocation.state().expires = Instant::now() + lifetime;
                lifetime.as_secs()
            }
        };
        Reply::ok(
            vec![Attribute::Lifetime(
                u32::try_from(granted).unwrap_or(u32::MAX),
            )],
            allocation.key,
        )
    }

    /// Checks a peer for a permission: 443 for the wrong family, 403 for a
    /// denied range.
    fn peer_reach(&self, peer: SocketAddr, key: [u8; 16]) -> Result<Reach, Reply> {
        if peer.is_ipv4() != self.config.relay_ip.is_ipv4() {
            return Err(Reply::error(443, "Peer Address Family Mismatch", Some(key)));
        }
        match self.policy.reach(peer.ip()) {
            Reach::None => {
                Stats::refused("forbidden_peer");
                Err(Reply::error(403, "Forbidden", Some(key)))
            }
            reach => Ok(reach),
        }
    }

    fn create_permission(&self, message: &Message, allocation: &Allocation) -> Reply {
        let key = allocation.key;
        let mut peers = Vec::new();
        for attribute in &message.attributes {
            if let Attribute::XorPeerAddress(peer) = attribute {
                match self.peer_reach(*peer, key) {
                    Ok(reach) => peers.push((peer.ip(), reach)),
                    Err(reply) => return reply,
                }
            }
        }
        if peers.is_empty() {
            return Reply::error(400, "Bad Request", Some(key));
        }
        let now = Instant::now();
        let mut state = allocation.state();
        for (ip, reach) in peers {
            if !state.permit(ip, reach, now) {
                return Reply::error(508, "Insufficient Capacity", Some(key));
            }
        }
        Reply::ok(Vec::new(), key)
    }

    fn channel_bind(&self, message: &Message, allocation: &Allocation) -> Reply {
        let key = allocation.key;
        let number = message.attributes.iter().find_map(|a| match a {
            Attribute::ChannelNumber(n) => Some(*n),
            _ => None,
        });
        let peer = message.attributes.iter().find_map(|a| match a {
            Attribute::XorPeerAddress(p) => Some(*p),
            _ => None,
        });
        let (Some(number), Some(peer)) = (number, peer) else {
            return Reply::error(400, "Bad Request", Some(key));
        };
        if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&number) {
            return Reply::error(400, "Bad Request", Some(key));
        }
        let reach = match self.peer_reach(peer, key) {
            Ok(reach) => reach,
            Err(reply) => return reply,
        };
        let now = Instant::now();
        let mut state = allocation.state();
        match state.bind(number, peer, now) {
            Ok(()) if state.permit(peer.ip(), reach, now) => Reply::ok(Vec::new(), key),
            Ok(()) | Err(BindError::Full) => Reply::error(508, "Insufficient Capacity", Some(key)),
            Err(BindError::Conflict) => Reply::error(400, "Bad Request", Some(key)),
        }
    }

    /// Checks permission and budget for `len` bytes to or from `peer`, in
    /// the caller's one lock of the allocation's state.
    fn admit(&self, state: &mut State, peer: SocketAddr, len: usize, now: Instant) -> bool {
        if !state.permits(peer, &self.config.relay_ports, now) {
            self.stats.no_permission.increment(1);
            return false;
        }
        if !state.spend(len, now) {
            self.stats.over_bandwidth.increment(1);
            return false;
        }
        true
    }

    async fn send_to_peer(&self, allocation: &Allocation, peer: SocketAddr, data: &[u8]) {
        if allocation.relay.send_to(data, peer).await.is_ok() {
            self.stats.to_peer.increment(data.len() as u64);
        }
    }

    /// A Send indication: data for a peer with a permission.
    async fn on_send(&self, message: &Message, client: ClientKey) {
        let Some(allocation) = self.lookup(client) else {
            return;
        };
        let peer = message.attributes.iter().find_map(|a| match a {
            Attribute::XorPeerAddress(p) => Some(*p),
            _ => None,
        });
        let data = message.attributes.iter().find_map(|a| match a {
            Attribute::Data(d) => Some(d),
            _ => None,
        });
        if let (Some(peer), Some(data)) = (peer, data) {
            let admitted = self.admit(&mut allocation.state(), peer, data.len(), Instant::now());
            if admitted {
                self.send_to_peer(&allocation, peer, data).await;
            }
        }
    }

    /// A ChannelData frame from a client: data for the channel's peer.
    pub(super) async fn on_channel_data(&self, frame: &[u8], client: ClientKey) {
        let Ok((number, data)) = channel::parse(frame) else {
            self.malformed();
            return;
        };
        let Some(allocation) = self.lookup(client) else {
            return;
        };
        let peer = {
            let now = Instant::now();
            let mut state = allocation.state();
            match state.channel_peer(number, now) {
                Some(peer) if self.admit(&mut state, peer, data.len(), now) => Some(peer),
                _ => None,
            }
        };
        if let Some(peer) = peer {
            self.send_to_peer(&allocation, peer, data).await;
        }
    }

    /// The allocation's relay loop: datagrams from permitted peers go to the
    /// client as ChannelData (when a channel is bound) or Data indications.
    async fn relay_to_client(self: Arc<Self>, allocation: Arc<Allocation>) {
        let mut buf = vec![0u8; 65_536];
        let pad = allocation.link.pads();
        loop {
            let Ok((n, peer)) = allocation.relay.recv_from(&mut buf).await else {
                // An ICMP error report for one peer; keep serving the rest.
                tokio::task::yield_now().await;
                continue;
            };
            let data = &buf[..n];
            let number = {
                let now = Instant::now();
                let mut state = allocation.state();
                if !self.admit(&mut state, peer, n, now) {
                    continue;
                }
                state.peer_channel(peer, now)
            };
            let frame = match number {
                Some(number) => channel::encode(number, data, pad).ok(),
                None => {
                    let mut b =
                        MessageBuilder::new(Method::Data, Class::Indication, rand::random());
                    let built = b
                        .add(&Attribute::XorPeerAddress(peer))
                        .and_then(|b| b.add(&Attribute::Data(data.to_vec())))
                        .is_ok();
                    built.then(|| b.build(None, false).ok()).flatten()
                }
            };
            if let Some(frame) = frame {
                allocation.link.send(frame).await;
                self.stats.to_client.increment(n as u64);
            }
        }
    }
}
