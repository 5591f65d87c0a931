//! Maintenance windows of environments (`domain::windows`), and when they are open. The database evaluates
//! them (`maintenance_window_*` functions, also called by claims), so this module only stores and asks.

use chrono::{DateTime, Utc};
use domain::ids::EnvironmentId;
use domain::windows::Window;

use crate::convert::to_i32;
use crate::{PgConnection, PgTransaction, StorageResult};

/// Where an environment's windows stand at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Whether it has windows at all (without, workers claim its items any time).
    pub any: bool,
    /// When the window open now closes (`None`: none is open).
    pub closes_at: Option<DateTime<Utc>>,
    /// When the next window opens.
    pub next_opens_at: Option<DateTime<Utc>>,
}

impl WindowState {
    /// Whether workers may claim the environment's items now.
    pub fn open(&self) -> bool {
        !self.any || self.closes_at.is_some()
    }
}

/// The environment's windows, as typed, in order.
#[tracing::instrument(skip_all, fields(environment.id = %environment))]
pub async fn list(conn: &mut PgConnection, environment: EnvironmentId) -> StorageResult<Vec<String>> {
    let rows = sqlx::query_file!("../../sql/windows/list.sql", environment.as_uuid()).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.spec).collect())
}

/// Replaces the environment's windows with `windows` (each line's canonical text is stored).
#[tracing::instrument(skip_all, fields(environment.id = %environment, windows = windows.len()))]
pub async fn replace(tx: &mut PgTransaction<'_>, environment: EnvironmentId, windows: &[Window]) -> StorageResult<()> {
    sqlx::query_file!("../../sql/windows/clear.sql", environment.as_uuid()).execute(&mut **tx).await?;
    let (mut position, mut spec, mut weekday, mut starts, mut ends, mut zone) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, window) in windows.iter().enumerate() {
        for day in &window.weekdays {
            position.push(to_i32(u32::try_from(i).unwrap_or(u32::MAX)));
            spec.push(window.to_string());
            weekday.push(i16::from(*day));
            starts.push(i32::from(window.start));
            ends.push(i32::from(window.end));
            zone.push(window.timezone.clone());
        }
    }
    sqlx::query_file!(
        "../../sql/windows/add.sql",
        environment.as_uuid(),
        &position,
        &spec,
        &weekday,
        &starts,
        &ends,
        &zone
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The names among `zones` the database does not know as time zones.
pub async fn unknown_zones(conn: &mut PgConnection, zones: &[String]) -> StorageResult<Vec<String>> {
    let rows = sqlx::query_file!("../../sql/windows/unknown_zones.sql", zones).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.zone).collect())
}

/// Where the environment's windows stand at `at`.
pub async fn state(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    at: DateTime<Utc>,
) -> StorageResult<WindowState> {
    let row = sqlx::query_file!("../../sql/windows/state.sql", environment.as_uuid(), at).fetch_one(conn).await?;
    Ok(WindowState { any: row.any, closes_at: row.closes_at, next_opens_at: row.next_opens_at })
}
