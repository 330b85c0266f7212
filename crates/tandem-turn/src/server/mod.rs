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
mod table;
mod tcp;
mod turn;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tandem_core::{Clock, SystemClock};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::stun::{PacketKind, packet_kind};
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
    /// Allocations one user may hold at once, EVEN-PORT reservations
    /// included (0 = no cap).
    pub user_quota: usize,
    /// Allocations the server holds at most, EVEN-PORT reservations
    /// included (0 = no cap).
    pub total_quota: usize,
    /// Bytes per second one allocation may relay, both directions together
    /// (0 = unlimited).
    pub bytes_per_sec: u64,
    /// How long a nonce stays valid.
    pub nonce_lifetime: Duration,
    /// Longest allocation lifetime a client may ask for.
    pub max_lifetime: Duration,
    /// Time a TCP client has from connecting to its first authenticated
    /// request; then the connection is closed.
    pub tcp_auth_timeout: Duration,
    /// A TCP connection without an allocation is closed after this long
    /// without a complete message.
    pub tcp_idle_timeout: Duration,
    /// TCP connections one client IP may hold (0 = no cap).
    pub tcp_max_per_ip: usize,
    /// TCP connections the server holds at most; when full, the oldest
    /// one that has not authenticated makes room for a newcomer.
    pub tcp_max_connections: usize,
    /// What credential expiry and nonce lifetimes are checked against (the
    /// clock that minted the credentials, so tests can move it).
    pub clock: Arc<dyn Clock>,
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
            .field("tcp_auth_timeout", &self.tcp_auth_timeout)
            .field("tcp_idle_timeout", &self.tcp_idle_timeout)
            .field("tcp_max_per_ip", &self.tcp_max_per_ip)
            .field("tcp_max_connections", &self.tcp_max_connections)
            .finish_non_exhaustive()
    }
}

impl TurnConfig {
    /// Defaults around a secret: all interfaces on 3478, relays on the
    /// address [`detect_relay_ip`] finds, ports 49152–65535, 10 allocations
    /// per user, 1,000 in all, 1.25 MB/s (10 Mbit/s) each; TCP clients
    /// authenticate within 10 s, idle out after 30 s without an allocation,
    /// and hold at most 128 connections per IP and 2,000 in all.
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
            tcp_auth_timeout: Duration::from_secs(10),
            tcp_idle_timeout: Duration::from_secs(30),
            tcp_max_per_ip: 128,
            tcp_max_connections: 2000,
            clock: Arc::new(SystemClock),
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
    gate: Arc<tcp::Gate>,
    tasks: Vec<JoinHandle<()>>,
}

/// Socket buffer size asked of the kernel for the listener and relays (it
/// caps the request at `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

impl TurnServer {
    /// Binds the listeners and starts serving.
    pub async fn start(config: TurnConfig) -> io::Result<Self> {
        let (udp, listener) = bind_listeners(config.listen, &config.relay_ports)?;
        let udp = Arc::new(udp);
        let (udp_addr, tcp_addr) = (udp.local_addr()?, listener.local_addr()?);
        let gate = tcp::Gate::new(config.tcp_max_per_ip, config.tcp_max_connections);
        let server = Arc::new(Server::new(config));
        let mut tasks = vec![tokio::spawn(server.clone().sweep())];
        let readers = std::thread::available_parallelism().map_or(1, usize::from);
        for _ in 0..readers {
            tasks.push(tokio::spawn(serve_udp(server.clone(), udp.clone())));
        }
        tasks.push(tokio::spawn(tcp::serve(
            server.clone(),
            listener,
            gate.clone(),
        )));
        tracing::info!(%udp_addr, %tcp_addr, relay_ip = %server.config().relay_ip, "TURN server listening");
        Ok(Self {
            udp_addr,
            tcp_addr,
            server,
            gate,
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

    /// Ports held for EVEN-PORT reservations.
    pub fn reservations(&self) -> usize {
        self.server.reservation_count()
    }

    /// Open TCP connections.
    pub fn tcp_connections(&self) -> usize {
        self.gate.len()
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

/// UDP and TCP listeners on the same port (for port 0, one free for both
/// and outside the relay ports, which a permission to the relay's own
/// address reaches).
fn bind_listeners(
    listen: SocketAddr,
    relay_ports: &RangeInclusive<u16>,
) -> io::Result<(UdpSocket, TcpListener)> {
    if relay_ports.contains(&listen.port()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the listen port lies inside the relay port range",
        ));
    }
    let mut last = None;
    for _ in 0..64 {
        let udp = udp_socket(listen)?;
        let port = udp.local_addr()?.port();
        if relay_ports.contains(&port) {
            last = Some(io::Error::other("port 0 picked a relay port"));
            continue;
        }
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
