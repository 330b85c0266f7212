//! TURN over TCP (RFC 8656 §12.5 framing) with the bounds a stranger's
//! connection needs: a deadline to authenticate, an idle timeout while no
//! allocation holds the connection open, a cap per client IP, and a global
//! cap that, when reached, makes room by closing the oldest connection that
//! has not authenticated yet. Trickling one byte at a time therefore holds a
//! connection for at most the authentication deadline, one address holds at
//! most its share, and honest clients (who authenticate within a round trip
//! or two) still get in while the table is full of an attacker's sockets.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

use super::link::{ClientKey, Link, Transport};
use super::turn::Server;
use crate::stun::{PacketKind, frame_len, packet_kind};

/// Largest frame a TCP client may send: a maximal STUN message.
const MAX_FRAME: usize = 20 + 65_535;

/// Why a connection was closed by the server (a metric label).
fn closed(reason: &'static str) {
    metrics::counter!("tandem_turn_tcp_closed_total", "reason" => reason).increment(1);
}

fn refused(reason: &'static str) {
    metrics::counter!("tandem_turn_refused_total", "reason" => reason).increment(1);
}

/// Who holds TCP connections, and which of them have not authenticated.
#[derive(Debug, Default)]
struct Table {
    next: u64,
    /// Live connections by id, with their client IP.
    live: HashMap<u64, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections yet to authenticate, oldest first, with the handle that
    /// closes them.
    pending: BTreeMap<u64, Option<AbortHandle>>,
}

impl Table {
    fn forget(&mut self, id: u64) {
        self.pending.remove(&id);
        let Some(ip) = self.live.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Closes the oldest unauthenticated connection; `false` if none.
    fn evict_oldest_pending(&mut self) -> bool {
        let Some((id, handle)) = self.pending.pop_first() else {
            return false;
        };
        if let Some(handle) = handle {
            handle.abort();
        }
        self.forget(id);
        closed("evicted");
        true
    }
}

/// Admission of TCP connections.
#[derive(Debug)]
pub(super) struct Gate {
    per_ip: usize,
    max: usize,
    table: Mutex<Table>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The client's IP holds its share already.
    PerIp,
    /// The server holds its maximum, all of it authenticated.
    Full,
}

impl Gate {
    /// A gate allowing `per_ip` connections per address (0: no cap) and
    /// `max` in all.
    pub(super) fn new(per_ip: usize, max: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip`, closing the oldest unauthenticated
    /// one if the server is full.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let mut table = self.table();
        if self.per_ip != 0 && table.per_ip.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Err(Refusal::PerIp);
        }
        if table.live.len() >= self.max && !table.evict_oldest_pending() {
            return Err(Refusal::Full);
        }
        let id = table.next;
        table.next += 1;
        table.live.insert(id, ip);
        *table.per_ip.entry(ip).or_insert(0) += 1;
        table.pending.insert(id, None);
        Ok(Ticket {
            gate: self.clone(),
            id,
        })
    }

    /// Connections held now.
    pub(super) fn len(&self) -> usize {
        self.table().live.len()
    }

    /// Records how to close connection `id` should it need evicting (a
    /// no-op once it has authenticated or ended).
    fn attach(&self, id: u64, handle: AbortHandle) {
        if let Some(slot) = self.table().pending.get_mut(&id) {
            *slot = Some(handle);
        }
    }
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Ticket {
    gate: Arc<Gate>,
    id: u64,
}

impl Ticket {
    /// The connection authenticated: it can no longer be evicted.
    fn authenticated(&self) {
        self.gate.table().pending.remove(&self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.table().forget(self.id);
    }
}

/// Ends a client's allocation however its connection task ends (also when
/// it is aborted by an eviction or a shutdown).
struct EndOnDrop<'a>(&'a Server, ClientKey);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.end(self.1);
    }
}

/// Accepts TCP clients for as long as the server runs.
pub(super) async fn serve(server: Arc<Server>, listener: TcpListener, gate: Arc<Gate>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::warn!(error = %e, "TURN: accepting a TCP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let ticket = match gate.admit(from.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                refused(match refusal {
                    Refusal::PerIp => "tcp_per_ip",
                    Refusal::Full => "tcp_total",
                });
                tracing::debug!(%from, ?refusal, "TURN: refusing a TCP connection");
                continue;
            }
        };
        let id = ticket.id;
        let server = server.clone();
        let task = tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            serve_connection(&server, stream, from, &ticket).await;
            drop(ticket);
        });
        gate.attach(id, task.abort_handle());
    }
}

/// One TCP client: frames in (STUN or ChannelData), and out through the
/// shared write half. Closed when the client has not authenticated within
/// the deadline, or has no allocation and sent no complete frame within the
/// idle timeout.
async fn serve_connection(
    server: &Arc<Server>,
    stream: TcpStream,
    from: SocketAddr,
    ticket: &Ticket,
) {
    let client = ClientKey {
        transport: Transport::Tcp,
        addr: from,
    };
    let _end = EndOnDrop(server, client);
    let (auth_timeout, idle_timeout) = (
        server.config().tcp_auth_timeout,
        server.config().tcp_idle_timeout,
    );
    let (mut reader, writer) = stream.into_split();
    let link = Link::Stream(Arc::new(tokio::sync::Mutex::new(writer)));
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let auth_deadline = Instant::now() + auth_timeout;
    let mut authenticated = false;
    let mut last_frame = Instant::now();
    'connection: loop {
        let idle_deadline = last_frame + idle_timeout;
        let deadline = if authenticated {
            idle_deadline
        } else {
            idle_deadline.min(auth_deadline)
        };
        let n = match timeout_at(deadline, reader.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) if authenticated && server.has_allocation(client) => {
                last_frame = Instant::now();
                continue;
            }
            Err(_) => {
                closed(if authenticated || idle_deadline <= auth_deadline {
                    "idle"
                } else {
                    "auth_timeout"
                });
                break;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some(len) = buf.get(at..).and_then(frame_len) {
            if len > MAX_FRAME {
                break 'connection;
            }
            let Some(frame) = buf.get(at..at + len) else {
                break;
            };
            match packet_kind(frame) {
                Some(PacketKind::Stun) => {
                    if server.on_stun(frame, client, &link).await && !authenticated {
                        authenticated = true;
                        ticket.authenticated();
                    }
                }
                Some(PacketKind::ChannelData) => server.on_channel_data(frame, client).await,
                None => break 'connection,
            }
            at += len;
        }
        if at > 0 {
            last_frame = Instant::now();
        }
        if buf.len() - at >= 4 && buf.get(at..).and_then(frame_len).is_none() {
            server.malformed();
            break; // not STUN, not ChannelData: the stream is out of sync
        }
        buf.drain(..at);
    }
}
