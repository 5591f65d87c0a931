//! Reading the audit log and checking its chain. Both are for admins: the log names every actor.

use domain::policy::may_administer;
use storage::audit::{AuditFilter, AuditRecord};
use storage::{Page, PageRequest, PgPool};

use crate::error::db;
use crate::{AppResult, Caller};

pub use audit::Verification;

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
