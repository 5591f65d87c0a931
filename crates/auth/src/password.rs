//! Optional password login: argon2id (the crate's defaults, OWASP's recommended parameters) with a random
//! salt per hash. Verifying an unknown user costs the same as a known one, so timing does not reveal
//! which emails have accounts. Hashing runs on a blocking thread: it takes tens of milliseconds by design.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; an admin tool asks for more).
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per attempt).
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")]
    Length,
    #[error("the password could not be hashed")]
    Hash,
    #[error("the password hashing task failed")]
    Task,
}

/// Checks the length rule and hashes the password into a PHC string.
pub async fn hash(password: SecretString) -> Result<String, PasswordError> {
    let length = password.expose_secret().chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(PasswordError::Length);
    }
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(|_| PasswordError::Hash)
    })
    .await
    .map_err(|_| PasswordError::Task)?
}

/// A hash of a password nobody knows, verified against when the user does not exist.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zc5p+X5yUU1kMYjszWKk3CgPp2ZUPiQhqOgLajiQV2o";

/// Whether the password matches the stored hash (`None`: no such user; the same work is done).
pub async fn verify(stored: Option<String>, password: SecretString) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let text = stored.unwrap_or_else(|| DECOY.to_owned());
        let Ok(parsed) = PasswordHash::new(&text) else { return false };
        let length = password.expose_secret().chars().count();
        let matches = Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
        known && matches && length <= MAX_LENGTH
    })
    .await
    .map_err(|_| PasswordError::Task)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pw(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash(pw("correct horse battery")).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(Some(stored.clone()), pw("correct horse battery")).await.unwrap());
        assert!(!verify(Some(stored.clone()), pw("correct horse batterY")).await.unwrap());
        assert!(!verify(None, pw("correct horse battery")).await.unwrap());
        assert!(!verify(Some("not a phc string".into()), pw("correct horse battery")).await.unwrap());
        assert_ne!(stored, hash(pw("correct horse battery")).await.unwrap(), "salted");
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert_eq!(hash(pw("short")).await.unwrap_err(), PasswordError::Length);
    }

    #[test]
    fn the_decoy_is_a_valid_argon2_hash() {
        assert!(PasswordHash::new(DECOY).is_ok());
    }
}
