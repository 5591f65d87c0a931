//! The run lifecycle (SPEC §4): request, approve or deny, execute, cancel.
//!
//! Every decision is taken on the run's row under its lock, with the rules of `domain::policy`, and
//! recorded in the same transaction. A run that has not started follows its migration: when the migration
//! gets a new version, the next approve, deny or execute moves the run onto it (audited as `run.repin`),
//! and approvals of the old version stop counting. So an approval is always for exactly the content that
//! would be applied, and execution of content nobody approved is refused with `checksum_mismatch`.
//!
//! Refused approvals, denials, executions and cancellations are audited too (`run.*_refused`, in their
//! own transaction), so attempts at self-approval leave a trace.

use domain::checksum::Checksum;
use domain::enums::{ApprovalDecision, Direction, FailurePolicy};
use domain::ids::{DbSetId, EnvironmentId, MigrationId, RunId, RunItemId};
use domain::model::{
    Approval, Environment, Migration, MigrationVersion, NewApproval, NewRun, Run, RunItem, RunItemLog,
};
use domain::policy::{
    Actor, ApprovalFacts, ApprovalState, Denial, PinnedChecksums, RunFacts, approval_state, may_approve, may_cancel,
    may_deny, may_execute, may_request_run,
};
use domain::run::{RunItemStatus, RunStatus};
use serde::Deserialize;
use serde_json::json;
use storage::runs::RunFilter;
use storage::{Page, PageRequest, PgPool, PgTransaction, StorageError};

use crate::error::db;
use crate::{AppError, AppResult, Caller, record};

/// Most targets one run may hold items for at once, per concurrency setting.
pub const MAX_CONCURRENCY: u32 = 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRequest {
    pub migration_id: MigrationId,
    /// The version number the requester reviewed; it must be the newest. Default: the newest.
    #[serde(default)]
    pub version: Option<u32>,
    /// `up` (default) or `down`.
    #[serde(default)]
    pub direction: Option<Direction>,
    pub environment_id: EnvironmentId,
    pub db_set_id: DbSetId,
    /// `stop_on_first_failure` (default) or `continue`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// How many targets at once, 1 to 1000 (default 1).
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// An approve or deny decision.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionInput {
    #[serde(default)]
    pub comment: Option<String>,
    /// The version number the approver reviewed; refused (409) if the run now applies another.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The outcome of a run request: the run, and whether this request made it (`false`: an earlier request with
/// the same idempotency key did).
#[derive(Debug, Clone)]
pub struct Requested {
    pub run: Run,
    pub created: bool,
}

/// Where a run stands on approval, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalStatus {
    pub state: ApprovalState,
    /// Some approve decision was given for content the run no longer applies.
    pub stale: bool,
}

/// A run with what is needed to show it.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: Run,
    pub migration: Migration,
    pub version: MigrationVersion,
    /// The migration's newest version number (greater than `version.version_no` when the migration was
    /// edited after the run was requested).
    pub latest_version_no: u32,
    pub environment: Environment,
    pub approvals: Vec<Approval>,
    pub approval: ApprovalStatus,
    pub items: Vec<(RunItemStatus, u64)>,
    /// The checksums of the content the run would apply now (the newest version's).
    pub current: PinnedChecksums,
}

/// What one person may do with a run right now, and if not, why: the same `domain::policy` decisions the
/// actions themselves take, for pages that show a disabled button with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub approve: Result<(), Denial>,
    pub deny: Result<(), Denial>,
    pub execute: Result<(), Denial>,
    pub cancel: Result<(), Denial>,
}

impl RunDetail {
    /// What `actor` may do with this run.
    pub fn allowed(&self, actor: &Actor) -> Allowed {
        let run = facts(&self.run);
        let decisions = decision_facts(&self.approvals);
        Allowed {
            approve: may_approve(actor, &run, &decisions),
            deny: may_deny(actor, &run, &decisions),
            execute: may_execute(actor, &run, &self.environment.policy, &decisions, &self.current),
            cancel: may_cancel(actor, &run),
        }
    }
}

fn comment(text: Option<String>) -> AppResult<String> {
    crate::free_text("comment", text)
}

fn idempotency_key(key: Option<String>) -> AppResult<Option<String>> {
    match key {
        None => Ok(None),
        Some(k) if (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k)),
        Some(_) => Err(AppError::invalid(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "the Idempotency-Key must be 1 to 200 printable ASCII characters without spaces",
        )),
    }
}

fn facts(run: &Run) -> RunFacts {
    RunFacts { id: run.id, requested_by: run.requested_by, status: run.status, direction: run.direction }
}

fn decision_facts(approvals: &[Approval]) -> Vec<ApprovalFacts> {
    approvals
        .iter()
        .map(|a| ApprovalFacts { approver: a.approver, decision: a.decision, direction: a.direction, pinned: a.pinned })
        .collect()
}

/// Requests a run. With an idempotency key, repeating the same request returns the first run (`created:
/// false`) however many arrive at once; the same key with a different request is a conflict.
pub async fn request_run(
    pool: &PgPool,
    caller: &Caller,
    input: RunRequest,
    key: Option<String>,
) -> AppResult<Requested> {
    may_request_run(&caller.actor)?;
    let key = idempotency_key(key)?;
    let direction = input.direction.unwrap_or(Direction::Up);
    let failure_policy = input.failure_policy.unwrap_or(FailurePolicy::StopOnFirstFailure);
    let concurrency_limit = input.concurrency_limit.unwrap_or(1);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency_limit) {
        return Err(AppError::invalid(
            "concurrency_limit",
            "out_of_range",
            format!("concurrency_limit must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    let comment = comment(input.comment.clone())?;
    if let Some(key) = &key {
        let mut conn = pool.acquire().await.map_err(db)?;
        if let Some(existing) = storage::runs::find_by_idempotency_key(&mut conn, caller.actor.user_id, key).await? {
            return same_request(&mut conn, existing, &input, direction, failure_policy, concurrency_limit, &comment)
                .await;
        }
    }
    let mut tx = pool.begin().await.map_err(db)?;
    let migration = storage::migrations::get(&mut tx, input.migration_id).await?;
    let version = storage::versions::latest(&mut tx, migration.id)
        .await?
        .ok_or(AppError::NotFound { what: "migration version" })?;
    if let Some(wanted) = input.version
        && wanted != version.version_no
    {
        return Err(AppError::conflict(
            "version_superseded",
            format!(
                "version {wanted} is not the newest version of this migration (version {} is); review it and request again",
                version.version_no
            ),
        ));
    }
    if direction == Direction::Down && version.down_sql.is_none() {
        return Err(AppError::invalid("direction", "no_down", "this migration has no down script to run"));
    }
    let environment = storage::environments::get(&mut tx, input.environment_id).await?;
    let set = storage::db_sets::get(&mut tx, input.db_set_id).await.map_err(|e| match e {
        StorageError::NotFound(_) => AppError::invalid("db_set_id", "unknown_db_set", "no such db set"),
        other => other.into(),
    })?;
    if set.environment_id != environment.id {
        return Err(AppError::invalid("db_set_id", "wrong_environment", "the db set belongs to another environment"));
    }
    let new = NewRun {
        version_id: version.id,
        direction,
        environment_id: environment.id,
        db_set_id: set.id,
        status: RunStatus::initial(environment.policy.approval_required),
        failure_policy,
        concurrency_limit,
        comment,
        requested_by: caller.actor.user_id,
        idempotency_key: key.clone(),
    };
    let (run, items) = match storage::runs::create(&mut tx, &new).await {
        Ok(created) => created,
        Err(e) if e.is_conflict_on("runs_idempotency_key") => {
            // Another request with the same key committed first: answer with its run.
            drop(tx);
            let mut conn = pool.acquire().await.map_err(db)?;
            let key = key.as_deref().unwrap_or_default();
            let existing = storage::runs::find_by_idempotency_key(&mut conn, caller.actor.user_id, key)
                .await?
                .ok_or(AppError::NotFound { what: "run" })?;
            return same_request(
                &mut conn,
                existing,
                &input,
                direction,
                failure_policy,
                concurrency_limit,
                &new.comment,
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    if items == 0 {
        return Err(AppError::invalid("db_set_id", "empty_db_set", "the db set has no targets"));
    }
    record(
        &mut tx,
        caller,
        "run.request",
        "run",
        run.id,
        json!({
            "migration_id": migration.id, "version_key": migration.version_key.as_str(), "version": version.version_no,
            "direction": direction.as_str(), "environment": environment.name.as_str(), "db_set": set.name.as_str(),
            "items": items, "status": run.status.as_str(), "up_checksum": version.checksums.up.to_hex(),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(Requested { run, created: true })
}

async fn same_request(
    conn: &mut storage::PgConnection,
    existing: Run,
    input: &RunRequest,
    direction: Direction,
    failure_policy: FailurePolicy,
    concurrency_limit: u32,
    comment: &str,
) -> AppResult<Requested> {
    let version = storage::versions::get(conn, existing.version_id).await?;
    let same = version.migration_id == input.migration_id
        && existing.direction == direction
        && existing.environment_id == input.environment_id
        && existing.db_set_id == input.db_set_id
        && existing.failure_policy == failure_policy
        && existing.concurrency_limit == concurrency_limit
        && existing.comment == comment;
    if !same {
        return Err(AppError::conflict(
            "idempotency_key_reused",
            format!("this Idempotency-Key was already used for a different run request (run {})", existing.id),
        ));
    }
    Ok(Requested { run: existing, created: false })
}

/// Moves a run that has not started onto its migration's newest version, if it is not on it. Returns the
/// version the run now applies.
async fn follow_newest(
    tx: &mut PgTransaction<'_>,
    caller: &Caller,
    run: &mut Run,
    environment: &Environment,
) -> AppResult<MigrationVersion> {
    let version = storage::versions::get(tx, run.version_id).await?;
    let latest = storage::versions::latest(tx, version.migration_id).await?.unwrap_or_else(|| version.clone());
    if latest.id == version.id || !matches!(run.status, RunStatus::AwaitingApproval | RunStatus::Approved) {
        return Ok(version);
    }
    if run.direction == Direction::Down && latest.down_sql.is_none() {
        return Err(AppError::conflict(
            "no_down",
            format!(
                "the migration's newest version ({}) has no down script; this rollback cannot proceed",
                latest.version_no
            ),
        ));
    }
    let status = RunStatus::initial(environment.policy.approval_required);
    *run = storage::runs::repin(tx, run.id, latest.id, status).await?;
    record(
        tx,
        caller,
        "run.repin",
        "run",
        run.id,
        json!({
            "from_version": version.version_no, "to_version": latest.version_no, "status": status.as_str(),
            "up_checksum": latest.checksums.up.to_hex(),
        }),
    )
    .await?;
    Ok(latest)
}

/// Records a refused action in its own transaction (the action's was rolled back). A failure to record is
/// logged, not returned: the caller still gets the refusal.
async fn record_refusal(pool: &PgPool, caller: &Caller, action: &str, run: RunId, error: &AppError) {
    if !matches!(error, AppError::Denied(_) | AppError::Conflict { .. }) {
        return;
    }
    let result = async {
        let mut tx = pool.begin().await.map_err(db)?;
        record(&mut tx, caller, action, "run", run, json!({"reason": error.code(), "message": error.to_string()}))
            .await?;
        tx.commit().await.map_err(db)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(run.id = %run, error = %auth::error_chain(&e), "could not audit a refused action");
    }
}

/// Approves a run: pins the checksums of the content it applies.
pub async fn approve(pool: &PgPool, caller: &Caller, id: RunId, input: DecisionInput) -> AppResult<Run> {
    let result = decide(pool, caller, id, input, ApprovalDecision::Approve).await;
    if let Err(e) = &result {
        record_refusal(pool, caller, "run.approve_refused", id, e).await;
    }
    result
}

/// Denies a run; a deny is final.
pub async fn deny(pool: &PgPool, caller: &Caller, id: RunId, input: DecisionInput) -> AppResult<Run> {
    let result = decide(pool, caller, id, input, ApprovalDecision::Deny).await;
    if let Err(e) = &result {
        record_refusal(pool, caller, "run.deny_refused", id, e).await;
    }
    result
}

async fn decide(
    pool: &PgPool,
    caller: &Caller,
    id: RunId,
    input: DecisionInput,
    decision: ApprovalDecision,
) -> AppResult<Run> {
    let comment = comment(input.comment)?;
    let mut tx = pool.begin().await.map_err(db)?;
    let mut run = storage::runs::lock(&mut tx, id).await?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    // Role and separation of duties first: they do not depend on the content.
    let all = storage::approvals::list_for_run(&mut tx, id).await?;
    let check = |run: &Run, approvals: &[Approval]| {
        let current: Vec<Approval> = approvals.iter().filter(|a| a.version_id == run.version_id).cloned().collect();
        let decisions = decision_facts(&current);
        match decision {
            ApprovalDecision::Approve => may_approve(&caller.actor, &facts(run), &decisions),
            ApprovalDecision::Deny => may_deny(&caller.actor, &facts(run), &decisions),
        }
    };
    if let Err(denial @ (Denial::RoleTooLow { .. } | Denial::SelfApproval)) = check(&run, &all) {
        return Err(denial.into());
    }
    let version = follow_newest(&mut tx, caller, &mut run, &environment).await?;
    if let Some(reviewed) = input.version
        && reviewed != version.version_no
    {
        return Err(AppError::conflict(
            "content_changed",
            format!(
                "you reviewed version {reviewed}, but the run now applies version {}; review it and decide again",
                version.version_no
            ),
        ));
    }
    check(&run, &all)?;
    let pinned = version.checksums;
    let approval = storage::approvals::create(
        &mut tx,
        &NewApproval { run_id: id, approver: caller.actor.user_id, decision, comment, pinned },
    )
    .await?;
    let mut current: Vec<Approval> = all.into_iter().filter(|a| a.version_id == run.version_id).collect();
    current.push(approval);
    let state = approval_state(&environment.policy, &facts(&run), &decision_facts(&current), &pinned);
    let next = match state {
        ApprovalState::Approved | ApprovalState::NotRequired => Some(RunStatus::Approved),
        ApprovalState::Denied => Some(RunStatus::Denied),
        ApprovalState::Pending { .. } => None,
    };
    if let Some(next) = next {
        run = storage::runs::set_status(&mut tx, id, run.status, next, None).await?;
    }
    let (have, need) = match state {
        ApprovalState::Pending { have, need } => (have, need),
        _ => (environment.policy.approvals_required, environment.policy.approvals_required),
    };
    let action = match decision {
        ApprovalDecision::Approve => "run.approve",
        ApprovalDecision::Deny => "run.deny",
    };
    record(
        &mut tx,
        caller,
        action,
        "run",
        id,
        json!({
            "version": version.version_no, "direction": run.direction.as_str(),
            "up_checksum": pinned.up.to_hex(), "down_checksum": pinned.down.map(|c| c.to_hex()),
            "approvals": have, "needed": need, "status": run.status.as_str(),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// Executes an approved run: queues its items for the workers.
pub async fn execute(pool: &PgPool, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = execute_inner(pool, caller, id).await;
    if let Err(e) = &result {
        record_refusal(pool, caller, "run.execute_refused", id, e).await;
    }
    result
}

async fn execute_inner(pool: &PgPool, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = pool.begin().await.map_err(db)?;
    let mut run = storage::runs::lock(&mut tx, id).await?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    let pinned_version = storage::versions::get(&mut tx, run.version_id).await?;
    let latest = storage::versions::latest(&mut tx, pinned_version.migration_id)
        .await?
        .unwrap_or_else(|| pinned_version.clone());
    // Without approval there is nothing to invalidate: the run simply follows the newest version. With
    // approval, the approvals must be for the newest content, which they are not if it changed.
    let version = if environment.policy.approval_required {
        latest
    } else {
        follow_newest(&mut tx, caller, &mut run, &environment).await?
    };
    let approvals = storage::approvals::list_for_run(&mut tx, id).await?;
    may_execute(&caller.actor, &facts(&run), &environment.policy, &decision_facts(&approvals), &version.checksums)?;
    // The stored text must still hash to the stored checksums (the workers check again before applying).
    let intact = Checksum::of(&version.up_sql) == version.checksums.up
        && version.down_sql.as_deref().map(Checksum::of) == version.checksums.down;
    if !intact {
        return Err(AppError::conflict(
            "stored_sql_mismatch",
            "the stored SQL of this version no longer matches its checksums; refusing to execute",
        ));
    }
    run = storage::runs::set_status(&mut tx, id, RunStatus::Approved, RunStatus::Queued, Some(caller.actor.user_id))
        .await?;
    record(
        &mut tx,
        caller,
        "run.execute",
        "run",
        id,
        json!({"version": version.version_no, "up_checksum": version.checksums.up.to_hex(), "status": run.status.as_str()}),
    )
    .await?;
    // Delivered at commit: workers wake as soon as the items are claimable.
    storage::queue::notify(&mut tx, id).await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// Cancels a run: pending items are cancelled now, running ones stop at their next statement boundary.
pub async fn cancel(pool: &PgPool, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = cancel_inner(pool, caller, id).await;
    if let Err(e) = &result {
        record_refusal(pool, caller, "run.cancel_refused", id, e).await;
    }
    result
}

async fn cancel_inner(pool: &PgPool, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = pool.begin().await.map_err(db)?;
    let run = storage::runs::lock(&mut tx, id).await?;
    may_cancel(&caller.actor, &facts(&run))?;
    let from = run.status;
    let run = storage::runs::set_status(&mut tx, id, from, RunStatus::Cancelled, Some(caller.actor.user_id)).await?;
    let cancelled = storage::run_items::cancel_pending(&mut tx, id).await?;
    record(&mut tx, caller, "run.cancel", "run", id, json!({"from": from.as_str(), "items_cancelled": cancelled}))
        .await?;
    storage::queue::notify(&mut tx, id).await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// A run with its content, environment, approvals and item counts.
pub async fn get_run(pool: &PgPool, id: RunId) -> AppResult<RunDetail> {
    let mut conn = pool.acquire().await.map_err(db)?;
    let run = storage::runs::get(&mut conn, id).await?;
    let version = storage::versions::get(&mut conn, run.version_id).await?;
    let migration = storage::migrations::get(&mut conn, version.migration_id).await?;
    let latest = storage::versions::latest(&mut conn, migration.id).await?;
    let latest_version_no = latest.as_ref().map_or(version.version_no, |l| l.version_no);
    let environment = storage::environments::get(&mut conn, run.environment_id).await?;
    let approvals = storage::approvals::list_for_run(&mut conn, id).await?;
    let current = latest.as_ref().map_or(version.checksums, |l| l.checksums);
    let decisions = decision_facts(&approvals);
    let state = approval_state(&environment.policy, &facts(&run), &decisions, &current);
    let stale = approvals
        .iter()
        .any(|a| a.decision == ApprovalDecision::Approve && a.direction == run.direction && a.pinned != current);
    let items = storage::run_items::count_by_status(&mut conn, id).await?;
    Ok(RunDetail {
        run,
        migration,
        version,
        latest_version_no,
        environment,
        approvals,
        approval: ApprovalStatus { state, stale },
        items,
        current,
    })
}

pub async fn list_runs(pool: &PgPool, filter: &RunFilter, page: &PageRequest<RunId>) -> AppResult<Page<Run, RunId>> {
    let mut conn = pool.acquire().await.map_err(db)?;
    Ok(storage::runs::list(&mut conn, filter, page).await?)
}

pub async fn list_items(
    pool: &PgPool,
    run: RunId,
    status: Option<RunItemStatus>,
    page: &PageRequest<u32>,
) -> AppResult<Page<RunItem, u32>> {
    let mut conn = pool.acquire().await.map_err(db)?;
    storage::runs::get(&mut conn, run).await?;
    Ok(storage::run_items::list_for_run(&mut conn, run, status, page).await?)
}

/// The log of one item of a run (404 if the item is not the run's).
pub async fn item_logs(
    pool: &PgPool,
    run: RunId,
    item: RunItemId,
    page: &PageRequest<u32>,
) -> AppResult<(RunItem, Page<RunItemLog, u32>)> {
    let mut conn = pool.acquire().await.map_err(db)?;
    let found = storage::run_items::get(&mut conn, item).await?;
    if found.run_id != run {
        return Err(AppError::NotFound { what: "run item" });
    }
    let logs = storage::logs::list(&mut conn, item, page).await?;
    Ok((found, logs))
}
