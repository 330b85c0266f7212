//! How the server reaches a client: a UDP address on the shared listening
//! socket, or the write half of the client's TCP connection.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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
    /// Frames to the connection's writer task.
    Stream(mpsc::Sender<Vec<u8>>),
}

impl Link {
    /// Sends one STUN message or ChannelData frame. Delivery is best effort,
    /// as relayed UDP is: a closed connection or a full send buffer loses it.
    pub async fn send(&self, frame: Vec<u8>) {
        match self {
            Self::Udp(socket, to) => {
                let _ = socket.send_to(&frame, to).await;
            }
            Self::Stream(tx) => {
                let _ = tx.send(frame).await;
            }
        }
    }

    /// Whether ChannelData must be padded to 4 bytes (stream transports).
    pub fn pads(&self) -> bool {
        matches!(self, Self::Stream(_))
    }
}
