//! The use cases of migrate-hub: everything a person or a pipeline can ask the hub to do, below HTTP.
//!
//! Each use case is one function that takes the caller, runs in one transaction of the tool database and
//! writes its audit event in that transaction, so a change and its record commit together or not at all.
//! The REST API and the web UI call the same functions, so a rule cannot hold in one and not the other;
//! the rules themselves are `domain::policy`'s, applied here to the stored state under row locks.
//!
//! This crate must never know about HTTP, HTML or sessions (no actix, maud or reqwest), never speak SQL
//! (no sqlx: queries are `storage`'s), and never return or log a secret: target passwords are sealed here
//! and forgotten.

pub mod audit_log;
mod error;
pub mod identity;
pub mod inventory;
pub mod lookup;
pub mod migrations;
pub mod projects;
pub mod runs;

use std::net::IpAddr;

use domain::ErrorCode;
use domain::model::AuditActor;
use domain::policy::Actor;
use storage::PgTransaction;

pub use error::{AppError, AppResult};

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

/// Appends the audit event of a use case inside its transaction.
pub(crate) async fn record(
    tx: &mut PgTransaction<'_>,
    caller: &Caller,
    action: audit::Action,
    object_type: &str,
    object_id: impl ToString,
    details: serde_json::Value,
) -> AppResult<()> {
    let event = audit::Event {
        actor: caller.audit.clone(),
        action,
        object_type: object_type.to_owned(),
        object_id: Some(object_id.to_string()),
        details,
        ip: caller.ip,
        user_agent: caller.user_agent.clone(),
    };
    audit::record(tx, &event).await?;
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

/// A list request: the rows after `after`, at most `limit` (default 50, at most `storage::MAX_PAGE`).
pub fn page<K>(after: Option<K>, limit: Option<u32>) -> storage::PageRequest<K> {
    storage::PageRequest { after, limit: limit.unwrap_or(50).clamp(1, storage::MAX_PAGE) }
}
