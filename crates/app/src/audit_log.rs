//! Reading the audit log, checking its chain and reading its head. All are for admins: the log names every
//! actor.

use domain::policy::may_administer;
use storage::audit::{AuditFilter, AuditRecord};
use storage::{Page, PageRequest, PgPool};

use crate::error::db;
use crate::{AppResult, Caller};

pub use audit::{Head, Verification};

pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    filter: &AuditFilter,
    page: &PageRequest<i64>,
) -> AppResult<Page<AuditRecord, i64>> {
    may_administer(&caller.actor)?;
    let mut conn = pool.acquire().await.map_err(db)?;
    Ok(storage::audit::list(&mut conn, filter, page).await?)
}

/// Recomputes the whole chain; names the first row that does not check out.
pub async fn verify(pool: &PgPool, caller: &Caller) -> AppResult<Verification> {
    may_administer(&caller.actor)?;
    let mut conn = pool.acquire().await.map_err(db)?;
    Ok(audit::verify(&mut conn).await?)
}

/// The chain's newest row (sequence and hash), `None` while the log is empty. Kept somewhere the tool
/// database cannot reach, it lets `audit verify --expect-head` detect a chain whose tail was cut.
pub async fn head(pool: &PgPool, caller: &Caller) -> AppResult<Option<Head>> {
    may_administer(&caller.actor)?;
    current_head(pool).await
}

/// [`head`] for the hub itself (its periodic log line), without a caller.
pub async fn current_head(pool: &PgPool) -> AppResult<Option<Head>> {
    let mut conn = pool.acquire().await.map_err(db)?;
    Ok(audit::head(&mut conn).await?)
}
