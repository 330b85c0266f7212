//! A minimal WebSocket client (RFC 6455) for the load generator: one read
//! buffer per connection, frames parsed in place, no per-message allocation.
//! Ten thousand of these must cost the machine much less than the server
//! they measure, which a general-purpose client does not.

use std::io;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Frame opcodes.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// One client connection.
pub struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Masking key for client frames (RFC 6455 requires masking; the
    /// server under test does not care which key).
    mask: [u8; 4],
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

impl Ws {
    /// Connects to `addr` and upgrades `path` (with its query) to a WebSocket.
    pub async fn connect(addr: &str, path: &str) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGFuZGVtLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut ws = Self {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            mask: rand::random(),
        };
        let head_end = loop {
            if let Some(at) = ws.buf[..ws.end].windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if ws.end == ws.buf.len() {
                return Err(invalid("handshake response too long"));
            }
            let n = ws.stream.read(&mut ws.buf[ws.end..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            ws.end += n;
        };
        if !ws.buf.starts_with(b"HTTP/1.1 101") {
            let head = String::from_utf8_lossy(&ws.buf[..head_end]);
            let status = head.lines().next().unwrap_or_default().to_owned();
            return Err(invalid(&format!("upgrade refused: {status}")));
        }
        ws.start = head_end;
        Ok(ws)
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&self.mask);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ self.mask[i % 4]),
        );
        self.stream.write_all(&frame).await
    }

    /// The next data frame: its opcode and payload. Answers pings, and
    /// returns `UnexpectedEof` on close. Cancel-safe: an unfinished read
    /// keeps its bytes for the next call.
    pub async fn next(&mut self) -> io::Result<(u8, &[u8])> {
        loop {
            if let Some((opcode, at, len)) = self.parse()? {
                self.start = at + len;
                match opcode {
                    PING => {
                        let payload = self.buf[at..at + len].to_vec();
                        self.send(PONG, &payload).await?;
                    }
                    CLOSE => return Err(io::ErrorKind::UnexpectedEof.into()),
                    PONG => {}
                    _ => return Ok((opcode, &self.buf[at..at + len])),
                }
                continue;
            }
            // Make room: move the partial frame to the front, grow if it
            // alone fills the buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
    }

    /// A complete frame at `start`: (opcode, payload offset, payload length).
    fn parse(&self) -> io::Result<Option<(u8, usize, usize)>> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[1] & 0x80 != 0 {
            return Err(invalid("server frames must not be masked"));
        }
        let (len, header) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0; 8];
                n.copy_from_slice(&b[2..10]);
                (
                    usize::try_from(u64::from_be_bytes(n))
                        .map_err(|_| invalid("frame too long"))?,
                    10,
                )
            }
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if b.len() < header + len {
            return Ok(None);
        }
        Ok(Some((b[0] & 0x0f, self.start + header, len)))
    }
}
