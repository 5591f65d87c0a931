//! API tokens: `mh_` followed by 64 hex digits (256 random bits). Only an HMAC-SHA256 of the token under
//! the server's token key is stored; a token is found by that hash and the stored hash is compared again
//! in constant time. The token itself exists in the clear once, in the response that creates it.

use chrono::{DateTime, Utc};
use domain::enums::TokenScope;
use domain::ids::UserId;
use domain::model::{ApiToken, NewApiToken, User};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use storage::PgConnection;

const PREFIX: &str = "mh_";
const SECRET_HEX: usize = 64;
/// How many characters of a token are kept to tell tokens apart in listings (`mh_` and 7 hex digits).
const SHOWN: usize = 10;

/// Why a presented token does not authenticate. The message never repeats the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a migrate-hub API token")]
    Malformed,
    #[error("the API token is not valid")]
    Unknown,
    #[error("the API token has been revoked")]
    Revoked,
    #[error("the API token has expired")]
    Expired,
    #[error("the owner of the API token is disabled")]
    OwnerDisabled,
    #[error("the system random number generator failed")]
    Random,
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// A freshly minted token: the secret to show once, and what to store.
#[derive(Debug)]
pub struct Minted {
    pub token: SecretString,
    pub new: NewApiToken,
}

/// Mints a token for `owner`, created by `creator`. They are the same person wherever the hub mints one: a token
/// is created only by its owner (`domain::policy::may_create_token`), and the tool database refuses a usable
/// token made by someone else (`api_tokens_created_by_owner`).
pub fn mint(
    key: &ring::hmac::Key,
    owner: UserId,
    creator: UserId,
    name: String,
    scope: TokenScope,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Minted, TokenError> {
    let mut bytes = [0u8; SECRET_HEX / 2];
    SystemRandom::new().fill(&mut bytes).map_err(|_| TokenError::Random)?;
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let new = NewApiToken {
        user_id: owner,
        name,
        prefix: token[..SHOWN].to_owned(),
        hash: hash(key, &token),
        scope,
        created_by: creator,
        expires_at,
    };
    Ok(Minted { token: SecretString::from(token), new })
}

/// The keyed hash under which a token is stored.
pub fn hash(key: &ring::hmac::Key, token: &str) -> [u8; 32] {
    let tag = ring::hmac::sign(key, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether the text has the shape of one of our tokens (checked before any database work).
pub fn well_formed(token: &str) -> bool {
    token.len() == PREFIX.len() + SECRET_HEX
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The token and its owner, if the token authenticates at `now`. Records its use (at most once a minute).
pub async fn authenticate(
    conn: &mut PgConnection,
    key: &ring::hmac::Key,
    token: &SecretString,
    now: DateTime<Utc>,
) -> Result<(ApiToken, User), TokenError> {
    let token = token.expose_secret();
    if !well_formed(token) {
        return Err(TokenError::Malformed);
    }
    let computed = hash(key, token);
    let (found, stored) = storage::tokens::find_by_hash(conn, &computed).await?.ok_or(TokenError::Unknown)?;
    // The stored tag is checked again with ring's constant-time HMAC verification.
    ring::hmac::verify(key, token.as_bytes(), &stored).map_err(|_| TokenError::Unknown)?;
    if found.revoked_at.is_some() {
        return Err(TokenError::Revoked);
    }
    if !found.is_usable_at(now) {
        return Err(TokenError::Expired);
    }
    let owner = storage::users::get(conn, found.user_id).await?;
    if owner.disabled {
        return Err(TokenError::OwnerDisabled);
    }
    storage::tokens::touch(conn, found.id).await?;
    Ok((found, owner))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(byte: u8) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[byte; 32])
    }

    #[test]
    fn minted_tokens_are_well_formed_unique_and_stored_only_as_their_keyed_hash() {
        let (owner, creator) = (UserId::new(), UserId::new());
        let a = mint(&key(1), owner, creator, "ci".into(), TokenScope::Write, None).unwrap();
        let b = mint(&key(1), owner, creator, "ci".into(), TokenScope::Write, None).unwrap();
        let text = a.token.expose_secret();
        assert!(well_formed(text), "{}", text.len());
        assert_ne!(text, b.token.expose_secret());
        assert_eq!(a.new.hash, hash(&key(1), text));
        assert_ne!(a.new.hash, hash(&key(2), text), "the hash is keyed");
        assert!(text.starts_with(&a.new.prefix) && a.new.prefix.len() == SHOWN);
        assert!(!format!("{a:?}").contains(&text[SHOWN..]), "Debug must not show the token");
    }

    #[test]
    fn only_our_exact_shape_is_well_formed() {
        let good = format!("mh_{}", "a1".repeat(32));
        assert!(well_formed(&good));
        assert!(!well_formed(&good.to_uppercase()));
        assert!(!well_formed(&good[..good.len() - 1]));
        assert!(!well_formed(&format!("xx_{}", "a1".repeat(32))));
        assert!(!well_formed(&format!("mh_{}", "g1".repeat(32))));
        assert!(!well_formed(""));
    }
}
