//! The server secret and the keys derived from it.
//!
//! One secret (`MIGRATE_HUB_SERVER_SECRET`, at least 32 random bytes as hex) is configured on every
//! server replica; HKDF-SHA256 derives from it, under distinct labels, the 64-byte session cookie key, the
//! HMAC key that hashes API tokens and the audit chain key. Keys for different purposes are therefore
//! independent, and `create-admin` (a separate process) hashes the tokens it prints exactly as the server
//! will.
//!
//! The audit chain key is needed by every process that appends to the audit log: the server, its operator
//! commands and the workers (which record a run's start and end). It is derived from the server secret
//! rather than from the master keys because it must never change: audit rows cannot be re-keyed, so a
//! key that rotates (as master keys do) would leave old rows unverifiable once it is retired.

use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// Why the server secret was refused. Never contains the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerSecretError {
    #[error("the server secret must be hex digits only (e.g. `openssl rand -hex 32`)")]
    NotHex,
    #[error("the server secret is too short: {bytes} bytes, at least 32 are needed (`openssl rand -hex 32`)")]
    TooShort { bytes: usize },
}

/// The configured server secret, from which every server-side key is derived.
pub struct ServerSecret {
    prk: hkdf::Prk,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl ServerSecret {
    /// Parses a hex secret of at least 32 bytes.
    pub fn parse(secret: &SecretString) -> Result<Self, ServerSecretError> {
        let bytes = hex::decode(secret.expose_secret().trim()).map_err(|_| ServerSecretError::NotHex)?;
        if bytes.len() < 32 {
            return Err(ServerSecretError::TooShort { bytes: bytes.len() });
        }
        Ok(Self { prk: hkdf::Salt::new(hkdf::HKDF_SHA256, b"migrate-hub server secret v1").extract(&bytes) })
    }

    /// A fresh random secret: for tests and `cargo xtask dev`, never for a deployment with replicas.
    pub fn random() -> Result<(Self, SecretString), ServerSecretError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| ServerSecretError::TooShort { bytes: 0 })?;
        let text = SecretString::from(hex::encode(bytes));
        Ok((Self::parse(&text)?, text))
    }

    fn derive(&self, label: &'static [u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let info = [label];
        // `expand` fails only when len exceeds 255 hash lengths; ours are 32 and 64.
        if let Ok(okm) = self.prk.expand(&info, Len(len)) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    /// The 64-byte key that encrypts and signs session cookies.
    pub fn cookie_key(&self) -> [u8; 64] {
        let mut key = [0u8; 64];
        key.copy_from_slice(&self.derive(b"session cookie", 64));
        key
    }

    /// The HMAC-SHA256 key that hashes API tokens.
    pub fn token_key(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.derive(b"api token hash", 32))
    }

    /// The key of the audit log's hash chain, for whatever writes or verifies the log (`app::Hub`, the worker's
    /// settings).
    pub fn audit_chain_key(&self) -> audit::ChainKey {
        audit::ChainKey::new(&self.derive(b"audit chain", 32))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn short_or_non_hex_secrets_are_refused_without_echoing_them() {
        let err = ServerSecret::parse(&secret("abcd")).unwrap_err();
        assert_eq!(err, ServerSecretError::TooShort { bytes: 2 });
        let err = ServerSecret::parse(&secret("zz-not-hex-zz")).unwrap_err();
        assert!(!err.to_string().contains("zz-not-hex"));
    }

    #[test]
    fn derived_keys_are_stable_per_secret_and_differ_between_purposes_and_secrets() {
        let a = ServerSecret::parse(&secret(&"11".repeat(32))).unwrap();
        let a2 = ServerSecret::parse(&secret(&"11".repeat(32))).unwrap();
        let b = ServerSecret::parse(&secret(&"12".repeat(32))).unwrap();
        assert_eq!(a.cookie_key(), a2.cookie_key());
        assert_ne!(a.cookie_key(), b.cookie_key());
        assert_ne!(a.cookie_key()[..32], a.derive(b"api token hash", 32)[..]);
        assert_ne!(a.derive(b"audit chain", 32), a.derive(b"api token hash", 32));
        assert_ne!(a.cookie_key(), [0u8; 64]);
    }
}
