//! Password hashing with argon2id (the crate's defaults: m=19 MiB, t=2, p=1, per OWASP).
//! Both functions are CPU-heavy by design: call them from a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

use crate::VaultError;

/// Hashes a password into a self-describing PHC string (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, VaultError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| VaultError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| VaultError::Hash)
}

/// Checks a password against a stored hash. A malformed stored hash verifies as false.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash of a random password, to verify against when the account does not exist, so that
/// "no such user" and "wrong password" take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("dummy-Password-1").expect("hashing a constant works"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = super::hash("Correct1horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("Correct1horse", &h));
        assert!(!super::verify("Correct1horsf", &h));
        assert!(!super::verify("Correct1horse", "not a hash"));
        assert_ne!(h, super::hash("Correct1horse").unwrap(), "salted");
    }
}
