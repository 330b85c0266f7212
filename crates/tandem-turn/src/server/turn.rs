//! The server's state and its answers: authentication, Allocate, Refresh,
//! CreatePermission, ChannelBind, Send and ChannelData from clients, Data
//! and ChannelData towards them, and expiry. Allocate is in `allocate.rs`,
//! the data paths in `relay.rs`.

mod allocate;
mod relay;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};

use super::TurnConfig;
use super::allocation::{Allocation, BindError};
use super::link::{ClientKey, Link};
use super::nonce::Nonces;
use super::policy::{PeerPolicy, Reach};
use super::table::Table;
use crate::binding;
use crate::credentials::{self, CredentialError};
use crate::stun::{Attribute, CHANNEL_MAX, CHANNEL_MIN, Class, Message, MessageBuilder, Method};

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
        // Credentials and nonces carry Unix times; the configured clock reads them.
        let now = u64::try_from(self.config.clock.now().timestamp()).unwrap_or(0);
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
}
