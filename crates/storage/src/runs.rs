//! Runs (releases): an ordered list of a project's migration versions, applied in one direction to an
//! environment's db set. The versions are in `run_migrations`, pinned with the run's content checksum.

use chrono::{DateTime, Utc};
use domain::checksum::{Checksum, ChecksumAlgorithm};
use domain::enums::{Direction, RunKind};
use domain::ids::{DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, TargetId, UserId, VersionId};
use domain::model::{
    LintOverride, NewRun, ReviewFinding, Run, RunAction, RunReview, RunScope, RunWave, RunWaves, SeenRow,
};
use domain::run::RunStatus;
use domain::waves::{Advance, LabelMatch, PlannedWave};
use uuid::Uuid;

use crate::convert::{checksum, parse, to_i32, unsigned};
use crate::{Page, PageRequest, PgConnection, PgTransaction, StorageError, StorageResult};

pub(crate) struct Row {
    pub(crate) id: Uuid,
    pub(crate) project_id: Uuid,
    pub(crate) content_checksum: Vec<u8>,
    pub(crate) revision: i32,
    pub(crate) retry_of: Option<Uuid>,
    pub(crate) direction: String,
    pub(crate) environment_id: Uuid,
    pub(crate) db_set_id: Option<Uuid>,
    pub(crate) kind: String,
    pub(crate) db_target_id: Option<Uuid>,
    pub(crate) adopt_from: Option<String>,
    pub(crate) adopt_table: Option<String>,
    pub(crate) recovery_resolution: Option<String>,
    pub(crate) seen_status: Option<String>,
    pub(crate) seen_statements_done: Option<i32>,
    pub(crate) seen_statements_total: Option<i32>,
    pub(crate) seen_checksum: Option<Vec<u8>>,
    pub(crate) seen_error: Option<String>,
    pub(crate) status: String,
    pub(crate) failure_policy: String,
    pub(crate) concurrency_limit: i32,
    pub(crate) comment: String,
    pub(crate) requested_by: Uuid,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) executed_by: Option<Uuid>,
    pub(crate) cancelled_by: Option<Uuid>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) queued_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) risk: Option<String>,
    pub(crate) lint_override: Option<String>,
    pub(crate) lint_override_by: Option<Uuid>,
}

impl TryFrom<Row> for Run {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let scope = match (row.db_set_id, row.db_target_id) {
            (Some(set), None) => RunScope::Set(DbSetId::from_uuid(set)),
            (None, Some(target)) => RunScope::Target(TargetId::from_uuid(target)),
            _ => return Err(StorageError::Corrupt("runs.db_set_id: a run is for a db set or for one target".into())),
        };
        let corrupt = |column: &str| StorageError::Corrupt(format!("runs.{column}: missing for its kind"));
        let action = match parse::<RunKind>("runs.kind", &row.kind)? {
            RunKind::Release => RunAction::Release,
            RunKind::Baseline => RunAction::Baseline,
            RunKind::Adopt => RunAction::Adopt {
                from: parse("runs.adopt_from", row.adopt_from.as_deref().ok_or_else(|| corrupt("adopt_from"))?)?,
                table: row.adopt_table,
            },
            RunKind::Recovery => RunAction::Recovery {
                resolution: parse(
                    "runs.recovery_resolution",
                    row.recovery_resolution.as_deref().ok_or_else(|| corrupt("recovery_resolution"))?,
                )?,
                seen: SeenRow {
                    status: row.seen_status.ok_or_else(|| corrupt("seen_status"))?,
                    statements_done: unsigned(
                        "runs.seen_statements_done",
                        row.seen_statements_done.ok_or_else(|| corrupt("seen_statements_done"))?,
                    )?,
                    statements_total: unsigned(
                        "runs.seen_statements_total",
                        row.seen_statements_total.ok_or_else(|| corrupt("seen_statements_total"))?,
                    )?,
                    checksum: row.seen_checksum.ok_or_else(|| corrupt("seen_checksum"))?,
                    error: row.seen_error,
                },
            },
        };
        Ok(Run {
            id: RunId::from_uuid(row.id),
            project_id: ProjectId::from_uuid(row.project_id),
            content: checksum("runs.content_checksum", ChecksumAlgorithm::Sha256Normalized, &row.content_checksum)?,
            revision: unsigned("runs.revision", row.revision)?,
            retry_of: row.retry_of.map(RunId::from_uuid),
            direction: parse("runs.direction", &row.direction)?,
            action,
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            scope,
            status: parse("runs.status", &row.status)?,
            failure_policy: parse("runs.failure_policy", &row.failure_policy)?,
            concurrency_limit: unsigned("runs.concurrency_limit", row.concurrency_limit)?,
            comment: row.comment,
            requested_by: UserId::from_uuid(row.requested_by),
            idempotency_key: row.idempotency_key,
            executed_by: row.executed_by.map(UserId::from_uuid),
            cancelled_by: row.cancelled_by.map(UserId::from_uuid),
            created_at: row.created_at,
            updated_at: row.updated_at,
            queued_at: row.queued_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            risk: row.risk.as_deref().map(|r| parse("runs.risk", r)).transpose()?,
            lint_override: match (row.lint_override, row.lint_override_by) {
                (Some(reason), Some(by)) => Some(LintOverride { reason, by: UserId::from_uuid(by) }),
                (None, None) => None,
                _ => return Err(StorageError::Corrupt("runs.lint_override: a reason without its admin".into())),
            },
        })
    }
}

/// Creates a run, its versions (in apply order) and one pending item per member of its db set (or per
/// member among `new.targets`), atomically. Returns the run and the number of items. A repeated
/// idempotency key of the same requester is a [`StorageError::Conflict`] on `runs_idempotency_key`; look
/// the first run up with [`find_by_idempotency_key`].
#[tracing::instrument(skip_all, fields(project.id = %new.project_id, direction = %new.direction, versions = new.versions.len()))]
pub async fn create(tx: &mut PgTransaction<'_>, new: &NewRun) -> StorageResult<(Run, u64)> {
    if new.versions.is_empty() {
        return Err(StorageError::Invalid { constraint: "a run applies at least one version".into() });
    }
    let (adopt_from, adopt_table) = match &new.action {
        RunAction::Adopt { from, table } => (Some(from.as_str()), table.as_deref()),
        _ => (None, None),
    };
    let (resolution, seen) = match &new.action {
        RunAction::Recovery { resolution, seen } => (Some(resolution.as_str()), Some(seen)),
        _ => (None, None),
    };
    let run: Run = sqlx::query_file_as!(
        Row,
        "../../sql/runs/create.sql",
        RunId::new().as_uuid(),
        new.project_id.as_uuid(),
        &new.content.digest()[..],
        new.retry_of.map(|r| r.as_uuid()),
        new.direction.as_str(),
        new.environment_id.as_uuid(),
        new.scope.db_set_id().map(|s| s.as_uuid()),
        new.action.kind().as_str(),
        new.scope.target_id().map(|t| t.as_uuid()),
        adopt_from,
        adopt_table,
        resolution,
        seen.map(|s| s.status.as_str()),
        seen.map(|s| to_i32(s.statements_done)),
        seen.map(|s| to_i32(s.statements_total)),
        seen.map(|s| s.checksum.as_slice()),
        seen.and_then(|s| s.error.as_deref()),
        new.status.as_str(),
        new.failure_policy.as_str(),
        to_i32(new.concurrency_limit),
        new.comment,
        new.requested_by.as_uuid(),
        new.idempotency_key.as_deref(),
        new.review.as_ref().map(|r| r.risk.as_str()),
        review_json(new.review.as_ref())?,
        new.lint_override.as_ref().map(|o| o.reason.as_str()),
        new.lint_override.as_ref().map(|o| o.by.as_uuid()),
    )
    .fetch_one(&mut **tx)
    .await?
    .try_into()?;
    insert_versions(tx, run.id, &new.versions).await?;
    let targets: Option<Vec<Uuid>> = new.targets.as_ref().map(|t| t.iter().map(|id| id.as_uuid()).collect());
    let (label_key, label_value) = match &new.first_label {
        Some(label) => (Some(label.key.as_str()), Some(label.value.as_str())),
        None => (None, None),
    };
    let items = sqlx::query_file!(
        "../../sql/runs/create_items.sql",
        run.id.as_uuid(),
        targets.as_deref(),
        label_key,
        label_value
    )
    .execute(&mut **tx)
    .await?;
    Ok((run, items.rows_affected()))
}

/// Stores `run`'s wave plan (created with its items, whose ordinals the waves' ranges name) and readies the
/// queue's counters for its first wave.
#[tracing::instrument(skip_all, fields(run.id = %run, waves = waves.len()))]
pub async fn create_waves(
    tx: &mut PgTransaction<'_>,
    run: RunId,
    waves: &[PlannedWave],
    advance: Advance,
    label: Option<&LabelMatch>,
) -> StorageResult<()> {
    let first: Vec<i32> = waves.iter().map(|w| to_i32(w.first)).collect();
    let end: Vec<i32> = waves.iter().map(|w| to_i32(w.end)).collect();
    let spec: Vec<&str> = waves.iter().map(|w| w.spec.as_str()).collect();
    let max: Vec<i32> = waves.iter().map(|w| to_i32(w.max_failures)).collect();
    sqlx::query_file!(
        "../../sql/runs/create_waves.sql",
        run.as_uuid(),
        &first,
        &end,
        &spec as &[&str],
        &max,
        advance.as_str(),
        label.map(|l| l.key.as_str()),
        label.map(|l| l.value.as_str()),
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}

/// `run`'s waves and where its queue stands; `None` when it has none.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn waves(conn: &mut PgConnection, run: RunId) -> StorageResult<Option<RunWaves>> {
    let rows = sqlx::query_file!("../../sql/runs/waves.sql", run.as_uuid()).fetch_all(conn).await?;
    let Some(head) = rows.first() else { return Ok(None) };
    let first_label = match (&head.first_label_key, &head.first_label_value) {
        (Some(key), Some(value)) => Some(LabelMatch { key: key.clone(), value: value.clone() }),
        _ => None,
    };
    let count = |column: &'static str, n: i64| unsigned(column, i32::try_from(n).unwrap_or(i32::MAX));
    let mut out = RunWaves {
        advance: parse("runs.advance", &head.advance)?,
        first_label,
        current: unsigned("runs.current_wave", head.current_wave)?,
        open: unsigned("runs.wave_open", head.wave_open.max(0))?,
        failed: unsigned("runs.wave_failed", head.wave_failed)?,
        allowed: unsigned("runs.wave_failures_allowed", head.wave_failures_allowed)?,
        waves: Vec::with_capacity(rows.len()),
    };
    for r in rows {
        out.waves.push(RunWave {
            wave: unsigned("run_waves.wave", r.wave)?,
            first: unsigned("run_waves.first_ordinal", r.first_ordinal)?,
            end: unsigned("run_waves.end_ordinal", r.end_ordinal)?,
            spec: r.spec,
            max_failures: unsigned("run_waves.max_failures", r.max_failures)?,
            tolerated_failures: unsigned("run_waves.tolerated_failures", r.tolerated_failures)?,
            started_at: r.started_at,
            started_by: r.started_by.map(|id| (UserId::from_uuid(id), r.started_by_email.unwrap_or_default())),
            ended_at: r.ended_at,
            pending: count("pending", r.pending)?,
            running: count("running", r.running)?,
            succeeded: count("succeeded", r.succeeded)?,
            skipped: count("skipped", r.skipped)?,
            failed: count("failed", r.failed)?,
            cancelled: count("cancelled", r.cancelled)?,
        });
    }
    Ok(Some(out))
}

/// Continues halted `run` (which the caller holds locked): its current wave's failures so far are
/// tolerated and claims take its items again. Returns the wave's open items; `None`: it was not halted.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn tolerate(tx: &mut PgTransaction<'_>, run: RunId) -> StorageResult<Option<u32>> {
    let row = sqlx::query_file!("../../sql/runs/tolerate.sql", run.as_uuid()).fetch_optional(&mut **tx).await?;
    row.map(|r| unsigned("runs.wave_open", r.wave_open.max(0))).transpose()
}

/// Schedules `run`: nothing of it is claimed before `at`.
pub async fn schedule(tx: &mut PgTransaction<'_>, run: RunId, at: DateTime<Utc>) -> StorageResult<()> {
    sqlx::query_file!("../../sql/runs/schedule.sql", run.as_uuid(), at).execute(&mut **tx).await?;
    Ok(())
}

/// `run`'s schedule (`None`: at once).
pub async fn not_before(conn: &mut PgConnection, run: RunId) -> StorageResult<Option<DateTime<Utc>>> {
    let row = sqlx::query_file!("../../sql/runs/not_before.sql", run.as_uuid()).fetch_one(conn).await?;
    Ok(row.not_before)
}

async fn insert_versions(tx: &mut PgTransaction<'_>, run: RunId, versions: &[VersionId]) -> StorageResult<()> {
    let ids: Vec<Uuid> = versions.iter().map(|v| v.as_uuid()).collect();
    sqlx::query_file!("../../sql/runs/create_versions.sql", run.as_uuid(), &ids).execute(&mut **tx).await?;
    Ok(())
}

/// The runs that retry `run`, oldest first.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn retries_of(conn: &mut PgConnection, run: RunId) -> StorageResult<Vec<RunId>> {
    let rows = sqlx::query_file!("../../sql/runs/retries_of.sql", run.as_uuid()).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| RunId::from_uuid(r.id)).collect())
}

/// The targets of `run` whose items failed, were cancelled or never ran, in rollout order.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn unfinished_targets(conn: &mut PgConnection, run: RunId) -> StorageResult<Vec<TargetId>> {
    let rows = sqlx::query_file!("../../sql/runs/unfinished_targets.sql", run.as_uuid()).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| TargetId::from_uuid(r.db_target_id)).collect())
}

#[tracing::instrument(skip_all, fields(run.id = %id))]
pub async fn get(conn: &mut PgConnection, id: RunId) -> StorageResult<Run> {
    sqlx::query_file_as!(Row, "../../sql/runs/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("run"))?
        .try_into()
}

/// Reads the run and locks it until the transaction ends, so a decision about it (approve, execute,
/// cancel) is made on the state it will change.
#[tracing::instrument(skip_all, fields(run.id = %id))]
pub async fn lock(tx: &mut PgTransaction<'_>, id: RunId) -> StorageResult<Run> {
    sqlx::query_file_as!(Row, "../../sql/runs/lock.sql", id.as_uuid())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StorageError::NotFound("run"))?
        .try_into()
}

#[tracing::instrument(skip_all)]
pub async fn find_by_idempotency_key(
    conn: &mut PgConnection,
    requested_by: UserId,
    key: &str,
) -> StorageResult<Option<Run>> {
    sqlx::query_file_as!(Row, "../../sql/runs/find_by_idempotency_key.sql", requested_by.as_uuid(), key)
        .fetch_optional(conn)
        .await?
        .map(Run::try_from)
        .transpose()
}

/// Filters on the run list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub environment: Option<EnvironmentId>,
    pub requested_by: Option<UserId>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Runs, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &mut PgConnection,
    filter: &RunFilter,
    page: &PageRequest<RunId>,
) -> StorageResult<Page<Run, RunId>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/runs/list.sql",
        page.after.map(|r| r.as_uuid()),
        filter.status.map(|s| s.as_str()),
        filter.environment.map(|e| e.as_uuid()),
        filter.requested_by.map(|u| u.as_uuid()),
        filter.created_from,
        filter.created_before,
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(Run::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |r| r.id))
}

/// Moves a run from `from` to `to` if it is still in `from` (compare-and-set). The transition must be
/// legal in the domain state machine; `actor` is recorded as executor (→ queued) or canceller
/// (→ cancelled). A run no longer in `from` is a [`StorageError::Conflict`] on `runs_status`.
#[tracing::instrument(skip_all, fields(run.id = %id, from = %from, to = %to))]
pub async fn set_status(
    conn: &mut PgConnection,
    id: RunId,
    from: RunStatus,
    to: RunStatus,
    actor: Option<UserId>,
) -> StorageResult<Run> {
    from.transition_to(to).map_err(|e| StorageError::Invalid { constraint: e.to_string() })?;
    let row = sqlx::query_file_as!(
        Row,
        "../../sql/runs/set_status.sql",
        id.as_uuid(),
        from.as_str(),
        to.as_str(),
        actor.map(|a| a.as_uuid())
    )
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(StorageError::Conflict { constraint: "runs_status".into() }),
    }
}

/// How many runs are in each status (for metrics and the dashboard).
#[tracing::instrument(skip_all)]
pub async fn count_by_status(conn: &mut PgConnection) -> StorageResult<Vec<(RunStatus, u64)>> {
    let rows = sqlx::query_file!("../../sql/runs/count_by_status.sql").fetch_all(conn).await?;
    rows.into_iter().map(|r| Ok((parse::<RunStatus>("runs.status", &r.status)?, unsigned("count", r.count)?))).collect()
}

/// Runs awaiting approval that `approver` may still decide (not their own, not decided yet), newest first.
#[tracing::instrument(skip_all, fields(user.id = %approver))]
pub async fn awaiting_decision_by(conn: &mut PgConnection, approver: UserId, limit: u32) -> StorageResult<Vec<Run>> {
    let limit = PageRequest::<()>::first(limit).sql_limit();
    sqlx::query_file_as!(Row, "../../sql/runs/pending_approval_for.sql", approver.as_uuid(), limit)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Run::try_from)
        .collect()
}

/// Re-pins a run that has not started (awaiting approval or approved) to `versions` with checksum
/// `content`: a new revision, status `status`. A run that has moved on is a [`StorageError::Conflict`] on
/// `runs_status`.
#[tracing::instrument(skip_all, fields(run.id = %id, versions = versions.len()))]
pub async fn repin(
    tx: &mut PgTransaction<'_>,
    id: RunId,
    versions: &[VersionId],
    content: &Checksum,
    status: RunStatus,
    review: Option<&RunReview>,
) -> StorageResult<Run> {
    let row = sqlx::query_file_as!(
        Row,
        "../../sql/runs/repin.sql",
        id.as_uuid(),
        &content.digest()[..],
        status.as_str(),
        review.map(|r| r.risk.as_str()),
        review_json(review)?,
    )
    .fetch_optional(&mut **tx)
    .await?;
    let run: Run = match row {
        Some(row) => row.try_into()?,
        None => return Err(StorageError::Conflict { constraint: "runs_status".into() }),
    };
    sqlx::query_file!("../../sql/runs/clear_versions.sql", id.as_uuid()).execute(&mut **tx).await?;
    insert_versions(tx, id, versions).await?;
    Ok(run)
}

fn review_json(review: Option<&RunReview>) -> StorageResult<Option<serde_json::Value>> {
    review
        .map(|r| serde_json::to_value(&r.findings))
        .transpose()
        .map_err(|e| StorageError::Invalid { constraint: format!("runs.review: {e}") })
}

/// The SQL review findings `id` pinned with its content; `None` for a run that runs no migration SQL or one
/// from before the review.
#[tracing::instrument(skip_all, fields(run.id = %id))]
pub async fn review(conn: &mut PgConnection, id: RunId) -> StorageResult<Option<Vec<ReviewFinding>>> {
    let row = sqlx::query_file!("../../sql/runs/review.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("run"))?;
    row.review
        .map(|value| serde_json::from_value(value).map_err(|e| StorageError::Corrupt(format!("runs.review: {e}"))))
        .transpose()
}

/// The newest run of a migration in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestRun {
    pub migration: MigrationId,
    pub environment: EnvironmentId,
    pub run: RunId,
    pub status: RunStatus,
    pub direction: Direction,
}

/// For each of `migrations`, its newest run in each environment that has one.
#[tracing::instrument(skip_all, fields(migrations = migrations.len()))]
pub async fn latest_per_environment(
    conn: &mut PgConnection,
    migrations: &[MigrationId],
) -> StorageResult<Vec<LatestRun>> {
    let ids: Vec<Uuid> = migrations.iter().map(|id| id.as_uuid()).collect();
    let rows = sqlx::query_file!("../../sql/runs/latest_per_environment.sql", &ids).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| {
            Ok(LatestRun {
                migration: MigrationId::from_uuid(r.migration_id),
                environment: EnvironmentId::from_uuid(r.environment_id),
                run: RunId::from_uuid(r.run_id),
                status: parse("runs.status", &r.status)?,
                direction: parse("runs.direction", &r.direction)?,
            })
        })
        .collect()
}

/// What a list of runs shows about each: its project, its release's first and last version and how
/// many it has, and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLabel {
    pub project: ProjectId,
    pub project_name: String,
    /// The first migration in apply order.
    pub migration: MigrationId,
    pub version_key: String,
    pub name: String,
    pub version_no: u32,
    /// The last version key in apply order (the same as `version_key` for a one-migration release).
    pub last_key: String,
    pub versions: u32,
    pub environment: String,
}

/// The labels of `runs` (missing runs are left out).
#[tracing::instrument(skip_all, fields(runs = runs.len()))]
pub async fn labels(conn: &mut PgConnection, runs: &[RunId]) -> StorageResult<Vec<(RunId, RunLabel)>> {
    let ids: Vec<Uuid> = runs.iter().map(|id| id.as_uuid()).collect();
    let rows = sqlx::query_file!("../../sql/runs/labels.sql", &ids).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                RunId::from_uuid(r.id),
                RunLabel {
                    project: ProjectId::from_uuid(r.project_id),
                    project_name: r.project,
                    migration: MigrationId::from_uuid(r.first_migration_id),
                    version_key: r.first_key,
                    name: r.first_name,
                    version_no: unsigned("migration_versions.version_no", r.first_version_no)?,
                    last_key: r.last_key,
                    versions: unsigned("versions", r.versions)?,
                    environment: r.environment,
                },
            ))
        })
        .collect()
}
