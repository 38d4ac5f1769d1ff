//! Opaque tokens (API keys, refresh tokens, email links) and signed access tokens.
//!
//! Opaque tokens are 256 random bits; only their SHA-256 digest is stored, so a leaked database
//! does not leak usable tokens, and lookup is one indexed equality. (A slow hash buys nothing
//! for high-entropy secrets and would cost on every request.)
//!
//! Access tokens are compact JWTs (HS256) with the claims the hot path needs; they are verified
//! without touching the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// A new random token: `prefix` followed by 43 URL-safe characters.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", B64.encode(bytes))
}

/// The storage digest of a token (hex SHA-256).
pub fn digest(token: &str) -> String {
    let out = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in out {
        s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
        s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
    }
    s
}

/// Why a signed token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignedTokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
}

/// Signs and verifies HS256 JWTs with one key.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"HS256","typ":"JWT"}

/// Claims every signed token carries.
pub trait Expiring {
    /// Expiry, in epoch milliseconds.
    fn expires_at_ms(&self) -> i64;
}

impl Signer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { mac: <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length") }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut token = String::with_capacity(HEADER.len() + payload.len() * 2 + 48);
        token.push_str(HEADER);
        token.push('.');
        B64.encode_string(&payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        B64.encode_string(sig, &mut token);
        token
    }

    /// Verifies the signature and expiry (`now_ms`) and returns the claims.
    pub fn verify<C: DeserializeOwned + Expiring>(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<C, SignedTokenError> {
        let (signed, sig) = token.rsplit_once('.').ok_or(SignedTokenError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(SignedTokenError::Malformed)?;
        if header != HEADER {
            return Err(SignedTokenError::Malformed);
        }
        let sig = B64.decode(sig).map_err(|_| SignedTokenError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).map_err(|_| SignedTokenError::BadSignature)?;
        let payload = B64.decode(payload).map_err(|_| SignedTokenError::Malformed)?;
        let claims: C =
            serde_json::from_slice(&payload).map_err(|_| SignedTokenError::Malformed)?;
        if claims.expires_at_ms() <= now_ms {
            return Err(SignedTokenError::Expired);
        }
        Ok(claims)
    }
}

/// Constant-time string equality (for comparing secrets such as the service secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
    }
    impl Expiring for Claims {
        fn expires_at_ms(&self) -> i64 {
            self.exp
        }
    }

    #[test]
    fn generated_tokens_are_prefixed_random_and_digest_stably() {
        let a = generate("ef_");
        let b = generate("ef_");
        assert!(a.starts_with("ef_") && a.len() == 3 + 43);
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn signed_tokens_verify_and_reject_forgery_and_expiry() {
        let signer = Signer::new(&[7; 32]);
        let claims = Claims { sub: "usr_1".into(), exp: 2_000 };
        let token = signer.sign(&claims);
        assert_eq!(signer.verify::<Claims>(&token, 1_000).unwrap(), claims);
        assert_eq!(signer.verify::<Claims>(&token, 2_000).unwrap_err(), SignedTokenError::Expired);
        let other = Signer::new(&[8; 32]);
        assert_eq!(
            other.verify::<Claims>(&token, 1_000).unwrap_err(),
            SignedTokenError::BadSignature
        );
        let forged = format!(
            "{HEADER}.{}.{}",
            B64.encode(br#"{"sub":"usr_2","exp":9999}"#),
            token.rsplit_once('.').unwrap().1
        );
        assert_eq!(
            signer.verify::<Claims>(&forged, 1_000).unwrap_err(),
            SignedTokenError::BadSignature
        );
        assert_eq!(
            signer.verify::<Claims>("garbage", 1_000).unwrap_err(),
            SignedTokenError::Malformed
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
