//! Target passwords at rest: AES-256-GCM (ring) under a ring of master keys.
//!
//! - Every seal draws a fresh random 96-bit nonce from the system RNG; nonces are never derived or
//!   counted, and at well under 10^6 seals per key the NIST SP 800-38D bound of 2^32 is out of reach.
//! - The associated data binds a ciphertext to its table, row, column and key id, and to what the password
//!   was entered for: the target's engine, host, port, database and user ([`Binding`]). A sealed value
//!   copied to another target, relabelled with another key id, or left behind when the target was pointed
//!   at another server fails to open, so a "write-only" password can never be sent to a host it was not
//!   entered for (the use case that changes those fields also drops the secret, and says so).
//! - The associated data is versioned. `v2` (the binding above) is what every seal writes; `v1` (table,
//!   row, column and key id only) is what seals made before it used. Those still open, so upgrading loses
//!   no password, until they are re-entered or [`rotate`] reseals them as `v2` (bound to the target's
//!   fields at that moment). They are not dropped by the migration that introduced `v2`: that would stop
//!   every run until an admin re-entered each password, unaudited (a migration cannot write the keyed audit
//!   chain); and a `v1` seal is exposed only to someone who can already write the tool database directly,
//!   because changing a target's connection through the hub drops its sealed secret whatever its version.
//! - Keys come from `MIGRATE_HUB_MASTER_KEYS` (`id:hex, id:hex, …`, the last one is current) or a key file
//!   with one `id:hex` per line. Older keys stay in the ring to open what they sealed until
//!   [`rotate`] has resealed everything under the current one; no secret is unreadable at any moment.
//! - Plaintext lives only in [`SecretString`]s; errors and `Debug` output name key ids, never material.

use std::fmt;
use std::path::Path;

use domain::enums::Engine;
use domain::ids::TargetId;
use domain::model::{SealedSecret, Target, TargetSpec};
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

/// What a sealed password is bound to: the target row and the connection it was entered for. Changing
/// any of these makes the seal fail to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub target: TargetId,
    pub engine: Engine,
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub username: &'a str,
}

impl<'a> Binding<'a> {
    /// The binding of a stored target, as it is now.
    pub fn of(target: &'a Target) -> Self {
        Binding {
            target: target.id,
            engine: target.engine,
            host: &target.host,
            port: target.port,
            database: &target.database,
            username: &target.username,
        }
    }

    /// The binding of target `id` with connection settings `spec` (when creating or changing it).
    pub fn of_spec(id: TargetId, spec: &'a TargetSpec) -> Self {
        Binding {
            target: id,
            engine: spec.engine,
            host: &spec.host,
            port: spec.port,
            database: &spec.database,
            username: &spec.username,
        }
    }
}

/// Which associated-data layout a seal opened under (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AadVersion {
    /// Table, row, column and key id: seals made before the connection binding.
    V1,
    /// `V1` plus engine, host, port, database and user.
    V2,
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

    /// Seals `password` under the current key, bound to `binding`.
    pub fn seal(&self, binding: &Binding<'_>, password: &SecretString) -> Result<SealedSecret, SealError> {
        self.seal_with(password, |key_id| associated_data_v2(binding, key_id))
    }

    /// Seals `secret` under the current key with the associated data `aad` makes from the key's id.
    fn seal_with(&self, secret: &SecretString, aad: impl FnOnce(&str) -> Vec<u8>) -> Result<SealedSecret, SealError> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buffer = secret.expose_secret().as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(&key.id)), &mut buffer)
            .map_err(|_| SealError::Random)?;
        Ok(SealedSecret { key_id: key.id.clone(), nonce, ciphertext: buffer })
    }

    /// The key `sealed` names.
    fn key_of(&self, sealed: &SealedSecret) -> Result<&MasterKey, SealError> {
        self.keys.iter().find(|k| k.id == sealed.key_id).ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))
    }

    /// Opens what [`seal`](Self::seal) sealed for the same binding (or, for seals made before bindings
    /// existed, for the same target row).
    pub fn open(&self, binding: &Binding<'_>, sealed: &SealedSecret) -> Result<SecretString, SealError> {
        self.open_versioned(binding, sealed).map(|(password, _)| password)
    }

    /// [`open`](Self::open), also saying which associated-data layout the seal used.
    pub fn open_versioned(
        &self,
        binding: &Binding<'_>,
        sealed: &SealedSecret,
    ) -> Result<(SecretString, AadVersion), SealError> {
        let key = self.key_of(sealed)?;
        // A v2 seal never opens under the v1 layout nor the reverse (the associated data differ), so
        // trying both in turn cannot make a seal open for a binding it was not made for.
        let attempts = [
            (AadVersion::V2, associated_data_v2(binding, &key.id)),
            (AadVersion::V1, associated_data_v1(binding.target, &key.id)),
        ];
        for (version, aad) in attempts {
            let mut buffer = sealed.ciphertext.clone();
            if let Ok(plain) =
                key.key.open_in_place(Nonce::assume_unique_for_key(sealed.nonce), Aad::from(aad), &mut buffer)
            {
                let text = std::str::from_utf8(plain).map_err(|_| SealError::NotText)?.to_owned();
                return Ok((SecretString::from(text), version));
            }
        }
        Err(SealError::Tampered(sealed.key_id.clone()))
    }

    /// Seals `secret` under the current key for one column of one row (e.g. `webhooks`, its id,
    /// `secret`): it opens for that row and column only.
    pub fn seal_row(
        &self,
        table: &str,
        row: &dyn fmt::Display,
        column: &str,
        secret: &SecretString,
    ) -> Result<SealedSecret, SealError> {
        self.seal_with(secret, |key_id| associated_data_row(table, row, column, key_id))
    }

    /// Opens what [`seal_row`](Self::seal_row) sealed for the same table, row and column.
    pub fn open_row(
        &self,
        table: &str,
        row: &dyn fmt::Display,
        column: &str,
        sealed: &SealedSecret,
    ) -> Result<SecretString, SealError> {
        let key = self.key_of(sealed)?;
        let mut buffer = sealed.ciphertext.clone();
        let aad = Aad::from(associated_data_row(table, row, column, &key.id));
        let plain = key
            .key
            .open_in_place(Nonce::assume_unique_for_key(sealed.nonce), aad, &mut buffer)
            .map_err(|_| SealError::Tampered(sealed.key_id.clone()))?;
        Ok(SecretString::from(std::str::from_utf8(plain).map_err(|_| SealError::NotText)?.to_owned()))
    }
}

/// The associated data of a secret sealed for one column of one row of another table than `db_targets`.
fn associated_data_row(table: &str, row: &dyn fmt::Display, column: &str, key_id: &str) -> Vec<u8> {
    format!("migrate-hub:row:{table}:{row}:{column}:{key_id}").into_bytes()
}

/// The v1 associated data: format version, table, row, column and key id.
fn associated_data_v1(target: TargetId, key_id: &str) -> Vec<u8> {
    format!("migrate-hub:v1:db_targets:{target}:secret:{key_id}").into_bytes()
}

/// The v2 associated data: the v1 fields, then engine, host, port, database and user, each
/// length-prefixed so that no two bindings share an encoding (a host ending in what a database begins with).
fn associated_data_v2(binding: &Binding<'_>, key_id: &str) -> Vec<u8> {
    let mut aad = format!("migrate-hub:v2:db_targets:{}:secret:{key_id}", binding.target).into_bytes();
    let port = binding.port.to_string();
    for field in [binding.engine.as_str(), binding.host, port.as_str(), binding.database, binding.username] {
        aad.push(0);
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
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
    #[error("webhook {webhook}: {source}")]
    SealWebhook { webhook: String, source: SealError },
}

/// Reseals every target secret (and webhook secret) that is not yet sealed under the current key with the current (`v2`)
/// associated data, one compare-and-set per target: the stored value is replaced only if it is still the
/// one opened, so a concurrent change is never overwritten, and at every moment each secret opens under a
/// key of the ring. Run it before removing an old key, and once after upgrading to bind older seals to
/// their targets' connection settings.
pub async fn rotate(conn: &mut PgConnection, ring: &KeyRing) -> Result<Rotation, RotateError> {
    let mut done = Rotation::default();
    let mut page = PageRequest::first(200);
    loop {
        let ids = storage::targets::sealed(conn, &page).await?;
        for id in &ids.items {
            let Some(old) = storage::targets::sealed_secret(conn, *id).await? else { continue };
            let target = match storage::targets::get(conn, *id).await {
                Ok(target) => target,
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let binding = Binding::of(&target);
            let seal_error = |source| RotateError::Seal { target: *id, source };
            let (password, version) = ring.open_versioned(&binding, &old).map_err(seal_error)?;
            if old.key_id == ring.current_id() && version == AadVersion::V2 {
                continue;
            }
            let new = ring.seal(&binding, &password).map_err(seal_error)?;
            if storage::targets::reseal_secret(conn, *id, &old, &new).await? {
                done.resealed += 1;
            } else {
                done.raced += 1;
            }
        }
        match ids.next {
            Some(next) => page = PageRequest::after(next, 200),
            None => break,
        }
    }
    // Webhook signing secrets, sealed per row (`seal_row`): resealed the same way.
    for (id, old) in storage::webhooks::sealed_not_under(conn, ring.current_id()).await? {
        let seal_error = |source| RotateError::SealWebhook { webhook: id.to_string(), source };
        let secret = ring.open_row("webhooks", &id, "secret", &old).map_err(seal_error)?;
        let new = ring.seal_row("webhooks", &id, "secret", &secret).map_err(seal_error)?;
        if storage::webhooks::reseal(conn, id, &old, &new).await? {
            done.resealed += 1;
        } else {
            done.raced += 1;
        }
    }
    Ok(done)
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

    fn binding(target: TargetId) -> Binding<'static> {
        Binding {
            target,
            engine: Engine::Postgres,
            host: "db.internal",
            port: 5432,
            database: "orders",
            username: "app",
        }
    }

    #[test]
    fn seals_open_for_the_same_target_only() {
        let ring = ring(&format!("old:{K1}, new:{K2}"));
        let (a, b) = (TargetId::new(), TargetId::new());
        let sealed = ring.seal(&binding(a), &SecretString::from("s3cret")).unwrap();
        assert_eq!(sealed.key_id, "new");
        assert_eq!(ring.open(&binding(a), &sealed).unwrap().expose_secret(), "s3cret");
        assert_eq!(ring.open_versioned(&binding(a), &sealed).unwrap().1, AadVersion::V2);
        // Copied to another row: refused.
        assert_eq!(ring.open(&binding(b), &sealed).unwrap_err(), SealError::Tampered("new".into()));
        // A flipped bit anywhere: refused.
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(ring.open(&binding(a), &altered).is_err());
        let mut altered = sealed.clone();
        altered.nonce[11] ^= 1;
        assert!(ring.open(&binding(a), &altered).is_err());
        // Relabelled with the other key's id: refused.
        assert!(ring.open(&binding(a), &SealedSecret { key_id: "old".into(), ..sealed.clone() }).is_err());
        // A fresh nonce every time.
        let again = ring.seal(&binding(a), &SecretString::from("s3cret")).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn seals_open_only_for_the_connection_they_were_entered_for() {
        let ring = ring(&format!("k:{K1}"));
        let id = TargetId::new();
        let sealed = ring.seal(&binding(id), &SecretString::from("pw")).unwrap();
        let elsewhere: [fn(&mut Binding<'static>); 5] = [
            |b| b.engine = Engine::Mysql,
            |b| b.host = "attacker.example",
            |b| b.port = 5433,
            |b| b.database = "postgres",
            |b| b.username = "postgres",
        ];
        for change in elsewhere {
            let mut moved = binding(id);
            change(&mut moved);
            assert_eq!(ring.open(&moved, &sealed).unwrap_err(), SealError::Tampered("k".into()), "{moved:?}");
        }
        // Length prefixes: moving characters from one field to the next is a different binding.
        let shifted = Binding { host: "db.interna", database: "lorders", ..binding(id) };
        assert!(ring.open(&shifted, &sealed).is_err());
    }

    #[test]
    fn seals_made_before_bindings_still_open_for_their_row() {
        let ring = ring(&format!("k:{K1}"));
        let id = TargetId::new();
        // Sealed as the previous release did: v1 associated data, no connection binding.
        let mut ciphertext = b"legacy".to_vec();
        let nonce = [7u8; NONCE_LEN];
        ring.current()
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data_v1(id, "k")),
                &mut ciphertext,
            )
            .unwrap();
        let legacy = SealedSecret { key_id: "k".into(), nonce, ciphertext };
        let (password, version) = ring.open_versioned(&binding(id), &legacy).unwrap();
        assert_eq!((password.expose_secret(), version), ("legacy", AadVersion::V1));
        assert!(ring.open(&binding(TargetId::new()), &legacy).is_err());
    }

    #[test]
    fn old_keys_open_what_they_sealed_and_unknown_keys_are_named() {
        let target = binding(TargetId::new());
        let sealed = ring(&format!("old:{K1}")).seal(&target, &SecretString::from("pw")).unwrap();
        assert_eq!(ring(&format!("old:{K1}\nnew:{K2}")).open(&target, &sealed).unwrap().expose_secret(), "pw");
        assert_eq!(ring(&format!("new:{K2}")).open(&target, &sealed).unwrap_err(), SealError::UnknownKey("old".into()));
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
