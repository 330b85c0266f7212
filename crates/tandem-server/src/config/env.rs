//! Reading one variable: every section parses through [`Env`], so an unset
//! or blank variable takes its default, and a bad value is an error naming
//! the variable. Defaults are typed values (usually the engine's own
//! `Default`), so each default is written once.

use std::{fmt::Display, ops::RangeInclusive, str::FromStr, time::Duration};

use tandem_core::SecretString;

use super::ConfigError;

/// The variables, through a lookup (the environment, or a map in tests).
pub struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A secret (never echoed in errors or `Debug`).
    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    /// The value, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// The error for `name` set to `value`.
    pub fn error(&self, name: &'static str, value: &str, problem: &'static str) -> ConfigError {
        ConfigError {
            name,
            value: value.to_owned(),
            problem,
        }
    }

    /// Parsed with `FromStr`, or `default` when unset.
    pub fn parse<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        problem: &'static str,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| self.error(name, &value, problem)),
        }
    }

    /// Parsed with `FromStr` if set.
    pub fn optional<T: FromStr>(
        &self,
        name: &'static str,
        problem: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .trim()
                    .parse()
                    .map_err(|_| self.error(name, &value, problem))
            })
            .transpose()
    }

    /// A positive number.
    pub fn count<T: FromStr + Default + PartialEq + Display>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        let n = self.parse(name, default, "expected a positive number")?;
        if n == T::default() {
            return Err(self.error(name, &n.to_string(), "expected a positive number"));
        }
        Ok(n)
    }

    /// A comma-separated list of URLs, each starting with one of `schemes`.
    pub fn urls(&self, name: &'static str, schemes: &[&str]) -> Result<Vec<String>, ConfigError> {
        let urls = self.items(name);
        match urls
            .iter()
            .find(|u| !schemes.iter().any(|s| u.starts_with(s)))
        {
            Some(bad) => Err(self.error(
                name,
                bad,
                "expected URLs like stun:host:3478 or turn:host:3478?transport=udp",
            )),
            None => Ok(urls),
        }
    }

    /// The non-empty items of a comma-separated list (none when unset).
    pub fn items(&self, name: &str) -> Vec<String> {
        let list = self.get(name).unwrap_or_default();
        list.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A comma-separated list of positive numbers, or `default`.
    pub fn list<T: FromStr + PartialEq + Default>(
        &self,
        name: &'static str,
        default: Vec<T>,
    ) -> Result<Vec<T>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let items: Option<Vec<T>> = value
            .split(',')
            .map(|v| v.trim().parse::<T>().ok().filter(|n| *n != T::default()))
            .collect();
        items
            .filter(|l| !l.is_empty())
            .ok_or_else(|| self.error(name, &value, "expected positive numbers like 640,750,828"))
    }

    /// `low-high`, both ports, low ≤ high.
    pub fn port_range(
        &self,
        name: &'static str,
        default: RangeInclusive<u16>,
    ) -> Result<RangeInclusive<u16>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let range = value.split_once('-').and_then(|(low, high)| {
            let (low, high) = (
                low.trim().parse::<u16>().ok()?,
                high.trim().parse::<u16>().ok()?,
            );
            (low > 0 && low <= high).then_some(low..=high)
        });
        range.ok_or_else(|| self.error(name, &value, "expected a port range like 49152-65535"))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self
            .get(name)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(self.error(name, other, "expected true or false")),
        }
    }

    /// A positive duration like `90s`, `15m`, `12h` or `30d`.
    pub fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        parse_duration(&value).ok_or_else(|| {
            self.error(
                name,
                &value,
                "expected a duration like 90s, 15m, 12h or 30d",
            )
        })
    }
}

/// Parses `90s`, `15m`, `12h`, `30d` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}
