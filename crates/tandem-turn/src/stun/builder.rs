//! Encoding STUN messages.
//!
//! [`MessageBuilder`] writes the header and attributes (each padded to 4
//! bytes), then optionally MESSAGE-INTEGRITY and FINGERPRINT. Each of those
//! two is computed with the header length already counting the attribute
//! being added, exactly as RFC 8489 §14.5 and §14.7 specify, so receivers
//! verifying over the raw bytes agree.

use super::attr_type as t;
use super::message::{fingerprint, hmac_sha1, prefix_with_length};
use super::{
    Attribute, Class, HEADER_LEN, MAGIC_COOKIE, Method, StunError, TransactionId, message_type,
};

/// Incrementally encodes one STUN message.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    transaction_id: TransactionId,
}

impl MessageBuilder {
    /// Starts a message with the given header fields and no attributes.
    pub fn new(method: Method, class: Class, transaction_id: TransactionId) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id);
        Self {
            buf,
            transaction_id,
        }
    }

    /// Appends an attribute. MESSAGE-INTEGRITY and FINGERPRINT are refused
    /// here (they must be computed by [`Self::build`]); values or messages
    /// too long for the 16-bit length fields give [`StunError::TooLong`].
    pub fn add(&mut self, attr: &Attribute) -> Result<&mut Self, StunError> {
        let typ = attr.typ();
        if typ == t::MESSAGE_INTEGRITY || typ == t::FINGERPRINT {
            return Err(StunError::InvalidAttribute {
                typ,
                reason: "added by build(), not add()",
            });
        }
        let mut value = Vec::new();
        attr.encode_value(&self.transaction_id, &mut value);
        self.push_raw(typ, &value)?;
        Ok(self)
    }

    /// Writes a header + value + padding and updates the length field.
    fn push_raw(&mut self, typ: u16, value: &[u8]) -> Result<(), StunError> {
        let len = u16::try_from(value.len()).map_err(|_| StunError::TooLong)?;
        let body = self.buf.len() - HEADER_LEN + 4 + super::padded(value.len());
        let body = u16::try_from(body).map_err(|_| StunError::TooLong)?;
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(HEADER_LEN + usize::from(body), 0);
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        Ok(())
    }

    /// Finishes the message: appends MESSAGE-INTEGRITY (HMAC-SHA1 under
    /// `integrity_key`) if a key is given, then FINGERPRINT if asked.
    pub fn build(
        mut self,
        integrity_key: Option<&[u8]>,
        with_fingerprint: bool,
    ) -> Result<Vec<u8>, StunError> {
        if let Some(key) = integrity_key {
            let end = self.buf.len();
            let prefix = prefix_with_length(&self.buf, end, end + 24 - HEADER_LEN)
                .ok_or(StunError::TooLong)?;
            let mac = hmac_sha1(key, &prefix);
            self.push_raw(t::MESSAGE_INTEGRITY, &mac)?;
        }
        if with_fingerprint {
            let end = self.buf.len();
            let prefix = prefix_with_length(&self.buf, end, end + 8 - HEADER_LEN)
                .ok_or(StunError::TooLong)?;
            let crc = fingerprint(&prefix);
            self.push_raw(t::FINGERPRINT, &crc.to_be_bytes())?;
        }
        Ok(self.buf)
    }
}
