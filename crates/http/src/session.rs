//! Browser sessions: actix-session over a store in the tool database, so a session can be ended before it
//! expires (logout, a disabled user, a role change is seen on the next request).
//!
//! The cookie carries a random 64-character key, encrypted and signed by actix-session with a key derived
//! from the server secret; the table holds only the key's SHA-256. A session is stored only once a user
//! has signed in (its state names the user), lives at most the absolute timeout from login, and ends when
//! unused for the idle timeout: both are enforced by the query that loads it.

use std::collections::HashMap;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key};
use actix_session::{Session, SessionExt};
use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use app::Hub;
use domain::ids::UserId;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The session entry that says who is signed in.
const USER: &str = "uid";
/// The session entry holding the CSRF synchronizer token.
const CSRF: &str = "csrf";
/// How the user signed in.
const METHOD: &str = "method";

/// The session store over the tool database (through `app::sessions`, which keeps only the keys' hashes).
#[derive(Debug, Clone)]
pub(crate) struct PgSessionStore {
    pub hub: Hub,
    pub idle: Duration,
    pub absolute: Duration,
}

fn to_json(state: &HashMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(state.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
}

fn user_of(state: &HashMap<String, String>) -> Option<UserId> {
    state.get(USER).and_then(|v| serde_json::from_str::<UserId>(v).ok())
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let loaded = app::sessions::load_session(&self.hub, session_key.as_ref(), self.idle)
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        let Some(loaded) = loaded else { return Ok(None) };
        let serde_json::Value::Object(map) = loaded else {
            return Err(LoadError::Deserialization(anyhow::anyhow!("session state is not an object")));
        };
        let state = map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect();
        Ok(Some(state))
    }

    async fn save(&self, state: HashMap<String, String>, _ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        let user = user_of(&state)
            .ok_or_else(|| SaveError::Other(anyhow::anyhow!("a session is stored only once a user is signed in")))?;
        let key = generate_session_key();
        app::sessions::create_session(&self.hub, key.as_ref(), user, &to_json(&state), self.idle, self.absolute)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        // A session that ended meanwhile stays ended: nothing is recreated.
        app::sessions::update_session(&self.hub, session_key.as_ref(), &to_json(&state))
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        Ok(session_key)
    }

    async fn update_ttl(&self, _session_key: &SessionKey, _ttl: &CookieDuration) -> Result<(), anyhow::Error> {
        // Idle expiry is renewed by every load; the absolute expiry never moves.
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        app::sessions::delete_session(&self.hub, session_key.as_ref()).await?;
        Ok(())
    }
}

/// What the session says about the signed-in user.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub user: UserId,
    pub csrf: String,
}

/// How a user signed in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Method {
    Oidc,
    Password,
}

/// Who the session belongs to, if anyone.
pub(crate) fn signed_in(session: &Session) -> Option<SignedIn> {
    let user = session.get::<UserId>(USER).ok().flatten()?;
    let csrf = session.get::<String>(CSRF).ok().flatten()?;
    Some(SignedIn { user, csrf })
}

/// A new random CSRF token (256 bits, hex).
fn new_csrf() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Signs `user` in: a new session (new key, so a key planted before login is worthless) with a fresh
/// CSRF token.
pub(crate) fn begin(req: &HttpRequest, user: UserId, method: Method) -> Result<(), SessionError> {
    let session = req.get_session();
    session.clear();
    session.renew();
    session.insert(USER, user).map_err(|_| SessionError)?;
    session.insert(CSRF, new_csrf().map_err(|_| SessionError)?).map_err(|_| SessionError)?;
    session.insert(METHOD, method).map_err(|_| SessionError)?;
    Ok(())
}

/// A session entry could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the session could not be written")]
pub(crate) struct SessionError;
