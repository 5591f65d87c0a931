//! OIDC logins in flight: what the callback needs (nonce, PKCE verifier), keyed by the SHA-256 of the
//! `state` the browser carries. A login is taken exactly once and lives at most ten minutes (a CHECK).

use crate::{PgConnection, StorageResult};

/// What the callback of one login needs. Both values are secrets until the login ends.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").finish_non_exhaustive()
    }
}

/// Records a login that expires `ttl` from now (at most ten minutes) and drops abandoned ones.
#[tracing::instrument(skip_all)]
pub async fn create(
    conn: &mut PgConnection,
    state_hash: &[u8; 32],
    login: &PendingLogin,
    ttl: std::time::Duration,
) -> StorageResult<()> {
    sqlx::query_file!(
        "../../sql/oidc_logins/create.sql",
        &state_hash[..],
        login.nonce,
        login.pkce_verifier,
        ttl.as_secs_f64()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the login with this state: `None` if there is none (never started, already used) or it expired
/// (it is deleted either way).
#[tracing::instrument(skip_all)]
pub async fn take(conn: &mut PgConnection, state_hash: &[u8; 32]) -> StorageResult<Option<PendingLogin>> {
    let row = sqlx::query_file!("../../sql/oidc_logins/take.sql", &state_hash[..]).fetch_optional(conn).await?;
    Ok(row.filter(|r| r.fresh).map(|r| PendingLogin { nonce: r.nonce, pkce_verifier: r.pkce_verifier }))
}
