//! Input rules for accounts and profiles. Each check returns the cleaned
//! value or a message naming the rule, so handlers can report every bad
//! field at once.

use std::str::FromStr;

use tandem_db::{AvailabilityWindow, ProfileUpdate};

use crate::error::FieldError;

/// Shortest accepted password, in characters (NIST SP 800-63B suggests ≥ 8; we ask 10).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in bytes: bounds hashing work per request.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Accumulates field errors.
#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    /// Keeps `Ok` values, records `Err` messages under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|msg| self.0.push(FieldError::new(field, msg)))
            .ok()
    }

    /// `Err` with every recorded error, if any.
    pub fn finish(self) -> Result<(), crate::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::ApiError::Validation(self.0))
        }
    }
}

/// Trims and lower-cases an e-mail address and checks its shape.
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let bad = || Err("Enter a valid e-mail address, like name@example.com.".to_owned());
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad();
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return bad();
    }
    Ok(email)
}

/// Length and strength rules for a new password.
pub fn password(password: &str, email: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "Use at least {MIN_PASSWORD_CHARS} characters; a short phrase is easiest to remember."
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("Use at most {MAX_PASSWORD_BYTES} bytes."));
    }
    let lower = password.to_lowercase();
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 || COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("This password is too easy to guess; choose a less common one.".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (local.len() >= 4 && lower.contains(local)) {
        return Err("Don't build the password from your e-mail address.".into());
    }
    Ok(())
}

/// A short single-line text: trimmed, within `max` characters, no control characters.
pub fn line(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let text = raw.trim();
    let n = text.chars().count();
    if n < min || n > max {
        return Err(if min > 0 {
            format!("Use {min} to {max} characters.")
        } else {
            format!("Use at most {max} characters.")
        });
    }
    if text.chars().any(char::is_control) {
        return Err("Remove line breaks and control characters.".into());
    }
    Ok(text.to_owned())
}

/// A multi-line text within `max` characters.
pub fn text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!("Use at most {max} characters."));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("Remove control characters.".into());
    }
    Ok(text.to_owned())
}

/// The profile fields a user may send, checked and cleaned.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct ProfileInput {
    pub display_name: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub goals: Option<String>,
    pub timezone: Option<String>,
    pub availability: Option<Vec<AvailabilityWindow>>,
    pub bio: Option<String>,
    pub avatar_url: Option<Option<String>>,
}

/// Checks every present field of a profile update.
pub fn profile(input: ProfileInput, errors: &mut Errors) -> ProfileUpdate {
    ProfileUpdate {
        display_name: input
            .display_name
            .and_then(|v| errors.check("display_name", line(&v, 1, 50))),
        subjects: input
            .subjects
            .and_then(|v| errors.check("subjects", subjects(v))),
        goals: input
            .goals
            .and_then(|v| errors.check("goals", text(&v, 1000))),
        timezone: input
            .timezone
            .and_then(|v| errors.check("timezone", timezone(&v))),
        availability: input
            .availability
            .and_then(|v| errors.check("availability", availability(v))),
        bio: input.bio.and_then(|v| errors.check("bio", text(&v, 2000))),
        avatar_url: input
            .avatar_url
            .and_then(|v| errors.check("avatar_url", v.map(|u| avatar_url(&u)).transpose())),
        ..ProfileUpdate::default()
    }
}

fn subjects(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.len() > 20 {
        return Err("List at most 20 subjects.".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let subject = line(&raw, 1, 60).map_err(|m| format!("Each subject: {m}"))?;
        if !out.iter().any(|s| s.eq_ignore_ascii_case(&subject)) {
            out.push(subject);
        }
    }
    Ok(out)
}

fn timezone(raw: &str) -> Result<String, String> {
    chrono_tz::Tz::from_str(raw.trim())
        .map(|tz| tz.name().to_owned())
        .map_err(|_| "Use an IANA timezone name such as Europe/Berlin or America/New_York.".into())
}

fn availability(windows: Vec<AvailabilityWindow>) -> Result<Vec<AvailabilityWindow>, String> {
    if windows.len() > 42 {
        return Err("List at most 42 weekly windows.".into());
    }
    if let Some(w) = windows.iter().find(|w| w.end <= w.start) {
        return Err(format!("A window on {:?} must end after it starts.", w.day).to_lowercase());
    }
    Ok(windows)
}

fn avatar_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let ok = url.len() <= 2048
        && (url.starts_with("https://") || url.starts_with("/uploads/"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(url.to_owned())
    } else {
        Err("Use an https:// image address of at most 2048 characters.".into())
    }
}

/// Frequently breached passwords long enough to pass the length rule.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "a123456789",
    "0987654321",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "qwertyuiop",
    "qwertyuiop123",
    "qwerty12345",
    "qwerty123456",
    "asdfghjkl1",
    "password12",
    "password123",
    "password1234",
    "password!1",
    "passw0rd123",
    "iloveyou123",
    "letmein123",
    "welcome123",
    "welcome1234",
    "administrator",
    "football123",
    "baseball123",
    "sunshine123",
    "princess123",
    "monkey12345",
    "dragon12345",
    "abcdefghij",
    "abcd1234567",
    "trustno1234",
    "changeme123",
    "superman123",
    "iloveyou1234",
    "starwars123",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized() {
        assert_eq!(email("  Ada@Example.COM "), Ok("ada@example.com".into()));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn weak_passwords_are_refused() {
        let e = "ada@example.com";
        assert!(password("correct horse battery", e).is_ok());
        assert!(password("short", e).is_err());
        assert!(password("aaaaaaaaaaaa", e).is_err());
        assert!(password("Password123", e).is_err());
        assert!(password("ada@example.com", e).is_err());
        assert!(password(&"x1y2".repeat(100), e).is_err());
    }

    #[test]
    fn profile_errors_name_their_fields() {
        let mut errors = Errors::default();
        let update = profile(
            ProfileInput {
                timezone: Some("Mars/Olympus".into()),
                bio: Some("x".repeat(2001)),
                subjects: Some(vec!["Maths".into(), "maths".into()]),
                ..ProfileInput::default()
            },
            &mut errors,
        );
        assert_eq!(update.subjects, Some(vec!["Maths".to_owned()]));
        let fields: Vec<String> = errors.0.iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["timezone", "bio"]);
    }
}
