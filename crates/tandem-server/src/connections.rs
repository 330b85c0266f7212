//! The HTTP listener's accept loop, with bounds on what a stranger can open.
//!
//! `axum::serve` has no cap on connections and no deadline on request
//! headers, so a few hundred half-sent requests used to exhaust the file
//! descriptors and take `/healthz` down with them. Here, as in mini-redis's
//! server: a semaphore caps open connections, a per-IP count keeps one
//! address from taking the whole budget, and hyper's header-read timeout
//! closes a connection that has not sent a complete request head in time,
//! whether it is new, slow, or idle between keep-alive requests. The cap is
//! held by the socket itself ([`Counted`]), so an upgraded WebSocket keeps
//! counting until it closes.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tandem_core::Shutdown;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt;

/// Bounds of the HTTP listener.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections (WebSockets included) the instance accepts at most.
    pub max: usize,
    /// Open connections one client IP may hold (`None`: no per-IP cap,
    /// for a deployment behind a proxy that enforces its own).
    pub per_ip: Option<usize>,
    /// Longest wait for a complete request head: on a new connection, on a
    /// slow one, and between requests on a kept-alive one.
    pub header_timeout: Duration,
    /// How long shutdown waits for open requests to finish.
    pub drain_timeout: Duration,
}

/// Connections open per client IP.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    fn enter(self: &Arc<Self>, ip: IpAddr, cap: Option<usize>) -> Option<IpSlot> {
        let Some(cap) = cap else {
            return Some(IpSlot(None));
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(IpSlot(Some((self.clone(), ip))))
    }
}

/// One connection's place in its IP's count, given back on drop.
struct IpSlot(Option<(Arc<PerIp>, IpAddr)>);

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some((per_ip, ip)) = &self.0 {
            let mut open = per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = open.get_mut(ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(ip);
                }
            }
        }
    }
}

/// A socket that holds its connection permits for as long as it is open,
/// through an upgrade to a WebSocket too.
struct Counted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: IpSlot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Raises this process's open-file limit to the hard limit and returns the
/// connection cap that leaves room below it for databases, files and TURN.
pub fn fit_to_file_limit(wanted: usize) -> usize {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            let room = usize::try_from(files.saturating_sub(512)).unwrap_or(usize::MAX);
            if room < wanted {
                tracing::warn!(
                    open_files = files,
                    connections = room.max(64),
                    "the open-file limit caps HTTP connections below TANDEM_MAX_CONNECTIONS"
                );
            }
            wanted.min(room.max(64))
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not read the open-file limit");
            wanted
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` fires,
/// then lets open requests finish (up to the drain timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    let permits = Arc::new(Semaphore::new(limits.max));
    let per_ip = Arc::new(PerIp::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let Some(counted) = admit(tcp, peer, &permits, &per_ip, &limits) else {
            continue;
        };
        let router = router.clone();
        let (http, shutdown) = (http.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let conn = http
                .serve_connection(TokioIo::new(counted), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Every open connection holds a permit: all back means all done.
    let all = u32::try_from(limits.max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutting down with connections still open");
    }
}

/// Takes a connection within the caps, or closes it at once (counted in
/// `tandem_http_connections_refused_total{reason}`).
fn admit(
    tcp: TcpStream,
    peer: SocketAddr,
    permits: &Arc<Semaphore>,
    per_ip: &Arc<PerIp>,
    limits: &ConnectionLimits,
) -> Option<Counted> {
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        metrics::counter!("tandem_http_connections_refused_total", "reason" => "total")
            .increment(1);
        return None;
    };
    let Some(slot) = per_ip.enter(peer.ip(), limits.per_ip) else {
        metrics::counter!("tandem_http_connections_refused_total", "reason" => "per_ip")
            .increment(1);
        return None;
    };
    // No Nagle: realtime frames and small responses leave at once instead
    // of waiting up to 40 ms for the previous segment's ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    Some(Counted {
        tcp,
        _permit: permit,
        _slot: slot,
    })
}
