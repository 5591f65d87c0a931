//! Who a request is from: signing in (OIDC and password) and out, the server-side sessions of browsers,
//! and API tokens presented as bearer credentials.
//!
//! A login is one transaction: the account rules of `auth::login` (first login creates or binds the
//! account, disabled users are refused) and its `auth.login` event commit together; logout is audited as
//! `auth.logout`. Sessions and OIDC logins in flight are stored by the SHA-256 of their key (the cookie's
//! session key, the browser's `state`), hashed here, so the tool database never holds a value a browser
//! could present.

use std::time::Duration;

use audit::Action;
use auth::login::{LoginError, SignedIn};
use auth::oidc::Identity;
use auth::tokens::TokenError;
use domain::enums::ActorKind;
use domain::ids::UserId;
use domain::model::{ApiToken, AuditActor, User};
use ring::digest::{SHA256, digest};
use secrecy::SecretString;
use serde_json::json;
use storage::StorageError;

use crate::error::db;
use crate::{AppResult, Caller, Hub, Origin, record};

pub use storage::oidc_logins::PendingLogin;

fn hash(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

// --- signing in and out ---

/// Keeps what the OIDC callback will need (nonce, PKCE verifier) under the hash of the login's `state`,
/// for `ttl` (at most ten minutes).
pub async fn save_pending_login(hub: &Hub, state: &str, pending: &PendingLogin, ttl: Duration) -> AppResult<()> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::oidc_logins::create(&mut conn, &hash(state), pending, ttl).await?)
}

/// Takes the login `state` names, once: `None` if it never started, was used already or expired.
pub async fn take_pending_login(hub: &Hub, state: &str) -> AppResult<Option<PendingLogin>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::oidc_logins::take(&mut conn, &hash(state)).await?)
}

/// Signs in the user a verified OIDC identity belongs to (creating or binding the account on first login);
/// audited as `auth.login`.
pub async fn login_oidc(hub: &Hub, identity: &Identity, origin: &Origin) -> Result<User, LoginError> {
    let mut tx = hub.pool.begin().await.map_err(StorageError::from)?;
    let signed_in = auth::login::oidc(&mut tx, identity).await?;
    record_login(&mut tx, hub, &signed_in, "oidc", origin).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(signed_in.user)
}

/// Signs in with email and password; audited as `auth.login`.
pub async fn login_password(
    hub: &Hub,
    email: &str,
    password: SecretString,
    origin: &Origin,
) -> Result<User, LoginError> {
    let mut tx = hub.pool.begin().await.map_err(StorageError::from)?;
    let signed_in = auth::login::password(&mut tx, email, password).await?;
    record_login(&mut tx, hub, &signed_in, "password", origin).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(signed_in.user)
}

async fn record_login(
    tx: &mut storage::PgTransaction<'_>,
    hub: &Hub,
    signed_in: &SignedIn,
    method: &str,
    origin: &Origin,
) -> Result<(), LoginError> {
    let user = &signed_in.user;
    let event = audit::Event {
        actor: AuditActor { kind: ActorKind::User, user_id: Some(user.id), label: user.email.as_str().to_owned() },
        action: Action::AuthLogin,
        object_type: "user".into(),
        object_id: Some(user.id.to_string()),
        details: json!({ "method": method, "account_created": signed_in.account_created }),
        ip: origin.ip,
        user_agent: origin.user_agent.clone(),
    };
    audit::record(tx, hub.audit_key(), &event).await?;
    Ok(())
}

/// Records that the caller signed out (their session is ended by the HTTP layer); audited as `auth.logout`.
pub async fn logout(hub: &Hub, caller: &Caller) -> AppResult<()> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    record(&mut tx, hub, caller, Action::AuthLogout, "user", caller.actor.user_id, json!({})).await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

// --- sessions ---

/// The state of the live session `key` names (used within `idle`, before its absolute expiry), marking it
/// used now; `None` when there is none.
pub async fn load_session(hub: &Hub, key: &str, idle: Duration) -> AppResult<Option<serde_json::Value>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let loaded = storage::sessions::load(&mut conn, &hash(key), idle).await?;
    Ok(loaded.map(|s| s.state))
}

/// Stores a new session of `user` under `key` that ends `absolute` from now however it is used, after
/// dropping the sessions unused for `idle`.
pub async fn create_session(
    hub: &Hub,
    key: &str,
    user: UserId,
    state: &serde_json::Value,
    idle: Duration,
    absolute: Duration,
) -> AppResult<()> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::sessions::purge(&mut conn, idle).await?;
    Ok(storage::sessions::create(&mut conn, &hash(key), user, state, absolute).await?)
}

/// Replaces the state of the live session `key` names; a session that ended meanwhile stays ended.
pub async fn update_session(hub: &Hub, key: &str, state: &serde_json::Value) -> AppResult<()> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::sessions::update_state(&mut conn, &hash(key), state).await?;
    Ok(())
}

/// Ends the session `key` names.
pub async fn delete_session(hub: &Hub, key: &str) -> AppResult<()> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::sessions::delete(&mut conn, &hash(key)).await?)
}

// --- who is asking ---

/// Why the caller of a request could not be established.
#[derive(Debug, thiserror::Error)]
pub enum WhoError {
    /// The credentials are refused (401); the message says why, never the value.
    #[error(transparent)]
    Refused(TokenError),
    /// The tool database gave no connection (503).
    #[error(transparent)]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// Anything else (500).
    #[error(transparent)]
    Internal(StorageError),
}

/// The token presented as a bearer credential and its owner, if the token is valid now; marks it used.
pub async fn authenticate_token(
    hub: &Hub,
    key: &ring::hmac::Key,
    token: &SecretString,
) -> Result<(ApiToken, User), WhoError> {
    let mut conn = hub.pool.acquire().await.map_err(|e| WhoError::Unavailable(Box::new(e)))?;
    auth::tokens::authenticate(&mut conn, key, token, chrono::Utc::now()).await.map_err(|e| match e {
        TokenError::Storage(e) => WhoError::Internal(e),
        refused => WhoError::Refused(refused),
    })
}

/// The user a session names, as stored now (so a changed role or a disabled account counts at once);
/// `None` when the user no longer exists.
pub async fn session_user(hub: &Hub, id: UserId) -> Result<Option<User>, WhoError> {
    let mut conn = hub.pool.acquire().await.map_err(|e| WhoError::Unavailable(Box::new(e)))?;
    match storage::users::get(&mut conn, id).await {
        Ok(user) => Ok(Some(user)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(WhoError::Internal(e)),
    }
}
