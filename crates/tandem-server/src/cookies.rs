//! The session cookie: reading it and writing it with safe flags.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use tandem_sessions::SessionToken;

/// Cookie name. With `Secure`, the `__Host-` prefix additionally makes the
/// browser refuse it unless it is host-only, path `/` and sent over TLS.
pub fn name(secure: bool) -> &'static str {
    if secure {
        "__Host-tandem_session"
    } else {
        "tandem_session"
    }
}

/// The session token from the request's `Cookie` headers, if well-formed.
pub fn read(headers: &HeaderMap, secure: bool) -> Option<SessionToken> {
    let wanted = name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == wanted)
        .and_then(|(_, v)| SessionToken::parse(v))
}

/// `Set-Cookie` for a new session: HttpOnly (no script access), SameSite=Lax
/// (no cross-site POSTs), Secure unless configured off, lasting `max_age`.
pub fn set(token: &SessionToken, max_age: Duration, secure: bool) -> HeaderValue {
    let value = format!(
        "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        name(secure),
        token.as_str(),
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear(secure: bool) -> HeaderValue {
    HeaderValue::from_static(if secure {
        "__Host-tandem_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
    } else {
        "tandem_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
    })
}
