//! Short-lived access tokens for realtime clients that have no session
//! cookie (other origins, servers, the npm client in Node): an HMAC-SHA256
//! over the user id, expiry and (for tokens issued to a login session) the
//! session's id, checked in constant time. The session id lets the server
//! close a token's sockets when that session ends (logout, revocation).

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tandem_core::{Clock, SystemClock};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies access tokens with one secret key, on a clock.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner([redacted])")
    }
}

impl TokenSigner {
    /// A signer with `key` (at least 32 bytes recommended), on the system clock.
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.to_vec(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same signer on `clock` (tests use a manual one).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// The signer's time: seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp()).unwrap_or(0)
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(message);
        mac
    }

    /// A token for `user` valid for `ttl`; returns it with its expiry (unix s).
    pub fn issue(&self, user: Uuid, ttl: Duration) -> (String, u64) {
        let expires = self.now() + ttl.as_secs();
        self.sign(format!("{}.{expires}", user.simple()), expires)
    }

    /// A token for `user` bound to login session `session` (a hex id): it
    /// dies with the session as well as at its expiry.
    pub fn issue_for_session(&self, user: Uuid, session: &str, ttl: Duration) -> (String, u64) {
        let session: String = session
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let expires = self.now() + ttl.as_secs();
        self.sign(format!("{}.{expires}.{session}", user.simple()), expires)
    }

    fn sign(&self, claims: String, expires: u64) -> (String, u64) {
        let signature = self.mac(claims.as_bytes()).finalize().into_bytes();
        (
            format!("{claims}.{}", URL_SAFE_NO_PAD.encode(signature)),
            expires,
        )
    }

    /// The user and expiry of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: u64) -> Option<(Uuid, u64)> {
        self.claims(token, now).map(|c| (c.user, c.expires))
    }

    /// Everything a valid, unexpired token says.
    pub fn claims(&self, token: &str, now: u64) -> Option<Claims> {
        let (claims, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(claims.as_bytes()).verify_slice(&signature).ok()?;
        let mut parts = claims.splitn(3, '.');
        let user = Uuid::parse_str(parts.next()?).ok()?;
        let expires: u64 = parts.next()?.parse().ok()?;
        let session = parts.next().map(str::to_owned);
        (expires > now).then_some(Claims {
            user,
            expires,
            session,
        })
    }
}

/// What a valid access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Whose it is.
    pub user: Uuid,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// The login session it was issued to, if any.
    pub session: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::now_v7();
        let (token, expires) = signer.issue(user, Duration::from_secs(60));
        assert_eq!(signer.verify(&token, signer.now()), Some((user, expires)));
        assert_eq!(signer.verify(&token, expires), None, "expired");
        assert_eq!(
            TokenSigner::new(b"another key").verify(&token, signer.now()),
            None
        );
        let forged = token.replacen(
            &user.simple().to_string(),
            &Uuid::now_v7().simple().to_string(),
            1,
        );
        assert_eq!(signer.verify(&forged, signer.now()), None);
        for junk in ["", ".", "a.b.c", "x.y.!!"] {
            assert_eq!(signer.verify(junk, signer.now()), None);
        }
    }

    #[test]
    fn session_tokens_name_their_session() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::now_v7();
        let (token, expires) = signer.issue_for_session(user, "ab12", Duration::from_secs(60));
        let claims = signer.claims(&token, signer.now()).expect("valid");
        assert_eq!(claims.session.as_deref(), Some("ab12"));
        assert_eq!((claims.user, claims.expires), (user, expires));
        let (plain, _) = signer.issue(user, Duration::from_secs(60));
        assert_eq!(
            signer.claims(&plain, signer.now()).and_then(|c| c.session),
            None
        );
    }
}
