//! Data between clients and peers: Send indications and ChannelData from
//! clients, Data indications and ChannelData towards them, each admitted by
//! the allocation's permissions and bandwidth budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Server;
use crate::server::allocation::{Allocation, State};
use crate::server::link::ClientKey;
use crate::stun::{Attribute, Class, Message, MessageBuilder, Method, channel};

impl Server {
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
    pub(super) async fn on_send(&self, message: &Message, client: ClientKey) {
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
    pub(in crate::server) async fn on_channel_data(&self, frame: &[u8], client: ClientKey) {
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
    pub(super) async fn relay_to_client(self: Arc<Self>, allocation: Arc<Allocation>) {
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
