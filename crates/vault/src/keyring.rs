//! The master keyring: one current key plus older keys kept to open secrets sealed before a
//! rotation. Stored as a text file, one `kid:base64key` line per key, current key first.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::VaultError;

pub(crate) type Key = Zeroizing<[u8; 32]>;

/// Where a keyring came from: read from an existing file, or generated just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringSource {
    Loaded,
    Generated,
}

/// The master keys. `Debug` shows key ids only.
pub struct Keyring {
    pub(crate) keys: Vec<(String, Key)>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).field("path", &self.path).finish()
    }
}

fn new_key() -> (String, Key) {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    (format!("mk{}", hex_lower(&id)), key)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keyring {
    /// A keyring held only in memory (tests, scratch knowledge bases).
    pub fn ephemeral() -> Self {
        Self { keys: vec![new_key()], path: None }
    }

    /// Loads the keyring at `path`, or generates a new one there (mode 0600) if the file does not
    /// exist. A file that exists but cannot be parsed is an error: we never silently replace a
    /// key, since every secret sealed under it would be lost.
    pub fn load_or_generate(path: &Path) -> Result<(Self, KeyringSource), VaultError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(&text, path)?, KeyringSource::Loaded)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self { keys: vec![new_key()], path: Some(path.to_owned()) };
                ring.save()?;
                Ok((ring, KeyringSource::Generated))
            }
            Err(source) => {
                Err(VaultError::KeyFileRead { path: path.display().to_string(), source })
            }
        }
    }

    /// Loads an existing keyring; a missing file is an error (fail closed).
    pub fn load(path: &Path) -> Result<Self, VaultError> {
        let text = fs::read_to_string(path).map_err(|source| VaultError::KeyFileRead {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, VaultError> {
        let malformed = |reason: &str| VaultError::KeyFileMalformed {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let mut keys = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (id, b64) = line.split_once(':').ok_or_else(|| malformed("expected `id:key`"))?;
            let raw = Zeroizing::new(
                STANDARD.decode(b64.trim()).map_err(|_| malformed("key is not base64"))?,
            );
            let bytes: [u8; 32] =
                raw.as_slice().try_into().map_err(|_| malformed("key is not 32 bytes"))?;
            keys.push((id.trim().to_owned(), Zeroizing::new(bytes)));
        }
        if keys.is_empty() {
            return Err(malformed("no keys"));
        }
        Ok(Self { keys, path: Some(path.to_owned()) })
    }

    fn save(&self) -> Result<(), VaultError> {
        let Some(path) = &self.path else { return Ok(()) };
        let write_err =
            |source| VaultError::KeyFileWrite { path: path.display().to_string(), source };
        let mut text = Zeroizing::new(String::from(
            "# EchoForge master keys: current first. Losing this file loses every stored secret.\n",
        ));
        for (id, key) in &self.keys {
            text.push_str(id);
            text.push(':');
            text.push_str(&STANDARD.encode(key.as_ref()));
            text.push('\n');
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = path.with_extension("tmp");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(&tmp).map_err(write_err)?;
        file.write_all(text.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        fs::rename(&tmp, path).map_err(write_err)
    }

    /// Adds a new current key (older keys stay, to open what they sealed) and saves the file.
    /// Returns the new key id.
    pub fn rotate(&mut self) -> Result<String, VaultError> {
        let key = new_key();
        let id = key.0.clone();
        self.keys.insert(0, key);
        self.save()?;
        Ok(id)
    }

    /// Drops every key but the current one (after all secrets were re-wrapped) and saves.
    pub fn retire_old_keys(&mut self) -> Result<(), VaultError> {
        self.keys.truncate(1);
        self.save()
    }

    /// The id of the key new secrets are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].0
    }

    pub(crate) fn current(&self) -> (&str, &Key) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    pub(crate) fn find(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    /// A key derived from the current master key for one purpose (e.g. signing access tokens),
    /// so the master key itself is never used for two things.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.current().1.as_ref())
            .expect("HMAC takes keys of any length");
        mac.update(b"echoforge/derive/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_keyring_is_saved_with_owner_only_permissions_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (ring, source) = Keyring::load_or_generate(&path).unwrap();
        assert_eq!(source, KeyringSource::Generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, source) = Keyring::load_or_generate(&path).unwrap();
        assert_eq!(source, KeyringSource::Loaded);
        assert_eq!(again.current_key_id(), ring.current_key_id());
        assert_eq!(again.derive("x"), ring.derive("x"));
        assert!(!format!("{ring:?}").contains(&STANDARD.encode(ring.current().1.as_ref())));
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, "mk1:not-base64!!\n").unwrap();
        assert!(matches!(
            Keyring::load_or_generate(&path),
            Err(VaultError::KeyFileMalformed { .. })
        ));
        assert!(matches!(
            Keyring::load(&dir.path().join("missing")),
            Err(VaultError::KeyFileRead { .. })
        ));
    }
}
