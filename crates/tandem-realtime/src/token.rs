//! Short-lived access tokens for realtime clients that have no session
//! cookie (other origins, servers, the npm client in Node): an HMAC-SHA256
//! over the user id and expiry, checked in constant time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies access tokens with one secret key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner([redacted])")
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenSigner {
    /// A signer with `key` (at least 32 bytes recommended).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(message);
        mac
    }

    /// A token for `user` valid for `ttl`; returns it with its expiry (unix s).
    pub fn issue(&self, user: Uuid, ttl: Duration) -> (String, u64) {
        let expires = unix_now() + ttl.as_secs();
        let claims = format!("{}.{expires}", user.simple());
        let signature = self.mac(claims.as_bytes()).finalize().into_bytes();
        (
            format!("{claims}.{}", URL_SAFE_NO_PAD.encode(signature)),
            expires,
        )
    }

    /// The user and expiry of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: u64) -> Option<(Uuid, u64)> {
        let (claims, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(claims.as_bytes()).verify_slice(&signature).ok()?;
        let (user, expires) = claims.split_once('.')?;
        let expires: u64 = expires.parse().ok()?;
        (expires > now).then_some((Uuid::parse_str(user).ok()?, expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::now_v7();
        let (token, expires) = signer.issue(user, Duration::from_secs(60));
        assert_eq!(signer.verify(&token, unix_now()), Some((user, expires)));
        assert_eq!(signer.verify(&token, expires), None, "expired");
        assert_eq!(
            TokenSigner::new(b"another key").verify(&token, unix_now()),
            None
        );
        let forged = token.replacen(
            &user.simple().to_string(),
            &Uuid::now_v7().simple().to_string(),
            1,
        );
        assert_eq!(signer.verify(&forged, unix_now()), None);
        for junk in ["", ".", "a.b.c", "x.y.!!"] {
            assert_eq!(signer.verify(junk, unix_now()), None);
        }
    }
}
