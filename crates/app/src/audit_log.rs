//! Reading the audit log, checking its chain and reading its head. All are for admins: the log names every
//! actor.

use domain::policy::may_administer;
use storage::{Page, PageRequest};

use crate::error::db;
use crate::{AppResult, Caller, Hub};

pub use audit::{Head, HeadCheck, Verification};
pub use storage::audit::{AuditEntry, AuditFilter, AuditRecord};

/// Audit events, newest first (admins).
pub async fn list(
    hub: &Hub,
    caller: &Caller,
    filter: &AuditFilter,
    page: &PageRequest<i64>,
) -> AppResult<Page<AuditRecord, i64>> {
    may_administer(&caller.actor)?;
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::audit::list(&mut conn, filter, page).await?)
}

/// Recomputes the whole chain; names the first row that does not check out.
pub async fn verify(hub: &Hub, caller: &Caller) -> AppResult<Verification> {
    may_administer(&caller.actor)?;
    verify_chain(hub).await
}

/// [`verify`] for the operator's `audit verify`, without a caller.
pub async fn verify_chain(hub: &Hub) -> AppResult<Verification> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(audit::verify(&mut conn, hub.audit_key()).await?)
}

/// Whether the chain still reaches `expected`, a head published earlier, with the same hash (the
/// operator's `audit verify --expect-head`).
pub async fn check_head(hub: &Hub, expected: &Head) -> AppResult<HeadCheck> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(audit::check_head(&mut conn, expected).await?)
}

/// The chain's newest row (sequence and hash), `None` while the log is empty. Kept somewhere the tool
/// database cannot reach, it lets `audit verify --expect-head` detect a chain whose tail was cut.
pub async fn head(hub: &Hub, caller: &Caller) -> AppResult<Option<Head>> {
    may_administer(&caller.actor)?;
    current_head(hub).await
}

/// [`head`] for the hub itself (its periodic log line), without a caller.
pub async fn current_head(hub: &Hub) -> AppResult<Option<Head>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(audit::head(&mut conn).await?)
}
