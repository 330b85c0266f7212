//! TURN REST API credentials (coturn's `use-auth-secret` scheme).
//!
//! The application server and the TURN server share a secret. The
//! application mints short-lived credentials for a user:
//!
//! * username = `"<expiry-unix-seconds>:<userId>"`
//! * password = base64(HMAC-SHA1(secret, username))
//!
//! The TURN server never stores passwords: when a request arrives it
//! recomputes the password from the username (after checking the expiry) and
//! derives the RFC 8489 long-term key from it to check MESSAGE-INTEGRITY.
//! This keeps credentials stateless and revocable by expiry alone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// A username/password pair handed to a client for its ICE configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `"<expiry-unix-seconds>:<userId>"`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
}

/// Why a TURN username was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username has no `:` separating the expiry from the user id.
    #[error("TURN username has no expiry prefix")]
    MissingExpiry,
    /// The part before the first `:` is not a decimal unix timestamp.
    #[error("TURN username expiry is not a number")]
    InvalidExpiry,
    /// The expiry timestamp is in the past.
    #[error("TURN credentials expired at {expired_at} (now {now})")]
    Expired {
        /// Expiry encoded in the username (unix seconds).
        expired_at: u64,
        /// The time the check was made (unix seconds).
        now: u64,
    },
}

/// Computes base64(HMAC-SHA1(secret, username)).
fn password_for(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an
    // empty-key MAC rather than panicking to keep the function total.
    let mut mac = match HmacSha1::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => <HmacSha1 as hmac::digest::KeyInit>::new(&Default::default()),
    };
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Mints credentials for `user_id` valid until `expires_at_unix`.
pub fn mint(secret: &[u8], user_id: &str, expires_at_unix: u64) -> Credentials {
    let username = format!("{expires_at_unix}:{user_id}");
    let password = password_for(secret, &username);
    Credentials { username, password }
}

/// Checks a username's expiry and returns the password it must carry.
///
/// The returned password is the input to [`long_term_key`]; the server
/// then verifies MESSAGE-INTEGRITY with that key. A username whose expiry
/// equals `now_unix` is still accepted; anything earlier is expired.
pub fn verify(secret: &[u8], username: &str, now_unix: u64) -> Result<String, CredentialError> {
    let (expiry, _user) = username
        .split_once(':')
        .ok_or(CredentialError::MissingExpiry)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CredentialError::InvalidExpiry);
    }
    let expired_at: u64 = expiry.parse().map_err(|_| CredentialError::InvalidExpiry)?;
    if expired_at < now_unix {
        return Err(CredentialError::Expired {
            expired_at,
            now: now_unix,
        });
    }
    Ok(password_for(secret, username))
}

/// RFC 8489 §9.2.2 long-term key: MD5(username ":" realm ":" password).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_matches_openssl() {
        // printf '%s' 'user' | openssl dgst -sha1 -hmac secret -binary | base64
        assert_eq!(
            password_for(b"secret", "user"),
            "An2kjIxkLKTFjrmC7sgZFReed6M="
        );
        // printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64
        let c = mint(b"secret", "alice", 1_700_000_000);
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.password, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
    }

    #[test]
    fn verify_returns_minted_password() {
        let c = mint(b"k", "bob:with:colons", 100);
        assert_eq!(verify(b"k", &c.username, 50), Ok(c.password.clone()));
        assert_eq!(verify(b"k", &c.username, 100), Ok(c.password));
    }

    #[test]
    fn expiry_is_enforced() {
        let c = mint(b"k", "bob", 100);
        assert_eq!(
            verify(b"k", &c.username, 101),
            Err(CredentialError::Expired {
                expired_at: 100,
                now: 101
            })
        );
    }

    #[test]
    fn malformed_usernames_are_rejected() {
        assert_eq!(verify(b"k", "bob", 0), Err(CredentialError::MissingExpiry));
        assert_eq!(
            verify(b"k", "abc:bob", 0),
            Err(CredentialError::InvalidExpiry)
        );
        assert_eq!(verify(b"k", ":bob", 0), Err(CredentialError::InvalidExpiry));
        assert_eq!(
            verify(b"k", "+5:bob", 0),
            Err(CredentialError::InvalidExpiry)
        );
        assert_eq!(
            verify(b"k", "99999999999999999999999:bob", 0),
            Err(CredentialError::InvalidExpiry)
        );
    }

    #[test]
    fn tampered_username_changes_password() {
        let c = mint(b"k", "bob", 1000);
        let forged = verify(b"k", "1000:mallory", 0).expect("well-formed");
        assert_ne!(forged, c.password);
        let extended = verify(b"k", "9999:bob", 0).expect("well-formed");
        assert_ne!(extended, c.password);
        let other_secret = verify(b"other", &c.username, 0).expect("well-formed");
        assert_ne!(other_secret, c.password);
    }

    #[test]
    fn long_term_key_is_md5_of_triplet() {
        // printf '%s' 'user:realm:pass' | openssl dgst -md5
        let expected = [
            0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb, 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc,
            0x40, 0xeb,
        ];
        assert_eq!(long_term_key("user", "realm", "pass"), expected);
    }
}
