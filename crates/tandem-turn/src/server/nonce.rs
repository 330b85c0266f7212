//! Stateless nonces (RFC 8489 §9.2): an expiry and a MAC binding the nonce
//! to the client's transport address, so the server keeps no table, a nonce
//! captured from one client is useless from another address, and every
//! nonce stops working after its lifetime (438 Stale Nonce makes the client
//! retry with a fresh one).

use std::net::SocketAddr;

use subtle::ConstantTimeEq;

use crate::stun::hmac_sha1;

/// Mints and checks nonces with a per-process random key.
#[derive(Clone)]
pub struct Nonces {
    key: [u8; 32],
    lifetime_secs: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

/// Number of MAC bytes kept in a nonce (96 bits).
const MAC_LEN: usize = 12;

impl Nonces {
    /// Nonces valid for `lifetime_secs`, keyed by `key`.
    pub fn new(key: [u8; 32], lifetime_secs: u64) -> Self {
        Self { key, lifetime_secs }
    }

    fn mac(&self, expiry: u64, client: SocketAddr) -> [u8; MAC_LEN] {
        let mut data = expiry.to_be_bytes().to_vec();
        data.extend_from_slice(client.to_string().as_bytes());
        let full = hmac_sha1(&self.key, &data);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A fresh nonce for `client`, valid until `now + lifetime`.
    pub fn mint(&self, client: SocketAddr, now: u64) -> String {
        let expiry = now.saturating_add(self.lifetime_secs);
        let mut nonce = format!("{expiry:016x}");
        for b in self.mac(expiry, client) {
            nonce.push_str(&format!("{b:02x}"));
        }
        nonce
    }

    /// Whether `nonce` was minted by this server for `client` and has not
    /// expired at `now`.
    pub fn check(&self, nonce: &str, client: SocketAddr, now: u64) -> bool {
        if nonce.len() != 16 + 2 * MAC_LEN || !nonce.is_ascii() {
            return false;
        }
        let (expiry, mac) = nonce.split_at(16);
        let Ok(expiry) = u64::from_str_radix(expiry, 16) else {
            return false;
        };
        let mut sent = [0u8; MAC_LEN];
        for (i, byte) in sent.iter_mut().enumerate() {
            match u8::from_str_radix(&mac[2 * i..2 * i + 2], 16) {
                Ok(b) => *byte = b,
                Err(_) => return false,
            }
        }
        let genuine: bool = self.mac(expiry, client).ct_eq(&sent).into();
        genuine && expiry >= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn a_nonce_works_for_its_client_until_it_expires() {
        let nonces = Nonces::new([7; 32], 600);
        let alice = addr("198.51.100.1:5000");
        let nonce = nonces.mint(alice, 1_000);
        assert!(nonces.check(&nonce, alice, 1_000));
        assert!(nonces.check(&nonce, alice, 1_600));
        assert!(!nonces.check(&nonce, alice, 1_601), "expired");
        assert!(
            !nonces.check(&nonce, addr("198.51.100.1:5001"), 1_000),
            "replayed from another address"
        );
    }

    #[test]
    fn forged_and_malformed_nonces_fail() {
        let nonces = Nonces::new([7; 32], 600);
        let alice = addr("198.51.100.1:5000");
        let nonce = nonces.mint(alice, 1_000);
        // Extending the expiry invalidates the MAC.
        let forged = format!("{:016x}{}", 1_000_000u64, &nonce[16..]);
        assert!(!nonces.check(&forged, alice, 1_000));
        let other_key = Nonces::new([8; 32], 600);
        assert!(!other_key.check(&nonce, alice, 1_000));
        for bad in ["", "abc", &nonce[..39], &format!("{nonce}0"), "é"] {
            assert!(!nonces.check(bad, alice, 1_000), "{bad:?}");
        }
        let mut non_hex = nonce.clone().into_bytes();
        non_hex[20] = b'z';
        assert!(!nonces.check(&String::from_utf8(non_hex).expect("ascii"), alice, 1_000));
    }
}
