//! How the server reaches a client: a UDP address on the shared listening
//! socket, or the write half of the client's TCP connection, written to
//! directly by whichever task has a frame (no hop through a writer task).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

/// A TCP client that takes longer than this to accept one frame loses it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The transport a client talks to the server over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (one connection per client).
    Tcp,
}

/// A client's 5-tuple as the server sees it (the server side is implied by
/// the transport: one listener each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// Transport protocol.
    pub transport: Transport,
    /// The client's (server-reflexive) address.
    pub addr: SocketAddr,
}

/// Where to send packets for one client.
#[derive(Debug, Clone)]
pub enum Link {
    /// Datagrams from the listening socket.
    Udp(Arc<UdpSocket>, SocketAddr),
    /// The connection's write half.
    Stream(Arc<Mutex<OwnedWriteHalf>>),
}

impl Link {
    /// Sends one STUN message or ChannelData frame. Delivery is best effort,
    /// as relayed UDP is: a closed connection or a client that stops reading
    /// loses it.
    pub async fn send(&self, frame: Vec<u8>) {
        match self {
            Self::Udp(socket, to) => {
                let _ = socket.send_to(&frame, to).await;
            }
            Self::Stream(writer) => {
                let mut writer = writer.lock().await;
                let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&frame)).await;
            }
        }
    }

    /// Whether ChannelData must be padded to 4 bytes (stream transports).
    pub fn pads(&self) -> bool {
        matches!(self, Self::Stream(_))
    }
}
