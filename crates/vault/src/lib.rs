//! The vault: everything that touches key material.
//!
//! - [`Keyring`]: the master key(s), loaded from (or generated into) a 0600 file, with a key id so
//!   the master key can be rotated without re-encrypting every secret.
//! - [`Keyring::seal`]/[`Keyring::open`]: envelope encryption (AES-256-GCM; a fresh data key per
//!   secret, wrapped by the master key). Fails closed: an unknown key id or a tampered ciphertext
//!   is an error, never a plaintext fallback.
//! - [`password`]: argon2id hashing and verification.
//! - [`token`]: random opaque tokens, their SHA-256 digests for storage, and signed access tokens.

mod envelope;
mod keyring;
pub mod password;
pub mod token;

pub use keyring::{Keyring, KeyringSource};

/// What can go wrong in the vault. Messages never include key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key file {path} could not be read: {source}")]
    KeyFileRead { path: String, source: std::io::Error },
    #[error("master key file {path} could not be written: {source}")]
    KeyFileWrite { path: String, source: std::io::Error },
    #[error("master key file {path} is malformed: {reason}")]
    KeyFileMalformed { path: String, reason: String },
    #[error("secret was sealed with master key `{0}`, which this keyring does not hold")]
    UnknownKey(String),
    #[error("sealed secret is malformed")]
    Malformed,
    #[error("secret could not be decrypted: wrong key or tampered ciphertext")]
    Decrypt,
    #[error("password hashing failed")]
    Hash,
}
