//! The embedded TURN server (RFC 8656 over RFC 8489 STUN): UDP and TCP
//! listeners on one port, long-term credential auth with REST-API
//! credentials whose expiry is enforced, stateless nonces, allocations with
//! permissions and channels, and the peer deny list, quotas and bandwidth cap
//! from [`TurnConfig`].
//!
//! `tandem serve` starts it when no external TURN server is configured, so
//! a one-machine install has working relay video with nothing else to run.

mod allocation;
mod link;
mod nonce;
pub mod policy;
mod turn;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;

use crate::stun::{PacketKind, frame_len, packet_kind};
use link::{ClientKey, Link, Transport};
use policy::Cidr;
use turn::Server;

/// The embedded server's settings.
#[derive(Clone)]
pub struct TurnConfig {
    /// Address for both the UDP and the TCP listener (port 0 picks one
    /// port free for both).
    pub listen: SocketAddr,
    /// Address relays bind to and advertise in XOR-RELAYED-ADDRESS.
    pub relay_ip: IpAddr,
    /// Ports relays may use.
    pub relay_ports: RangeInclusive<u16>,
    /// REALM of the long-term credentials.
    pub realm: String,
    /// The TURN REST API shared secret credentials are checked against.
    pub secret: Vec<u8>,
    /// Networks relays may reach despite the deny list (e.g. 127.0.0.1/32
    /// for tests with a local peer).
    pub allow_peers: Vec<Cidr>,
    /// Allocations one user may hold at once.
    pub user_quota: usize,
    /// Allocations the server holds at most.
    pub total_quota: usize,
    /// Bytes per second one allocation may relay, both directions together
    /// (0 = unlimited).
    pub bytes_per_sec: u64,
    /// How long a nonce stays valid.
    pub nonce_lifetime: Duration,
    /// Longest allocation lifetime a client may ask for.
    pub max_lifetime: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("listen", &self.listen)
            .field("relay_ip", &self.relay_ip)
            .field("relay_ports", &self.relay_ports)
            .field("realm", &self.realm)
            .field("secret", &"[redacted]")
            .field("allow_peers", &self.allow_peers)
            .field("user_quota", &self.user_quota)
            .field("total_quota", &self.total_quota)
            .field("bytes_per_sec", &self.bytes_per_sec)
            .finish_non_exhaustive()
    }
}

impl TurnConfig {
    /// Defaults around a secret: all interfaces on 3478, relays on the
    /// address [`detect_relay_ip`] finds, ports 49152–65535, 10 allocations
    /// per user, 1,000 in all, 1.25 MB/s (10 Mbit/s) each.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3478)),
            relay_ip: detect_relay_ip(),
            relay_ports: 49152..=65535,
            realm: "tandem".into(),
            secret,
            allow_peers: Vec::new(),
            user_quota: 10,
            total_quota: 1000,
            bytes_per_sec: 1_250_000,
            nonce_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// The address of the interface that routes to the internet, found without
/// sending anything (a UDP "connect" only picks a route); 127.0.0.1 when
/// there is none.
pub fn detect_relay_ip() -> IpAddr {
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A running server; dropping it stops it and ends every allocation.
#[derive(Debug)]
pub struct TurnServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    server: Arc<Server>,
    tasks: Vec<JoinHandle<()>>,
}

/// Socket buffer size asked of the kernel for the listener and relays (it
/// caps the request at `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Closes TCP connections that have no allocation after this long idle.
const IDLE_TCP: Duration = Duration::from_secs(30);
/// Largest frame a TCP client may send: a maximal STUN message.
const MAX_FRAME: usize = 20 + 65_535;

impl TurnServer {
    /// Binds the listeners and starts serving.
    pub async fn start(config: TurnConfig) -> io::Result<Self> {
        let (udp, tcp) = bind_listeners(config.listen)?;
        let udp = Arc::new(udp);
        let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
        let server = Arc::new(Server::new(config));
        let mut tasks = vec![tokio::spawn(server.clone().sweep())];
        let readers = std::thread::available_parallelism().map_or(1, usize::from);
        for _ in 0..readers {
            tasks.push(tokio::spawn(serve_udp(server.clone(), udp.clone())));
        }
        tasks.push(tokio::spawn(serve_tcp(server.clone(), tcp)));
        tracing::info!(%udp_addr, %tcp_addr, relay_ip = %server.config().relay_ip, "TURN server listening");
        Ok(Self {
            udp_addr,
            tcp_addr,
            server,
            tasks,
        })
    }

    /// The UDP listener's address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Live allocations.
    pub fn allocations(&self) -> usize {
        self.server.allocation_count()
    }

    /// Stops listening and ends every allocation.
    fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.server.end_all();
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP socket with large buffers, bound to `addr`.
pub(crate) fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// UDP and TCP listeners on the same port (for port 0, one free for both).
fn bind_listeners(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = udp_socket(listen)?;
        let port = udp.local_addr()?.port();
        let tcp = std::net::TcpListener::bind(SocketAddr::new(listen.ip(), port));
        match tcp {
            Ok(tcp) => {
                tcp.set_nonblocking(true)?;
                return Ok((UdpSocket::from_std(udp)?, TcpListener::from_std(tcp)?));
            }
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

async fn serve_udp(server: Arc<Server>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors surface here on some systems; they concern one
            // peer, never the listener.
            Err(_) => continue,
        };
        let packet = &buf[..n];
        let client = ClientKey {
            transport: Transport::Udp,
            addr: from,
        };
        match packet_kind(packet) {
            Some(PacketKind::Stun) => {
                let link = Link::Udp(socket.clone(), from);
                server.on_stun(packet, client, &link).await;
            }
            Some(PacketKind::ChannelData) => server.on_channel_data(packet, client).await,
            None => server.malformed(),
        }
    }
}

async fn serve_tcp(server: Arc<Server>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(
        server.config().total_quota.saturating_mul(2).max(16),
    ));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%from, "TURN: too many TCP connections; refusing one");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            serve_connection(&server, stream, from).await;
            drop(slot);
        });
    }
}

/// One TCP client: frames in (STUN or ChannelData, RFC 8656 §12.5), and
/// out through the shared write half.
async fn serve_connection(server: &Arc<Server>, stream: TcpStream, from: SocketAddr) {
    let client = ClientKey {
        transport: Transport::Tcp,
        addr: from,
    };
    let (mut reader, writer) = stream.into_split();
    let link = Link::Stream(Arc::new(Mutex::new(writer)));
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'connection: loop {
        let read = tokio::time::timeout(IDLE_TCP, reader.read(&mut chunk)).await;
        let n = match read {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) if server.has_allocation(client) => continue,
            Err(_) => break,
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
                Some(PacketKind::Stun) => server.on_stun(frame, client, &link).await,
                Some(PacketKind::ChannelData) => server.on_channel_data(frame, client).await,
                None => break 'connection,
            }
            at += len;
        }
        if buf.len() - at >= 4 && buf.get(at..).and_then(frame_len).is_none() {
            server.malformed();
            break; // not STUN, not ChannelData: the stream is out of sync
        }
        buf.drain(..at);
    }
    server.end(client);
}
