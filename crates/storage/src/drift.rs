//! Drift state of targets (`domain::drift`): baselines left by applies, scheduled checks, accepting.

use chrono::{DateTime, Utc};
use domain::drift::{Difference, Fingerprint};
use domain::ids::{EnvironmentId, RunId, TargetId, UserId};
use serde_json::Value;

use crate::{PgConnection, StorageError, StorageResult};

/// A target's drift, as the hub last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftState {
    pub target: TargetId,
    pub baseline_at: DateTime<Utc>,
    /// The run whose apply left the baseline, or the admin who accepted it.
    pub baseline_run: Option<RunId>,
    pub accepted_by: Option<UserId>,
    pub checked_at: Option<DateTime<Utc>>,
    pub differences: Vec<Difference>,
    pub drifted_since: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    /// The environment's interval (`None`: it does not check).
    pub check_every_secs: Option<u32>,
}

fn json(fingerprint: &Fingerprint) -> StorageResult<Value> {
    serde_json::to_value(fingerprint).map_err(|e| StorageError::Invalid { constraint: e.to_string() })
}

fn fingerprint(value: Value) -> StorageResult<Fingerprint> {
    serde_json::from_value(value).map_err(|e| StorageError::Corrupt(format!("target_schemas: {e}")))
}

/// Every project's history table name (left out of fingerprints, so every check compares the same objects).
pub async fn history_tables(conn: &mut PgConnection) -> StorageResult<Vec<String>> {
    let rows = sqlx::query_file!("../../sql/projects/history_tables.sql").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.history_table).collect())
}

/// The environment's drift check interval in seconds (`None`: off).
pub async fn every(conn: &mut PgConnection, environment: EnvironmentId) -> StorageResult<Option<u32>> {
    let row = sqlx::query_file!("../../sql/drift/every.sql", environment.as_uuid()).fetch_one(conn).await?;
    Ok(row.drift_check_every.and_then(|s| u32::try_from(s).ok()))
}

/// Sets the environment's drift check interval (`None`: off).
pub async fn set_every(conn: &mut PgConnection, environment: EnvironmentId, secs: Option<u32>) -> StorageResult<()> {
    let secs = secs.map(|s| i32::try_from(s).unwrap_or(i32::MAX));
    sqlx::query_file!("../../sql/drift/set_every.sql", environment.as_uuid(), secs).execute(conn).await?;
    Ok(())
}

/// Records `print` as the target's baseline, left by `run` at `at`; next check after `every` seconds.
pub async fn baseline(
    conn: &mut PgConnection,
    target: TargetId,
    print: &Fingerprint,
    run: RunId,
    at: DateTime<Utc>,
    every: Option<u32>,
) -> StorageResult<()> {
    sqlx::query_file!(
        "../../sql/drift/baseline.sql",
        target.as_uuid(),
        json(print)?,
        run.as_uuid(),
        at,
        every.map(f64::from)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A target whose check is due, with its baseline.
#[derive(Debug, Clone)]
pub struct DueCheck {
    pub target: TargetId,
    pub baseline: Fingerprint,
    pub drifted: bool,
}

/// Takes up to `max` targets whose check is due at `now`.
pub async fn claim_due(conn: &mut PgConnection, max: u32, now: DateTime<Utc>) -> StorageResult<Vec<DueCheck>> {
    let rows = sqlx::query_file!("../../sql/drift/claim_due.sql", i64::from(max), now).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| {
            Ok(DueCheck {
                target: TargetId::from_uuid(r.db_target_id),
                baseline: fingerprint(r.baseline)?,
                drifted: r.drifted,
            })
        })
        .collect()
}

/// Records a check; `(drifted now, drifted before)`.
pub async fn record_check(
    conn: &mut PgConnection,
    target: TargetId,
    at: DateTime<Utc>,
    print: &Fingerprint,
    differences: &[Difference],
) -> StorageResult<(bool, bool)> {
    let differences =
        serde_json::to_value(differences).map_err(|e| StorageError::Invalid { constraint: e.to_string() })?;
    let row = sqlx::query_file!("../../sql/drift/record_check.sql", target.as_uuid(), at, json(print)?, differences)
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("target schema"))?;
    Ok((row.drifted, row.was_drifted))
}

/// The target's drift state; `None` when the hub never fingerprinted it.
pub async fn get(conn: &mut PgConnection, target: TargetId) -> StorageResult<Option<DriftState>> {
    let Some(r) = sqlx::query_file!("../../sql/drift/get.sql", target.as_uuid()).fetch_optional(conn).await? else {
        return Ok(None);
    };
    Ok(Some(DriftState {
        target,
        baseline_at: r.baseline_at,
        baseline_run: r.baseline_run.map(RunId::from_uuid),
        accepted_by: r.accepted_by.map(UserId::from_uuid),
        checked_at: r.checked_at,
        differences: serde_json::from_value(r.differences)
            .map_err(|e| StorageError::Corrupt(format!("target_schemas.differences: {e}")))?,
        drifted_since: r.drifted_since,
        next_check_at: r.next_check_at,
        check_every_secs: r.drift_check_every.and_then(|s| u32::try_from(s).ok()),
    }))
}

/// Accepts the schema as last checked as the target's baseline; `false` when nothing was checked.
pub async fn accept(conn: &mut PgConnection, target: TargetId, by: UserId, at: DateTime<Utc>) -> StorageResult<bool> {
    let row = sqlx::query_file!("../../sql/drift/accept.sql", target.as_uuid(), by.as_uuid(), at)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// How many targets have drifted.
pub async fn count_drifted(conn: &mut PgConnection) -> StorageResult<u64> {
    let row = sqlx::query_file!("../../sql/drift/count_drifted.sql").fetch_one(conn).await?;
    Ok(u64::try_from(row.drifted).unwrap_or(0))
}

/// A drifted target, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drifted {
    pub target: TargetId,
    pub name: String,
    pub environment: String,
    pub since: DateTime<Utc>,
    pub objects: u32,
}

/// The drifted targets, longest first (at most `limit`).
pub async fn drifted(conn: &mut PgConnection, limit: u32) -> StorageResult<Vec<Drifted>> {
    let rows = sqlx::query_file!("../../sql/drift/drifted.sql", i64::from(limit)).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| Drifted {
            target: TargetId::from_uuid(r.db_target_id),
            name: r.target,
            environment: r.environment,
            since: r.drifted_since,
            objects: u32::try_from(r.objects).unwrap_or(0),
        })
        .collect())
}
