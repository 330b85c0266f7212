//! Typed STUN/TURN attributes and their value encodings.
//!
//! Each attribute is a type-length-value record padded to 4 bytes. Values are
//! parsed strictly (wrong sizes, bad families and non-UTF-8 text are errors)
//! so the server only ever sees well-formed data; attributes this crate does
//! not know are kept verbatim as [`Attribute::Unknown`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAGIC_COOKIE, StunError, TransactionId};

use super::attr_type as t;

/// An IP address family as carried by REQUESTED-ADDRESS-FAMILY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (0x01).
    V4,
    /// IPv6 (0x02).
    V6,
}

impl AddressFamily {
    fn from_byte(b: u8) -> Result<Self, StunError> {
        match b {
            0x01 => Ok(Self::V4),
            0x02 => Ok(Self::V6),
            other => Err(StunError::BadAddressFamily(other)),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::V4 => 0x01,
            Self::V6 => 0x02,
        }
    }
}

/// A decoded STUN/TURN attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// MAPPED-ADDRESS (plain, legacy).
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS: the client's reflexive address.
    XorMappedAddress(SocketAddr),
    /// XOR-PEER-ADDRESS: a peer of a TURN allocation.
    XorPeerAddress(SocketAddr),
    /// XOR-RELAYED-ADDRESS: the relayed transport address of an allocation.
    XorRelayedAddress(SocketAddr),
    /// USERNAME.
    Username(String),
    /// REALM.
    Realm(String),
    /// NONCE.
    Nonce(String),
    /// MESSAGE-INTEGRITY: HMAC-SHA1 over the preceding message. Added by
    /// [`super::MessageBuilder::build`], never by `add`.
    MessageIntegrity([u8; 20]),
    /// FINGERPRINT: CRC32 of the preceding message XOR 0x5354554e. Added by
    /// [`super::MessageBuilder::build`], never by `add`.
    Fingerprint(u32),
    /// ERROR-CODE: `code` is class × 100 + number (300–699).
    ErrorCode {
        /// Numeric error code, e.g. 401.
        code: u16,
        /// Human-readable reason phrase.
        reason: String,
    },
    /// UNKNOWN-ATTRIBUTES: attribute types the server did not understand.
    UnknownAttributes(Vec<u16>),
    /// LIFETIME in seconds.
    Lifetime(u32),
    /// REQUESTED-TRANSPORT protocol number (17 = UDP).
    RequestedTransport(u8),
    /// DATA: relayed application bytes.
    Data(Vec<u8>),
    /// CHANNEL-NUMBER.
    ChannelNumber(u16),
    /// SOFTWARE.
    Software(String),
    /// DONT-FRAGMENT (no value).
    DontFragment,
    /// REQUESTED-ADDRESS-FAMILY.
    RequestedAddressFamily(AddressFamily),
    /// EVEN-PORT; `true` asks to reserve the next-higher port too (R bit).
    EvenPort(bool),
    /// RESERVATION-TOKEN.
    ReservationToken([u8; 8]),
    /// Any attribute type this codec does not interpret.
    Unknown {
        /// Attribute type.
        typ: u16,
        /// Raw value, without padding.
        value: Vec<u8>,
    },
}

fn invalid(typ: u16, reason: &'static str) -> StunError {
    StunError::InvalidAttribute { typ, reason }
}

fn fixed<const N: usize>(typ: u16, v: &[u8]) -> Result<[u8; N], StunError> {
    v.try_into().map_err(|_| invalid(typ, "wrong value length"))
}

fn text(typ: u16, v: &[u8]) -> Result<String, StunError> {
    String::from_utf8(v.to_vec()).map_err(|_| invalid(typ, "not UTF-8"))
}

/// The 16-byte XOR mask: cookie followed by the transaction id.
fn xor_mask(txid: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(txid);
    mask
}

fn decode_address(
    typ: u16,
    v: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, StunError> {
    let (&family, rest) = v
        .get(1..)
        .and_then(<[u8]>::split_first)
        .ok_or(invalid(typ, "too short"))?;
    let port_bytes: [u8; 2] = rest
        .get(..2)
        .and_then(|p| p.try_into().ok())
        .ok_or(invalid(typ, "too short"))?;
    let addr = &rest[2..];
    let mask = xor.map(xor_mask).unwrap_or([0u8; 16]);
    let port = u16::from_be_bytes(port_bytes) ^ u16::from_be_bytes([mask[0], mask[1]]);
    let mut ip = [0u8; 16];
    let len = match family {
        0x01 => 4,
        0x02 => 16,
        other => return Err(StunError::BadAddressFamily(other)),
    };
    if addr.len() != len {
        return Err(invalid(typ, "address length does not match family"));
    }
    for (i, b) in addr.iter().enumerate() {
        ip[i] = b ^ mask[i];
    }
    let ip = if len == 4 {
        IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(ip))
    };
    Ok(SocketAddr::new(ip, port))
}

fn encode_address(addr: &SocketAddr, xor: Option<&TransactionId>, out: &mut Vec<u8>) {
    let mask = xor.map(xor_mask).unwrap_or([0u8; 16]);
    let port = addr.port() ^ u16::from_be_bytes([mask[0], mask[1]]);
    let (family, octets): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (0x01, ip.octets().to_vec()),
        IpAddr::V6(ip) => (0x02, ip.octets().to_vec()),
    };
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend(octets.iter().zip(mask).map(|(b, m)| b ^ m));
}

impl Attribute {
    /// Decodes one attribute value (without padding).
    pub(crate) fn decode(typ: u16, v: &[u8], txid: &TransactionId) -> Result<Self, StunError> {
        Ok(match typ {
            t::MAPPED_ADDRESS => Self::MappedAddress(decode_address(typ, v, None)?),
            t::XOR_MAPPED_ADDRESS => Self::XorMappedAddress(decode_address(typ, v, Some(txid))?),
            t::XOR_PEER_ADDRESS => Self::XorPeerAddress(decode_address(typ, v, Some(txid))?),
            t::XOR_RELAYED_ADDRESS => Self::XorRelayedAddress(decode_address(typ, v, Some(txid))?),
            t::USERNAME => Self::Username(text(typ, v)?),
            t::REALM => Self::Realm(text(typ, v)?),
            t::NONCE => Self::Nonce(text(typ, v)?),
            t::SOFTWARE => Self::Software(text(typ, v)?),
            t::MESSAGE_INTEGRITY => Self::MessageIntegrity(fixed(typ, v)?),
            t::FINGERPRINT => Self::Fingerprint(u32::from_be_bytes(fixed(typ, v)?)),
            t::ERROR_CODE => decode_error_code(v)?,
            t::UNKNOWN_ATTRIBUTES => {
                if !v.len().is_multiple_of(2) {
                    return Err(invalid(typ, "odd length"));
                }
                Self::UnknownAttributes(
                    v.chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            t::LIFETIME => Self::Lifetime(u32::from_be_bytes(fixed(typ, v)?)),
            t::REQUESTED_TRANSPORT => Self::RequestedTransport(fixed::<4>(typ, v)?[0]),
            t::DATA => Self::Data(v.to_vec()),
            t::CHANNEL_NUMBER => {
                let b = fixed::<4>(typ, v)?;
                Self::ChannelNumber(u16::from_be_bytes([b[0], b[1]]))
            }
            t::DONT_FRAGMENT if v.is_empty() => Self::DontFragment,
            t::DONT_FRAGMENT => return Err(invalid(typ, "must be empty")),
            t::REQUESTED_ADDRESS_FAMILY => {
                Self::RequestedAddressFamily(AddressFamily::from_byte(fixed::<4>(typ, v)?[0])?)
            }
            t::EVEN_PORT => Self::EvenPort(fixed::<1>(typ, v)?[0] & 0x80 != 0),
            t::RESERVATION_TOKEN => Self::ReservationToken(fixed(typ, v)?),
            _ => Self::Unknown {
                typ,
                value: v.to_vec(),
            },
        })
    }

    /// The attribute type number.
    pub fn typ(&self) -> u16 {
        match self {
            Self::MappedAddress(_) => t::MAPPED_ADDRESS,
            Self::XorMappedAddress(_) => t::XOR_MAPPED_ADDRESS,
            Self::XorPeerAddress(_) => t::XOR_PEER_ADDRESS,
            Self::XorRelayedAddress(_) => t::XOR_RELAYED_ADDRESS,
            Self::Username(_) => t::USERNAME,
            Self::Realm(_) => t::REALM,
            Self::Nonce(_) => t::NONCE,
            Self::MessageIntegrity(_) => t::MESSAGE_INTEGRITY,
            Self::Fingerprint(_) => t::FINGERPRINT,
            Self::ErrorCode { .. } => t::ERROR_CODE,
            Self::UnknownAttributes(_) => t::UNKNOWN_ATTRIBUTES,
            Self::Lifetime(_) => t::LIFETIME,
            Self::RequestedTransport(_) => t::REQUESTED_TRANSPORT,
            Self::Data(_) => t::DATA,
            Self::ChannelNumber(_) => t::CHANNEL_NUMBER,
            Self::Software(_) => t::SOFTWARE,
            Self::DontFragment => t::DONT_FRAGMENT,
            Self::RequestedAddressFamily(_) => t::REQUESTED_ADDRESS_FAMILY,
            Self::EvenPort(_) => t::EVEN_PORT,
            Self::ReservationToken(_) => t::RESERVATION_TOKEN,
            Self::Unknown { typ, .. } => *typ,
        }
    }

    /// Appends the value (without header or padding) to `out`.
    pub(crate) fn encode_value(&self, txid: &TransactionId, out: &mut Vec<u8>) {
        match self {
            Self::MappedAddress(a) => encode_address(a, None, out),
            Self::XorMappedAddress(a) | Self::XorPeerAddress(a) | Self::XorRelayedAddress(a) => {
                encode_address(a, Some(txid), out)
            }
            Self::Username(s) | Self::Realm(s) | Self::Nonce(s) | Self::Software(s) => {
                out.extend_from_slice(s.as_bytes())
            }
            Self::MessageIntegrity(mac) => out.extend_from_slice(mac),
            Self::Fingerprint(v) | Self::Lifetime(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::ErrorCode { code, reason } => {
                let class = u8::try_from((code / 100) & 0x7).unwrap_or(0);
                let number = u8::try_from(code % 100).unwrap_or(0);
                out.extend_from_slice(&[0, 0, class, number]);
                out.extend_from_slice(reason.as_bytes());
            }
            Self::UnknownAttributes(types) => {
                out.extend(types.iter().flat_map(|t| t.to_be_bytes()))
            }
            Self::RequestedTransport(p) => out.extend_from_slice(&[*p, 0, 0, 0]),
            Self::Data(d) => out.extend_from_slice(d),
            Self::ChannelNumber(c) => {
                out.extend_from_slice(&c.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            Self::DontFragment => {}
            Self::RequestedAddressFamily(f) => out.extend_from_slice(&[f.byte(), 0, 0, 0]),
            Self::EvenPort(r) => out.push(if *r { 0x80 } else { 0 }),
            Self::ReservationToken(tok) => out.extend_from_slice(tok),
            Self::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }
}

fn decode_error_code(v: &[u8]) -> Result<Attribute, StunError> {
    let typ = t::ERROR_CODE;
    let (head, reason) = v.split_at_checked(4).ok_or(invalid(typ, "too short"))?;
    let class = u16::from(head[2] & 0x07);
    let number = u16::from(head[3]);
    if !(3..=6).contains(&class) || number >= 100 {
        return Err(invalid(typ, "code outside 300-699"));
    }
    Ok(Attribute::ErrorCode {
        code: class * 100 + number,
        reason: text(typ, reason)?,
    })
}
