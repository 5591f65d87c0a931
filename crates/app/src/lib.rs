//! The use cases of migrate-hub: everything a person or a pipeline can ask the hub to do, below HTTP.
//!
//! Each use case is one function that takes the caller, runs in one transaction of the tool database and
//! writes its audit event in that transaction, so a change and its record commit together or not at all.
//! The REST API and the web UI call the same functions, so a rule cannot hold in one and not the other;
//! the rules themselves are `domain::policy`'s, applied here to the stored state under row locks.
//!
//! It is the only door to the tool database from above: `http` and the server binary call these functions
//! (signing in and out, sessions, operator commands included) and never `storage` (a tidy rule); the few
//! storage types they hold (a pool, a page) are re-exported here.
//!
//! This crate must never know about HTTP, HTML or cookies (no actix, maud or reqwest; a browser session is
//! opaque state under the hash of its key), never speak SQL (no sqlx: queries are `storage`'s), and never
//! return or log a secret: target passwords are sealed here and forgotten.

pub mod audit_log;
pub mod drift;
mod error;
pub mod identity;
pub mod inventory;
pub mod lookup;
pub mod migrations;
pub mod operator;
pub mod projects;
mod run_actions;
pub mod runs;
pub mod sessions;
pub mod tool_db;
pub mod waves;
pub mod webhooks;
pub mod windows;

use std::net::IpAddr;
use std::sync::Arc;

use domain::ErrorCode;
use domain::model::AuditActor;
use domain::policy::Actor;
use domain::secret_ref::SecretRefPolicy;
use storage::PgTransaction;

pub use error::{AppError, AppResult};
// Types of the tool database that callers hold and pass back (a pool, a page of a list and its request),
// re-exported so that nothing above this crate needs `storage`.
pub use storage::{MAX_PAGE, Page, PageRequest, PgPool};

/// What every use case runs against: the tool database, and the configuration of this hub that the rules
/// and the audit log depend on (the audit chain key, the secret references targets may name). Built once
/// at start-up from the process's settings and handed to every use case, so nothing is process-global:
/// two hubs in one process (tests) can differ, and no handler can use a setting it was not given.
#[derive(Debug, Clone)]
pub struct Hub {
    pool: PgPool,
    audit_key: Option<audit::ChainKey>,
    secret_refs: Arc<SecretRefPolicy>,
    /// The hub's public address (links in webhook events) and the socket it listens on: webhooks are
    /// never sent to either.
    public_url: Option<Arc<str>>,
    bind: Option<std::net::SocketAddr>,
}

impl Hub {
    /// A hub on `pool` whose audit events are unkeyed (refused once the chain is keyed) and whose targets
    /// may name no secret reference; see [`Hub::with_audit_key`] and [`Hub::with_secret_refs`].
    pub fn new(pool: PgPool) -> Self {
        Hub { pool, audit_key: None, secret_refs: Arc::new(SecretRefPolicy::none()), public_url: None, bind: None }
    }

    /// Keys the audit events this hub writes, and lets it verify keyed ones (the key derived from the
    /// server secret, `auth::keys::ServerSecret::audit_chain_key`).
    pub fn with_audit_key(mut self, key: Option<audit::ChainKey>) -> Self {
        self.audit_key = key;
        self
    }

    /// The secret references targets may name (`MIGRATE_HUB_SECRET_REFS`, the same setting the workers
    /// resolve them with).
    pub fn with_secret_refs(mut self, policy: SecretRefPolicy) -> Self {
        self.secret_refs = Arc::new(policy);
        self
    }

    /// The hub's public address (`https://hub.example.com`) and the socket the server listens on.
    pub fn with_addresses(mut self, public_url: Option<&str>, bind: Option<std::net::SocketAddr>) -> Self {
        self.public_url = public_url.map(|u| Arc::from(u.trim_end_matches('/')));
        self.bind = bind;
        self
    }

    /// The socket the server listens on.
    pub fn with_bind(mut self, bind: std::net::SocketAddr) -> Self {
        self.bind = Some(bind);
        self
    }

    pub(crate) fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    pub(crate) fn bind(&self) -> Option<std::net::SocketAddr> {
        self.bind
    }

    /// The tool database, for `tool_db`'s checks of it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn audit_key(&self) -> Option<&audit::ChainKey> {
        self.audit_key.as_ref()
    }

    pub(crate) fn secret_refs(&self) -> &SecretRefPolicy {
        &self.secret_refs
    }
}

/// Who is asking, as the rules and the audit log need to know them.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user and their role, for `domain::policy`.
    pub actor: Actor,
    /// How the audit log names them (a session user or a token of that user).
    pub audit: AuditActor,
    /// Where the request came from.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, truncated by the audit log.
    pub user_agent: Option<String>,
}

impl Caller {
    /// Where the caller's request came from.
    pub fn origin(&self) -> Origin {
        Origin { ip: self.ip, user_agent: self.user_agent.clone() }
    }
}

/// Where a request came from, as the audit log records it (its `ip` and `user_agent`).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, truncated by the audit log.
    pub user_agent: Option<String>,
}

/// Appends the audit event of a use case inside its transaction.
pub(crate) async fn record(
    tx: &mut PgTransaction<'_>,
    hub: &Hub,
    caller: &Caller,
    action: audit::Action,
    object_type: &str,
    object_id: impl ToString,
    details: serde_json::Value,
) -> AppResult<()> {
    record_as(tx, hub, &caller.audit, &caller.origin(), action, object_type, object_id, details).await
}

/// Appends an audit event naming `actor` (a caller, or the system for operator commands) inside the
/// transaction of its use case.
#[allow(clippy::too_many_arguments)] // the parts of one audit event
pub(crate) async fn record_as(
    tx: &mut PgTransaction<'_>,
    hub: &Hub,
    actor: &AuditActor,
    origin: &Origin,
    action: audit::Action,
    object_type: &str,
    object_id: impl ToString,
    details: serde_json::Value,
) -> AppResult<()> {
    let event = audit::Event {
        actor: actor.clone(),
        action,
        object_type: object_type.to_owned(),
        object_id: Some(object_id.to_string()),
        details,
        ip: origin.ip,
        user_agent: origin.user_agent.clone(),
    };
    audit::record(tx, hub.audit_key(), &event).await?;
    Ok(())
}

/// Free text of at most 2000 characters (descriptions, comments), empty when absent.
pub(crate) fn free_text(field: &'static str, text: Option<String>) -> AppResult<String> {
    const MAX: usize = 2000;
    let text = text.unwrap_or_default();
    if text.chars().count() > MAX {
        return Err(AppError::invalid(
            field,
            ErrorCode::TooLong,
            format!("the {field} must be at most {MAX} characters"),
        ));
    }
    Ok(text)
}

/// A list request: the rows after `after`, at most `limit` (default 50, at most [`MAX_PAGE`]).
pub fn page<K>(after: Option<K>, limit: Option<u32>) -> PageRequest<K> {
    PageRequest { after, limit: limit.unwrap_or(50).clamp(1, MAX_PAGE) }
}
