//! A STUN/TURN message codec (RFC 8489 with the RFC 8656 TURN attributes).
//!
//! Everything here parses bytes from the network, so every decoder returns a
//! [`StunError`] instead of panicking, whatever the input. Decoded messages
//! remember where MESSAGE-INTEGRITY and FINGERPRINT sat in the raw datagram so
//! they can be verified over the exact bytes the peer sent, with the header
//! length adjusted as RFC 8489 §14.5 and §14.7 require.
//!
//! TURN relays application data in two framings: STUN Send/Data indications
//! and the compact ChannelData frame ([`ChannelData`]); [`packet_kind`] tells
//! them apart by the first two bits.

mod attr;
pub mod attr_type;
mod builder;
pub mod channel;
mod message;
#[cfg(test)]
mod tests;

pub use attr::{AddressFamily, Attribute};
pub use builder::MessageBuilder;
pub use channel::{CHANNEL_MAX, CHANNEL_MIN, ChannelData};
pub use message::Message;
pub(crate) use message::hmac_sha1;

/// The fixed magic cookie in every RFC 5389/8489 STUN header.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;
/// XOR constant applied to the CRC32 in a FINGERPRINT attribute.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// A 96-bit STUN transaction id.
pub type TransactionId = [u8; 12];

/// A STUN method (the 12 method bits of the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Binding (0x001), RFC 8489.
    Binding,
    /// Allocate (0x003), RFC 8656.
    Allocate,
    /// Refresh (0x004), RFC 8656.
    Refresh,
    /// Send (0x006), RFC 8656 (indication only).
    Send,
    /// Data (0x007), RFC 8656 (indication only).
    Data,
    /// CreatePermission (0x008), RFC 8656.
    CreatePermission,
    /// ChannelBind (0x009), RFC 8656.
    ChannelBind,
    /// Any other method; only the low 12 bits are encoded.
    Other(u16),
}

impl Method {
    /// The 12-bit method number.
    pub fn number(self) -> u16 {
        match self {
            Self::Binding => 0x001,
            Self::Allocate => 0x003,
            Self::Refresh => 0x004,
            Self::Send => 0x006,
            Self::Data => 0x007,
            Self::CreatePermission => 0x008,
            Self::ChannelBind => 0x009,
            Self::Other(n) => n & 0x0FFF,
        }
    }

    /// Maps a 12-bit method number to a [`Method`].
    pub fn from_number(n: u16) -> Self {
        match n & 0x0FFF {
            0x001 => Self::Binding,
            0x003 => Self::Allocate,
            0x004 => Self::Refresh,
            0x006 => Self::Send,
            0x007 => Self::Data,
            0x008 => Self::CreatePermission,
            0x009 => Self::ChannelBind,
            other => Self::Other(other),
        }
    }
}

/// A STUN message class (the two class bits of the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request, expecting a success or error response.
    Request,
    /// An indication; no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::Success => 0b10,
            Self::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Self::Request,
            0b01 => Self::Indication,
            0b10 => Self::Success,
            _ => Self::Error,
        }
    }
}

/// Packs method and class into the 14-bit message type (RFC 8489 §5).
pub fn message_type(method: Method, class: Class) -> u16 {
    let m = method.number();
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Splits a message type into method and class (the top two bits are ignored).
pub fn split_message_type(typ: u16) -> (Method, Class) {
    let m = (typ & 0x000F) | ((typ >> 1) & 0x0070) | ((typ >> 2) & 0x0F80);
    let c = ((typ >> 4) & 1) | ((typ >> 7) & 2);
    (Method::from_number(m), Class::from_bits(c))
}

/// What a packet on a TURN port is, judged by its first two bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Top bits `00`: a STUN message.
    Stun,
    /// Top bits `01`: a ChannelData frame (RFC 8656 §12).
    ChannelData,
}

/// Decodes one STUN message; shorthand for [`Message::decode`].
pub fn decode(raw: &[u8]) -> Result<Message, StunError> {
    Message::decode(raw)
}

/// Classifies a packet by its first two bits; `None` for empty input or for
/// top bits `10`/`11`, which are neither STUN nor ChannelData.
pub fn packet_kind(buf: &[u8]) -> Option<PacketKind> {
    match buf.first()? >> 6 {
        0b00 => Some(PacketKind::Stun),
        0b01 => Some(PacketKind::ChannelData),
        _ => None,
    }
}

/// Length of the frame starting at `buf[0]` for stream (TCP/TLS) transports:
/// 20 + length for STUN, 4 + length rounded up to 4 for ChannelData.
/// `None` when fewer than 4 bytes are buffered or the kind is unknown.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let kind = packet_kind(buf)?;
    let len = usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]));
    Some(match kind {
        PacketKind::Stun => HEADER_LEN + len,
        PacketKind::ChannelData => 4 + padded(len),
    })
}

/// Rounds `len` up to the next multiple of 4.
pub(crate) fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// Why a STUN message or ChannelData frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Fewer bytes than a header needs.
    #[error("packet too short: {0} bytes")]
    TooShort(usize),
    /// The first two bits are not `00`.
    #[error("not a STUN message")]
    NotStun,
    /// The magic cookie is missing.
    #[error("bad magic cookie")]
    BadMagicCookie,
    /// The header length is not a multiple of 4.
    #[error("message length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    /// The header length disagrees with the bytes received.
    #[error("message length {declared} but {available} bytes follow the header")]
    LengthMismatch {
        /// Length from the header.
        declared: usize,
        /// Bytes actually present after the header.
        available: usize,
    },
    /// An attribute's (padded) value runs past the end of the message.
    #[error("attribute 0x{0:04x} overruns the message")]
    AttributeOverrun(u16),
    /// A known attribute has a malformed value.
    #[error("invalid attribute 0x{typ:04x}: {reason}")]
    InvalidAttribute {
        /// Attribute type.
        typ: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// An address attribute has a family other than IPv4 (1) or IPv6 (2).
    #[error("unknown address family 0x{0:02x}")]
    BadAddressFamily(u8),
    /// The FINGERPRINT attribute does not match the message.
    #[error("FINGERPRINT mismatch")]
    BadFingerprint,
    /// An attribute follows FINGERPRINT, which must be last.
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
    /// A ChannelData channel number is outside 0x4000–0x7FFF.
    #[error("channel number 0x{0:04x} out of range")]
    BadChannelNumber(u16),
    /// A value or message is too long for a 16-bit length field.
    #[error("value too long to encode")]
    TooLong,
}
