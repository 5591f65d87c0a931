//! Maintenance windows of environments (`domain::windows`): set by admins (audited), read by everyone, and
//! obeyed by the workers' claims. A run may also be scheduled (`not_before`, at request).

use chrono::{DateTime, Utc};
use domain::ErrorCode;
use domain::ids::EnvironmentId;
use domain::policy::may_administer;
use domain::windows::{self, WindowProblem};
use serde::Deserialize;
use serde_json::json;
pub use storage::windows::WindowState;

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};
use audit::Action;

/// An environment's windows, one per line as `DAYS HH:MM-HH:MM ZONE`; empty: none (claims any time).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowsInput {
    pub windows: Vec<String>,
}

/// An environment's windows and where they stand now.
#[derive(Debug, Clone)]
pub struct Windows {
    pub windows: Vec<String>,
    pub state: WindowState,
}

fn invalid(problem: &WindowProblem) -> AppError {
    AppError::invalid("windows", ErrorCode::InvalidWindow, problem.to_string())
}

/// The environment's windows, and whether one is open at `at`.
pub async fn windows_of(hub: &Hub, environment: EnvironmentId, at: DateTime<Utc>) -> AppResult<Windows> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::environments::get(&mut conn, environment).await?;
    let windows = storage::windows::list(&mut conn, environment).await?;
    let state = storage::windows::state(&mut conn, environment, at).await?;
    Ok(Windows { windows, state })
}

/// Replaces the environment's windows (admins; audited with the lists before and after). Every line is
/// checked, its time zone against the database's names, before anything changes.
pub async fn set_windows(
    hub: &Hub,
    caller: &Caller,
    environment: EnvironmentId,
    input: WindowsInput,
) -> AppResult<Windows> {
    may_administer(&caller.actor)?;
    let parsed = windows::parse_lines(input.windows.iter().map(String::as_str)).map_err(|p| invalid(&p))?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let env = storage::environments::get(&mut tx, environment).await?;
    let zones: Vec<String> = parsed.iter().map(|w| w.timezone.clone()).collect();
    if let Some(zone) = storage::windows::unknown_zones(&mut tx, &zones).await?.into_iter().next() {
        let line = parsed.iter().find(|w| w.timezone == zone).map(ToString::to_string).unwrap_or_default();
        return Err(invalid(&WindowProblem::Zone { line, zone }));
    }
    let before = storage::windows::list(&mut tx, environment).await?;
    storage::windows::replace(&mut tx, environment, &parsed).await?;
    let after: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    record(
        &mut tx,
        hub,
        caller,
        Action::EnvironmentWindows,
        "environment",
        environment,
        json!({"name": env.name.as_str(), "before": before, "after": after}),
    )
    .await?;
    let state = storage::windows::state(&mut tx, environment, Utc::now()).await?;
    tx.commit().await.map_err(db)?;
    Ok(Windows { windows: after, state })
}
