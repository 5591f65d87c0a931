//! Target passwords at rest: AES-256-GCM (ring) under a ring of master keys.
//!
//! - Every seal draws a fresh random 96-bit nonce from the system RNG; nonces are never derived or
//!   counted, and at well under 10^6 seals per key the NIST SP 800-38D bound of 2^32 is out of reach.
//! - The associated data binds a ciphertext to its table, row, column and key id, so a sealed value copied
//!   to another target (or relabelled with another key id) fails to open.
//! - Keys come from `MIGRATE_HUB_MASTER_KEYS` (`id:hex, id:hex, …`, the last one is current) or a key file
//!   with one `id:hex` per line. Older keys stay in the ring to open what they sealed until
//!   [`rotate`] has resealed everything under the current one; no secret is unreadable at any moment.
//! - Plaintext lives only in [`SecretString`]s; errors and `Debug` output name key ids, never material.

use std::fmt;
use std::path::Path;

use domain::ids::TargetId;
use domain::model::SealedSecret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use storage::{PageRequest, PgConnection, StorageError};

/// Why a key ring could not be built. Never contains key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no master key given")]
    Empty,
    #[error("master key #{position}: expected `id:hex` with a 1-64 character id of letters, digits, `-`, `_` or `.`")]
    Malformed { position: usize },
    #[error("master key {id:?}: expected 64 hex digits (32 random bytes, e.g. `openssl rand -hex 32`)")]
    BadLength { id: String },
    #[error("master key id {id:?} is given twice")]
    Duplicate { id: String },
    #[error("cannot read the master key file: {0}")]
    File(std::io::ErrorKind),
}

/// Why sealing or opening failed. Never contains plaintext or key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the secret was sealed under key {0:?}, which is not among the configured master keys")]
    UnknownKey(String),
    #[error("the sealed secret does not open under key {0:?}: it was altered, or belongs to another row")]
    Tampered(String),
    #[error("the opened secret is not UTF-8")]
    NotText,
    #[error("the system random number generator failed")]
    Random,
}

struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The configured master keys; the last one seals, every one opens what it sealed.
pub struct KeyRing {
    keys: Vec<MasterKey>,
    rng: SystemRandom,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyRing").field("key_ids", &ids).finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Parses `id:hex` entries separated by commas, semicolons or line breaks (blank entries and lines
    /// starting with `#` are skipped); the last entry is the current key.
    pub fn parse(spec: &SecretString) -> Result<Self, KeyError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        let entries = spec
            .expose_secret()
            .split([',', ';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let (id, material) = entry.split_once(':').ok_or(KeyError::Malformed { position })?;
            let id = id.trim();
            let valid_id = (1..=64).contains(&id.len())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_id {
                return Err(KeyError::Malformed { position });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyError::Duplicate { id: id.to_owned() });
            }
            let bytes = hex::decode(material.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| KeyError::BadLength { id: id.to_owned() })?;
            let unbound =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::BadLength { id: id.to_owned() })?;
            keys.push(MasterKey { id: id.to_owned(), key: LessSafeKey::new(unbound) });
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(KeyRing { keys, rng: SystemRandom::new() })
    }

    /// Reads a key file: one `id:hex` per line, the last one current.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File(e.kind()))?;
        Self::parse(&SecretString::from(text))
    }

    /// The id of the key new seals use.
    pub fn current_id(&self) -> &str {
        self.current().id.as_str()
    }

    fn current(&self) -> &MasterKey {
        // `parse` refuses an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    /// Seals `password` for target `target` under the current key.
    pub fn seal(&self, target: TargetId, password: &SecretString) -> Result<SealedSecret, SealError> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buffer = password.expose_secret().as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(target, &key.id)),
                &mut buffer,
            )
            .map_err(|_| SealError::Random)?;
        Ok(SealedSecret { key_id: key.id.clone(), nonce, ciphertext: buffer })
    }

    /// Opens what [`seal`](Self::seal) sealed for the same target.
    pub fn open(&self, target: TargetId, sealed: &SealedSecret) -> Result<SecretString, SealError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let mut buffer = sealed.ciphertext.clone();
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(associated_data(target, &key.id)),
                &mut buffer,
            )
            .map_err(|_| SealError::Tampered(sealed.key_id.clone()))?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError::NotText)?.to_owned();
        Ok(SecretString::from(text))
    }
}

/// What a ciphertext is bound to: format version, table, row, column and key id.
fn associated_data(target: TargetId, key_id: &str) -> Vec<u8> {
    format!("migrate-hub:v1:db_targets:{target}:secret:{key_id}").into_bytes()
}

/// What [`rotate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets resealed under the current key.
    pub resealed: u64,
    /// Secrets changed by someone else meanwhile (their new value is already under a current key).
    pub raced: u64,
}

/// Why [`rotate`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("target {target}: {source}")]
    Seal { target: TargetId, source: SealError },
}

/// Reseals every target secret not under the current key, one compare-and-set per target: the stored
/// value is replaced only if it is still the one opened, so a concurrent change is never overwritten, and
/// at every moment each secret opens under a key of the ring. Run it before removing an old key.
pub async fn rotate(conn: &mut PgConnection, ring: &KeyRing) -> Result<Rotation, RotateError> {
    let mut done = Rotation::default();
    let mut page = PageRequest::first(200);
    loop {
        let ids = storage::targets::sealed_not_under_key(conn, ring.current_id(), &page).await?;
        for target in &ids.items {
            let Some(old) = storage::targets::sealed_secret(conn, *target).await? else { continue };
            if old.key_id == ring.current_id() {
                continue;
            }
            let password = ring.open(*target, &old).map_err(|source| RotateError::Seal { target: *target, source })?;
            let new = ring.seal(*target, &password).map_err(|source| RotateError::Seal { target: *target, source })?;
            if storage::targets::reseal_secret(conn, *target, &old, &new).await? {
                done.resealed += 1;
            } else {
                done.raced += 1;
            }
        }
        match ids.next {
            Some(next) => page = PageRequest::after(next, 200),
            None => return Ok(done),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const K1: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const K2: &str = "00000000000000000000000000000000000000000000000000000000000000ff";

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(&SecretString::from(spec.to_owned())).unwrap()
    }

    #[test]
    fn seals_open_for_the_same_target_only() {
        let ring = ring(&format!("old:{K1}, new:{K2}"));
        let (a, b) = (TargetId::new(), TargetId::new());
        let sealed = ring.seal(a, &SecretString::from("s3cret")).unwrap();
        assert_eq!(sealed.key_id, "new");
        assert_eq!(ring.open(a, &sealed).unwrap().expose_secret(), "s3cret");
        // Copied to another row: refused.
        assert_eq!(ring.open(b, &sealed).unwrap_err(), SealError::Tampered("new".into()));
        // A flipped bit anywhere: refused.
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(ring.open(a, &altered).is_err());
        let mut altered = sealed.clone();
        altered.nonce[11] ^= 1;
        assert!(ring.open(a, &altered).is_err());
        // Relabelled with the other key's id: refused.
        assert!(ring.open(a, &SealedSecret { key_id: "old".into(), ..sealed.clone() }).is_err());
        // A fresh nonce every time.
        let again = ring.seal(a, &SecretString::from("s3cret")).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn old_keys_open_what_they_sealed_and_unknown_keys_are_named() {
        let target = TargetId::new();
        let sealed = ring(&format!("old:{K1}")).seal(target, &SecretString::from("pw")).unwrap();
        assert_eq!(ring(&format!("old:{K1}\nnew:{K2}")).open(target, &sealed).unwrap().expose_secret(), "pw");
        assert_eq!(ring(&format!("new:{K2}")).open(target, &sealed).unwrap_err(), SealError::UnknownKey("old".into()));
    }

    #[test]
    fn bad_key_specs_are_refused_without_echoing_material() {
        let parse = |s: &str| KeyRing::parse(&SecretString::from(s.to_owned())).unwrap_err();
        assert_eq!(parse(""), KeyError::Empty);
        assert_eq!(parse(" # only a comment\n"), KeyError::Empty);
        assert_eq!(parse(K1), KeyError::Malformed { position: 1 });
        assert_eq!(parse(&format!("a:{K1},b c:{K2}")), KeyError::Malformed { position: 2 });
        assert_eq!(parse("a:abcd"), KeyError::BadLength { id: "a".into() });
        assert_eq!(parse(&format!("a:{K1}zz")), KeyError::BadLength { id: "a".into() });
        assert_eq!(parse(&format!("a:{K1},a:{K2}")), KeyError::Duplicate { id: "a".into() });
        let shown = format!("{:?} {}", parse("a:abcd"), parse("a:abcd"));
        assert!(!shown.contains("abcd"), "{shown}");
        assert!(!format!("{:?}", ring(&format!("a:{K1}"))).contains(K1));
    }
}
