//! Schema drift of targets (`domain::drift`; the workers fingerprint and compare, `executor::queue`): its
//! state per target, the environments' check schedule, and an admin accepting a drifted schema as the new
//! baseline (audited).

use chrono::Utc;
use domain::ErrorCode;
use domain::ids::{EnvironmentId, TargetId};
use domain::policy::may_administer;
use serde::Deserialize;
use serde_json::json;
pub use storage::drift::{DriftState, Drifted};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};
use audit::Action;

/// How often an environment's targets are checked for drift.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftSchedule {
    /// Minutes between checks, 1 to 10080 (a week); `null`: no drift detection (and no baselines taken).
    pub check_every_minutes: Option<u32>,
}

/// The target's drift state; `None` when the hub never fingerprinted it (no release since its environment
/// began checking).
pub async fn drift_of(hub: &Hub, target: TargetId) -> AppResult<Option<DriftState>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::targets::get(&mut conn, target).await?;
    Ok(storage::drift::get(&mut conn, target).await?)
}

/// The drifted targets, longest first.
pub async fn drifted(hub: &Hub, limit: u32) -> AppResult<Vec<Drifted>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::drift::drifted(&mut conn, limit).await?)
}

/// How many targets have drifted (the metric).
pub async fn count_drifted(hub: &Hub) -> AppResult<u64> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::drift::count_drifted(&mut conn).await?)
}

/// The environment's check interval in seconds (`None`: off).
pub async fn schedule_of(hub: &Hub, environment: EnvironmentId) -> AppResult<Option<u32>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::drift::every(&mut conn, environment).await?)
}

/// Sets how often the environment's targets are checked (admins; audited).
pub async fn set_schedule(
    hub: &Hub,
    caller: &Caller,
    environment: EnvironmentId,
    input: DriftSchedule,
) -> AppResult<()> {
    may_administer(&caller.actor)?;
    if let Some(minutes) = input.check_every_minutes
        && !(1..=10_080).contains(&minutes)
    {
        return Err(AppError::invalid(
            "check_every_minutes",
            ErrorCode::OutOfRange,
            "check_every_minutes must be between 1 and 10080 (a week), or null to stop checking",
        ));
    }
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let env = storage::environments::get(&mut tx, environment).await?;
    let before = storage::drift::every(&mut tx, environment).await?;
    storage::drift::set_every(&mut tx, environment, input.check_every_minutes.map(|m| m * 60)).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::EnvironmentUpdate,
        "environment",
        environment,
        json!({"name": env.name.as_str(), "drift_check_every_secs": {"before": before, "after": input.check_every_minutes.map(|m| m * 60)}}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// Accepts the target's schema as last checked as its new baseline (admins; audited with what differed).
pub async fn accept(hub: &Hub, caller: &Caller, target: TargetId) -> AppResult<DriftState> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let found = storage::targets::get(&mut tx, target).await?;
    let before = storage::drift::get(&mut tx, target).await?;
    let Some(before) = before else {
        return Err(AppError::conflict(
            ErrorCode::NothingToAccept,
            "the hub has not fingerprinted this target's schema yet",
        ));
    };
    if !storage::drift::accept(&mut tx, target, caller.actor.user_id, Utc::now()).await? {
        return Err(AppError::conflict(ErrorCode::NothingToAccept, "this target's schema has not been checked yet"));
    }
    let differences: Vec<serde_json::Value> =
        before.differences.iter().map(|d| json!({"object": d.object, "change": d.change.as_str()})).collect();
    record(
        &mut tx,
        hub,
        caller,
        Action::TargetDriftAccepted,
        "target",
        target,
        json!({"name": found.name.as_str(), "accepted": differences}),
    )
    .await?;
    let after = storage::drift::get(&mut tx, target).await?.ok_or(AppError::NotFound { what: "target schema" })?;
    tx.commit().await.map_err(db)?;
    Ok(after)
}
