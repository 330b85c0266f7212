//! ChannelData framing (RFC 8656 §12.4).
//!
//! Once a client binds a channel to a peer, data flows in a 4-byte header
//! (channel number, length) instead of a full STUN Send/Data indication.
//! Over TCP/TLS the frame is padded to a multiple of 4; over UDP padding is
//! optional, so the decoder accepts up to 3 trailing padding bytes.

use super::StunError;

/// Lowest valid channel number.
pub const CHANNEL_MIN: u16 = 0x4000;
/// Highest channel number accepted: RFC 5766's 0x7FFF. RFC 8656 narrowed
/// new bindings to 0x4FFF, but deployed clients (coturn's own among them)
/// still pick numbers up to 0x7FFF, and the top two bits still say
/// "ChannelData" for all of them.
pub const CHANNEL_MAX: u16 = 0x7FFF;

/// One ChannelData frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelData {
    /// Channel number, 0x4000–0x7FFF.
    pub channel: u16,
    /// Application data.
    pub data: Vec<u8>,
}

impl ChannelData {
    /// Decodes one frame; `buf` holds the frame and at most its padding.
    pub fn decode(buf: &[u8]) -> Result<Self, StunError> {
        let (channel, data) = parse(buf)?;
        Ok(Self {
            channel,
            data: data.to_vec(),
        })
    }

    /// Encodes the frame, padding to 4 bytes when `pad` (required over
    /// TCP/TLS). Fails for an out-of-range channel or over-long data.
    pub fn encode(&self, pad: bool) -> Result<Vec<u8>, StunError> {
        encode(self.channel, &self.data, pad)
    }
}

/// Splits one frame into channel number and data without copying; `buf`
/// holds the frame and at most its padding.
pub fn parse(buf: &[u8]) -> Result<(u16, &[u8]), StunError> {
    let (head, rest) = buf
        .split_at_checked(4)
        .ok_or(StunError::TooShort(buf.len()))?;
    let channel = u16::from_be_bytes([head[0], head[1]]);
    if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&channel) {
        return Err(StunError::BadChannelNumber(channel));
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if rest.len() < len || rest.len() > super::padded(len) {
        return Err(StunError::LengthMismatch {
            declared: len,
            available: rest.len(),
        });
    }
    Ok((channel, &rest[..len]))
}

/// Encodes one frame from borrowed data (see [`ChannelData::encode`]).
pub fn encode(channel: u16, data: &[u8], pad: bool) -> Result<Vec<u8>, StunError> {
    if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&channel) {
        return Err(StunError::BadChannelNumber(channel));
    }
    let len = u16::try_from(data.len()).map_err(|_| StunError::TooLong)?;
    let mut out = Vec::with_capacity(4 + super::padded(data.len()));
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    if pad {
        out.resize(4 + super::padded(data.len()), 0);
    }
    Ok(out)
}
