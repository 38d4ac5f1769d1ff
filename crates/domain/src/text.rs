//! Newtypes that parse and validate text at the edge: once you hold an `Email`, it is one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a piece of text was refused; the message is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is not a valid email address")]
    InvalidEmail,
    #[error("must be at least 8 characters long")]
    PasswordTooShort,
    #[error("must be at most 256 characters long")]
    PasswordTooLong,
    #[error("must contain at least one uppercase letter")]
    PasswordNeedsUppercase,
    #[error("must contain at least one digit")]
    PasswordNeedsDigit,
    #[error("must be 1–64 characters of lowercase letters, digits and single dashes")]
    InvalidSlug,
}

/// An email address, trimmed and lower-cased so uniqueness is case-insensitive.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(TextError::InvalidEmail)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
            && !domain.contains('@');
        if ok { Ok(Self(s)) } else { Err(TextError::InvalidEmail) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A new password that meets the policy: at least 8 characters, one uppercase letter, one
/// digit. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        if raw.chars().count() < 8 {
            return Err(TextError::PasswordTooShort);
        }
        if raw.len() > 256 {
            return Err(TextError::PasswordTooLong);
        }
        if !raw.chars().any(char::is_uppercase) {
            return Err(TextError::PasswordNeedsUppercase);
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(TextError::PasswordNeedsDigit);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A URL-safe identifier: lowercase letters, digits and single dashes, 1–64 long.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if ok { Ok(Self(raw.to_owned())) } else { Err(TextError::InvalidSlug) }
    }

    /// Makes a slug out of free text ("Sales Assistant!" → "sales-assistant").
    pub fn slugify(text: &str) -> Self {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= 60 {
                break;
            }
        }
        let trimmed = out.trim_end_matches('-');
        if trimmed.is_empty() { Self("agent".to_owned()) } else { Self(trimmed.to_owned()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_to_lower_case() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in
            ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@ex..com"]
        {
            assert_eq!(Email::parse(bad), Err(TextError::InvalidEmail), "{bad}");
        }
    }

    #[test]
    fn password_policy_names_the_missing_part() {
        assert_eq!(Password::parse("Short1").unwrap_err(), TextError::PasswordTooShort);
        assert_eq!(Password::parse("alllower1").unwrap_err(), TextError::PasswordNeedsUppercase);
        assert_eq!(Password::parse("NoDigitsHere").unwrap_err(), TextError::PasswordNeedsDigit);
        assert!(Password::parse("Correct1horse").is_ok());
        assert!(!format!("{:?}", Password::parse("Correct1horse").unwrap()).contains("horse"));
    }

    #[test]
    fn slugs_are_checked_and_made() {
        assert!(Slug::parse("sales-assistant").is_ok());
        assert!(Slug::parse("Sales").is_err());
        assert!(Slug::parse("-a").is_err());
        assert!(Slug::parse("a--b").is_err());
        assert_eq!(Slug::slugify("Sales Assistant!").as_str(), "sales-assistant");
        assert_eq!(Slug::slugify("!!!").as_str(), "agent");
    }
}
