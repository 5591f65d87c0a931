//! Browser sessions, stored server-side by the SHA-256 of their cookie key (the caller hashes), so that
//! logout and disabling a user end them on the next request. Idle and absolute expiry are enforced by the
//! load query itself: an expired session is never returned.

use crate::{PgConnection, StorageResult};
use domain::ids::UserId;

/// A live session's owner and state (an opaque JSON object kept for the HTTP layer).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSession {
    pub user_id: UserId,
    pub state: serde_json::Value,
}

fn seconds(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64()
}

/// Creates a session that ends `absolute` from now however it is used.
#[tracing::instrument(skip_all, fields(user.id = %user))]
pub async fn create(
    conn: &mut PgConnection,
    key_hash: &[u8; 32],
    user: UserId,
    state: &serde_json::Value,
    absolute: std::time::Duration,
) -> StorageResult<()> {
    sqlx::query_file!("../../sql/sessions/create.sql", &key_hash[..], user.as_uuid(), state, seconds(absolute))
        .execute(conn)
        .await?;
    Ok(())
}

/// The session if it is live (used within `idle`, before its absolute expiry), marking it used now.
#[tracing::instrument(skip_all)]
pub async fn load(
    conn: &mut PgConnection,
    key_hash: &[u8; 32],
    idle: std::time::Duration,
) -> StorageResult<Option<LoadedSession>> {
    let row =
        sqlx::query_file!("../../sql/sessions/load.sql", &key_hash[..], seconds(idle)).fetch_optional(conn).await?;
    Ok(row.map(|r| LoadedSession { user_id: UserId::from_uuid(r.user_id), state: r.state }))
}

/// Replaces a live session's state; false when the session is gone.
#[tracing::instrument(skip_all)]
pub async fn update_state(
    conn: &mut PgConnection,
    key_hash: &[u8; 32],
    state: &serde_json::Value,
) -> StorageResult<bool> {
    let done = sqlx::query_file!("../../sql/sessions/update_state.sql", &key_hash[..], state).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete(conn: &mut PgConnection, key_hash: &[u8; 32]) -> StorageResult<()> {
    sqlx::query_file!("../../sql/sessions/delete.sql", &key_hash[..]).execute(conn).await?;
    Ok(())
}

/// Ends every session of a user; returns how many there were.
#[tracing::instrument(skip_all, fields(user.id = %user))]
pub async fn delete_for_user(conn: &mut PgConnection, user: UserId) -> StorageResult<u64> {
    let done = sqlx::query_file!("../../sql/sessions/delete_for_user.sql", user.as_uuid()).execute(conn).await?;
    Ok(done.rows_affected())
}

/// Removes expired and idle sessions; returns how many.
#[tracing::instrument(skip_all)]
pub async fn purge(conn: &mut PgConnection, idle: std::time::Duration) -> StorageResult<u64> {
    let done = sqlx::query_file!("../../sql/sessions/purge.sql", seconds(idle)).execute(conn).await?;
    Ok(done.rows_affected())
}
