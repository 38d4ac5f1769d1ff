//! Envelope encryption: each secret gets its own random data key (DEK); the secret is encrypted
//! with the DEK and the DEK is wrapped with the master key. The sealed form names the master key
//! id, so a rotation only has to re-wrap DEKs.
//!
//! Sealed form: `v1.<key id>.<base64 nonce‖wrapped DEK>.<base64 nonce‖ciphertext>`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{Keyring, VaultError};

const VERSION: &str = "v1";

fn encrypt(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encryption of in-memory data cannot fail");
    let mut out = Vec::with_capacity(12 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn decrypt(key: &[u8; 32], blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    if blob.len() < 12 + 16 {
        return Err(VaultError::Malformed);
    }
    let (nonce, ct) = blob.split_at(12);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| VaultError::Decrypt)
}

struct Parts<'a> {
    key_id: &'a str,
    wrapped: Vec<u8>,
    body: Vec<u8>,
}

fn split(sealed: &str) -> Result<Parts<'_>, VaultError> {
    let mut it = sealed.split('.');
    let (Some(VERSION), Some(key_id), Some(wrapped), Some(body), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err(VaultError::Malformed);
    };
    Ok(Parts {
        key_id,
        wrapped: B64.decode(wrapped).map_err(|_| VaultError::Malformed)?,
        body: B64.decode(body).map_err(|_| VaultError::Malformed)?,
    })
}

impl Keyring {
    /// Encrypts `plaintext` for storage. `context` (e.g. `"connection:con_…"`) is bound to the
    /// ciphertext as associated data, so a sealed value copied to another row will not open.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let (key_id, master) = self.current();
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(dek.as_mut());
        let wrapped = encrypt(master, dek.as_ref(), key_id.as_bytes());
        let body = encrypt(&dek, plaintext, context.as_bytes());
        format!("{VERSION}.{key_id}.{}.{}", B64.encode(wrapped), B64.encode(body))
    }

    /// Decrypts a value produced by [`Keyring::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let parts = split(sealed)?;
        let master = self
            .find(parts.key_id)
            .ok_or_else(|| VaultError::UnknownKey(parts.key_id.to_owned()))?;
        let dek = Zeroizing::new(decrypt(master, &parts.wrapped, parts.key_id.as_bytes())?);
        let dek: &[u8; 32] = dek.as_slice().try_into().map_err(|_| VaultError::Malformed)?;
        decrypt(dek, &parts.body, context.as_bytes()).map(Zeroizing::new)
    }

    /// Re-wraps a sealed value's data key under the current master key (the secret itself is
    /// not re-encrypted). Returns `None` when it is already under the current key.
    pub fn rewrap(&self, sealed: &str) -> Result<Option<String>, VaultError> {
        let parts = split(sealed)?;
        let (current_id, current) = self.current();
        if parts.key_id == current_id {
            return Ok(None);
        }
        let old = self
            .find(parts.key_id)
            .ok_or_else(|| VaultError::UnknownKey(parts.key_id.to_owned()))?;
        let dek = Zeroizing::new(decrypt(old, &parts.wrapped, parts.key_id.as_bytes())?);
        let wrapped = encrypt(current, &dek, current_id.as_bytes());
        Ok(Some(format!(
            "{VERSION}.{current_id}.{}.{}",
            B64.encode(wrapped),
            B64.encode(&parts.body)
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::Keyring;
    use crate::VaultError;

    #[test]
    fn sealed_secrets_open_only_with_the_same_context() {
        let ring = Keyring::ephemeral();
        let sealed = ring.seal(b"sk-live-123", "connection:a");
        assert!(!sealed.contains("sk-live"));
        assert_eq!(ring.open(&sealed, "connection:a").unwrap().as_slice(), b"sk-live-123");
        assert!(matches!(ring.open(&sealed, "connection:b"), Err(VaultError::Decrypt)));
    }

    #[test]
    fn another_keyring_cannot_open_a_secret() {
        let sealed = Keyring::ephemeral().seal(b"x", "c");
        assert!(matches!(Keyring::ephemeral().open(&sealed, "c"), Err(VaultError::UnknownKey(_))));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::ephemeral();
        let sealed = ring.seal(b"secret", "c");
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(ring.open(&tampered, "c").is_err());
        assert!(matches!(ring.open("v1.x", "c"), Err(VaultError::Malformed)));
    }

    #[test]
    fn rotation_rewraps_without_losing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (mut ring, _) = Keyring::load_or_generate(&path).unwrap();
        let old_id = ring.current_key_id().to_owned();
        let sealed = ring.seal(b"token", "c");
        let new_id = ring.rotate().unwrap();
        assert_ne!(old_id, new_id);
        assert_eq!(ring.open(&sealed, "c").unwrap().as_slice(), b"token");
        let rewrapped = ring.rewrap(&sealed).unwrap().expect("sealed under the old key");
        assert!(rewrapped.starts_with(&format!("v1.{new_id}.")));
        assert_eq!(ring.rewrap(&rewrapped).unwrap(), None);
        ring.retire_old_keys().unwrap();
        let reloaded = Keyring::load(&path).unwrap();
        assert_eq!(reloaded.open(&rewrapped, "c").unwrap().as_slice(), b"token");
        assert!(matches!(reloaded.open(&sealed, "c"), Err(VaultError::UnknownKey(_))));
    }
}
