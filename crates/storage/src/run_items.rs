//! Run items: one per target of a run. What is here serves reading and cancelling; claiming and the
//! fenced writes of workers are in [`crate::queue`].

use chrono::{DateTime, Utc};
use domain::ids::{MigrationId, ProjectId, RunId, RunItemId, TargetId, WorkerId};
use domain::model::{MigrationOnTarget, RunItem, TargetOfMigration};
use domain::run::RunItemStatus;
use uuid::Uuid;

use crate::convert::{opt_unsigned, parse, unsigned};
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    run_id: Uuid,
    db_target_id: Uuid,
    ordinal: i32,
    status: String,
    attempts: i32,
    max_attempts: i32,
    not_before: Option<DateTime<Utc>>,
    lease_owner: Option<Uuid>,
    lease_expires_at: Option<DateTime<Utc>>,
    fencing_token: i64,
    statements_done: i32,
    statements_total: Option<i32>,
    migrations_done: i32,
    migrations_total: Option<i32>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for RunItem {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(RunItem {
            id: RunItemId::from_uuid(row.id),
            run_id: RunId::from_uuid(row.run_id),
            target_id: TargetId::from_uuid(row.db_target_id),
            ordinal: unsigned("run_items.ordinal", row.ordinal)?,
            status: parse("run_items.status", &row.status)?,
            attempts: unsigned("run_items.attempts", row.attempts)?,
            max_attempts: unsigned("run_items.max_attempts", row.max_attempts)?,
            not_before: row.not_before,
            lease_owner: row.lease_owner.map(WorkerId::from_uuid),
            lease_expires_at: row.lease_expires_at,
            fencing_token: row.fencing_token,
            statements_done: unsigned("run_items.statements_done", row.statements_done)?,
            statements_total: opt_unsigned("run_items.statements_total", row.statements_total)?,
            migrations_done: unsigned("run_items.migrations_done", row.migrations_done)?,
            migrations_total: opt_unsigned("run_items.migrations_total", row.migrations_total)?,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: opt_unsigned("run_items.duration_ms", row.duration_ms)?,
            error_code: row.error_code,
            error_message: row.error_message,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(item.id = %id))]
pub async fn get(conn: &mut PgConnection, id: RunItemId) -> StorageResult<RunItem> {
    sqlx::query_file_as!(Row, "../../sql/run_items/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("run item"))?
        .try_into()
}

/// Items of a run in rollout order, optionally of one status; the page key is the ordinal.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn list_for_run(
    conn: &mut PgConnection,
    run: RunId,
    status: Option<RunItemStatus>,
    page: &PageRequest<u32>,
) -> StorageResult<Page<RunItem, u32>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/run_items/list_for_run.sql",
        run.as_uuid(),
        status.map(|s| s.as_str()),
        page.after.map(crate::convert::to_i32),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(RunItem::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |i| i.ordinal))
}

/// How many items of a run are in each status.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn count_by_status(conn: &mut PgConnection, run: RunId) -> StorageResult<Vec<(RunItemStatus, u64)>> {
    let rows = sqlx::query_file!("../../sql/run_items/count_by_status.sql", run.as_uuid()).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| Ok((parse::<RunItemStatus>("run_items.status", &r.status)?, unsigned("count", r.count)?)))
        .collect()
}

/// Cancels the run's pending items; returns how many. Running items are left to their worker, which stops
/// at the next statement boundary once it sees the run cancelled.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn cancel_pending(conn: &mut PgConnection, run: RunId) -> StorageResult<u64> {
    let done = sqlx::query_file!("../../sql/run_items/cancel_pending.sql", run.as_uuid()).execute(conn).await?;
    Ok(done.rows_affected())
}

/// Per migration of any project, where the hub's runs left it on `target` (newest finished item that ended
/// it), by project name and version key.
#[tracing::instrument(skip_all, fields(target.id = %target))]
pub async fn applied_on_target(conn: &mut PgConnection, target: TargetId) -> StorageResult<Vec<MigrationOnTarget>> {
    let rows = sqlx::query_file!("../../sql/run_items/applied_on_target.sql", target.as_uuid()).fetch_all(conn).await?;
    let mut found = rows
        .into_iter()
        .map(|r| {
            Ok(MigrationOnTarget {
                project_id: ProjectId::from_uuid(r.project_id),
                project_name: parse("projects.name", &r.project_name)?,
                migration_id: MigrationId::from_uuid(r.migration_id),
                version_key: parse("migrations.version_key", &r.version_key)?,
                migration_name: parse("migrations.name", &r.migration_name)?,
                version_no: unsigned("migration_versions.version_no", r.version_no)?,
                run_id: RunId::from_uuid(r.run_id),
                finished_at: r.finished_at,
                state: parse("state", &r.state)?,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    found.sort_by(|a, b| {
        (a.project_name.as_str(), a.version_key.as_str()).cmp(&(b.project_name.as_str(), b.version_key.as_str()))
    });
    Ok(found)
}

/// Per target, where the hub's runs left `migration` on it, by environment and target name.
#[tracing::instrument(skip_all, fields(migration.id = %migration))]
pub async fn applied_of_migration(
    conn: &mut PgConnection,
    migration: MigrationId,
) -> StorageResult<Vec<TargetOfMigration>> {
    let rows =
        sqlx::query_file!("../../sql/run_items/applied_of_migration.sql", migration.as_uuid()).fetch_all(conn).await?;
    let mut found = rows
        .into_iter()
        .map(|r| {
            Ok(TargetOfMigration {
                target_id: TargetId::from_uuid(r.target_id),
                target_name: parse("db_targets.name", &r.target_name)?,
                environment_name: parse("environments.name", &r.environment_name)?,
                version_no: unsigned("migration_versions.version_no", r.version_no)?,
                run_id: RunId::from_uuid(r.run_id),
                finished_at: r.finished_at,
                state: parse("state", &r.state)?,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    found.sort_by(|a, b| {
        (a.environment_name.as_str(), a.target_name.as_str())
            .cmp(&(b.environment_name.as_str(), b.target_name.as_str()))
    });
    Ok(found)
}
