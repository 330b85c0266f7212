//! Decoding a whole STUN message and checking its integrity attributes.
//!
//! The decoder validates the header, walks the attributes and records the
//! offsets of MESSAGE-INTEGRITY and FINGERPRINT so that both can be checked
//! over the raw bytes later. Per RFC 8489 §14.5 attributes after
//! MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored; FINGERPRINT must
//! be last and is verified during decoding.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::attr_type as t;
use super::{
    Attribute, Class, FINGERPRINT_XOR, HEADER_LEN, MAGIC_COOKIE, MessageBuilder, Method, StunError,
    TransactionId, split_message_type,
};

/// A decoded STUN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The method, e.g. [`Method::Allocate`].
    pub method: Method,
    /// The class, e.g. [`Class::Request`].
    pub class: Class,
    /// The 96-bit transaction id.
    pub transaction_id: TransactionId,
    /// Attributes in wire order (those after MESSAGE-INTEGRITY other than
    /// FINGERPRINT are dropped, as RFC 8489 requires).
    pub attributes: Vec<Attribute>,
    integrity_offset: Option<usize>,
    fingerprint_offset: Option<usize>,
}

/// Reads a big-endian u16 at `at`, if present.
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Copies the message prefix `raw[..end]` with the header length set to
/// `len`, the form MESSAGE-INTEGRITY and FINGERPRINT are computed over.
pub(crate) fn prefix_with_length(raw: &[u8], end: usize, len: usize) -> Option<Vec<u8>> {
    let mut prefix = raw.get(..end)?.to_vec();
    let len = u16::try_from(len).ok()?;
    prefix.get_mut(2..4)?.copy_from_slice(&len.to_be_bytes());
    Some(prefix)
}

/// HMAC-SHA1 of `data` under `key`.
pub(crate) fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => <Hmac<Sha1> as hmac::digest::KeyInit>::new(&Default::default()),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// CRC32 of `data` XOR 0x5354554e.
pub(crate) fn fingerprint(data: &[u8]) -> u32 {
    crc32fast::hash(data) ^ FINGERPRINT_XOR
}

impl Message {
    /// Decodes one STUN message; `raw` must be exactly one message.
    pub fn decode(raw: &[u8]) -> Result<Self, StunError> {
        let header = raw
            .get(..HEADER_LEN)
            .ok_or(StunError::TooShort(raw.len()))?;
        let typ = be16(header, 0).ok_or(StunError::TooShort(raw.len()))?;
        if typ & 0xC000 != 0 {
            return Err(StunError::NotStun);
        }
        let declared = be16(header, 2).ok_or(StunError::TooShort(raw.len()))?;
        if header.get(4..8) != Some(&MAGIC_COOKIE.to_be_bytes()[..]) {
            return Err(StunError::BadMagicCookie);
        }
        if !declared.is_multiple_of(4) {
            return Err(StunError::UnalignedLength(declared));
        }
        let available = raw.len() - HEADER_LEN;
        if usize::from(declared) != available {
            return Err(StunError::LengthMismatch {
                declared: usize::from(declared),
                available,
            });
        }
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&header[8..20]);
        let (method, class) = split_message_type(typ);
        let mut msg = Self {
            method,
            class,
            transaction_id,
            attributes: Vec::new(),
            integrity_offset: None,
            fingerprint_offset: None,
        };
        msg.decode_attributes(raw)?;
        Ok(msg)
    }

    fn decode_attributes(&mut self, raw: &[u8]) -> Result<(), StunError> {
        let mut at = HEADER_LEN;
        while at < raw.len() {
            if self.fingerprint_offset.is_some() {
                return Err(StunError::AttributeAfterFingerprint);
            }
            let typ = be16(raw, at).ok_or(StunError::AttributeOverrun(0))?;
            let len = usize::from(be16(raw, at + 2).ok_or(StunError::AttributeOverrun(typ))?);
            let start = at + 4;
            let value = raw
                .get(start..start + len)
                .ok_or(StunError::AttributeOverrun(typ))?;
            let next = start + super::padded(len);
            if next > raw.len() {
                return Err(StunError::AttributeOverrun(typ));
            }
            let ignored = self.integrity_offset.is_some() && typ != t::FINGERPRINT;
            if !ignored {
                let attr = Attribute::decode(typ, value, &self.transaction_id)?;
                match typ {
                    t::FINGERPRINT => {
                        self.fingerprint_offset = Some(at);
                        if !self.check_fingerprint(raw) {
                            return Err(StunError::BadFingerprint);
                        }
                    }
                    t::MESSAGE_INTEGRITY => self.integrity_offset = Some(at),
                    _ => {}
                }
                self.attributes.push(attr);
            }
            at = next;
        }
        Ok(())
    }

    /// The first attribute matching `pred`, e.g.
    /// `msg.find(|a| matches!(a, Attribute::Username(_)))`.
    pub fn find(&self, pred: impl Fn(&Attribute) -> bool) -> Option<&Attribute> {
        self.attributes.iter().find(|a| pred(a))
    }

    /// Comprehension-required attribute types (0x0000–0x7FFF) this codec
    /// did not understand; a server answers a request carrying any with a
    /// 420 error listing them in UNKNOWN-ATTRIBUTES.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::Unknown { typ, .. } if *typ < 0x8000 => Some(*typ),
                _ => None,
            })
            .collect()
    }

    /// Whether the message carried MESSAGE-INTEGRITY.
    pub fn has_integrity(&self) -> bool {
        self.integrity_offset.is_some()
    }

    /// Whether the message carried FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint_offset.is_some()
    }

    /// Verifies MESSAGE-INTEGRITY over `raw` (the bytes this message was
    /// decoded from) with `key` (long-term: MD5 of user:realm:password;
    /// short-term: the password). The HMAC covers the message up to the
    /// attribute, with the header length counting through MESSAGE-INTEGRITY.
    /// Compares in constant time; `false` when the attribute is absent.
    pub fn verify_integrity(&self, raw: &[u8], key: &[u8]) -> bool {
        let Some(off) = self.integrity_offset else {
            return false;
        };
        if be16(raw, off) != Some(t::MESSAGE_INTEGRITY) {
            return false;
        }
        let (Some(prefix), Some(sent)) = (
            prefix_with_length(raw, off, off + 24 - HEADER_LEN),
            raw.get(off + 4..off + 24),
        ) else {
            return false;
        };
        hmac_sha1(key, &prefix).ct_eq(sent).into()
    }

    /// Checks FINGERPRINT over `raw`; `false` when absent or wrong.
    pub fn check_fingerprint(&self, raw: &[u8]) -> bool {
        let Some(off) = self.fingerprint_offset else {
            return false;
        };
        if be16(raw, off) != Some(t::FINGERPRINT) {
            return false;
        }
        let (Some(prefix), Some(sent)) = (
            prefix_with_length(raw, off, off + 8 - HEADER_LEN),
            raw.get(off + 4..off + 8),
        ) else {
            return false;
        };
        fingerprint(&prefix).to_be_bytes() == sent
    }

    /// A builder pre-filled with this message's header and attributes,
    /// minus MESSAGE-INTEGRITY and FINGERPRINT (which `build` recomputes).
    pub fn to_builder(&self) -> Result<MessageBuilder, StunError> {
        let mut b = MessageBuilder::new(self.method, self.class, self.transaction_id);
        for attr in &self.attributes {
            if !matches!(
                attr,
                Attribute::MessageIntegrity(_) | Attribute::Fingerprint(_)
            ) {
                b.add(attr)?;
            }
        }
        Ok(b)
    }
}
