//! The run lifecycle (SPEC §4, "Releases"): request, approve or deny, execute, cancel, refresh, retry.
//!
//! A run is a release: an ordered list of one project's migration versions (every version up to a key, or
//! one migration), pinned at request with its content checksum (`domain::release::content_checksum`).
//! One approval covers the whole release and pins that checksum; neither the requester nor an author of a
//! version in the release may approve or deny it. Every decision is taken on the run's row under its lock,
//! with the rules of `domain::policy`, and recorded in the same transaction.
//!
//! An edit of a migration in a run that has not started makes the run stale: approving and executing it
//! are refused (409 `checksum_mismatch`) until it is refreshed, which re-pins the newest versions as a new
//! revision and asks for approval again. What a finished run shows never changes: its versions are its
//! own rows, frozen by a trigger once it has started.
//!
//! Pre-flight checks (`domain::release::preflight`) run at request, refresh and execute: what would make a
//! target fail before anything runs (a placeholder variable a target lacks, a split or transaction-mode
//! error, a down release without down scripts) is a 422 naming it.
//!
//! Refused approvals, denials, executions, cancellations, refreshes and retries are audited too
//! (`run.*_refused`, in their own transaction), so attempts at self-approval leave a trace.

use audit::Action;
use std::collections::HashMap;

use domain::ErrorCode;
use domain::checksum::Checksum;
use domain::enums::{ApprovalDecision, Direction, Engine, FailurePolicy, ForeignTool, Resolution, RunKind};
use domain::ids::{DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, TargetId, UserId};
use domain::model::{
    Approval, DbSet, Environment, LintOverride, NewApproval, NewRun, Project, ReleaseVersion, ReviewFinding, Run,
    RunAction, RunItem, RunItemLog, RunReview, RunScope, RunWaves, Target,
};
use domain::policy::{
    Actor, ApprovalFacts, ApprovalState, Denial, EnvironmentPolicy, approval_state, may_administer, may_approve,
    may_cancel, may_continue, may_deny, may_execute, may_refresh, may_request_run, may_retry,
};
use domain::release::{self, PreflightTarget, PreflightVersion, Problem, SelectError};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::{Name, VersionKey};
use domain::webhooks::WebhookEvent;
use serde::Deserialize;
use serde_json::json;
use storage::{Page, PageRequest, PgConnection, StorageError};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};

/// Most targets one run may hold items for at once, per concurrency setting.
pub const MAX_CONCURRENCY: u32 = 1000;

/// A run request: a release of one migration (`migration_id`) or of a project's migrations up to a version
/// (`project_id`, with `up_to`, or `down_to` for a down release).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRequest {
    /// A release of this one migration (its newest version).
    #[serde(default)]
    pub migration_id: Option<MigrationId>,
    /// With `migration_id`: the version number the requester reviewed; it must be the newest.
    #[serde(default)]
    pub version: Option<u32>,
    /// A release of this project's migrations.
    #[serde(default)]
    pub project_id: Option<ProjectId>,
    /// With `project_id`, up: the last version key applied (default: the project's newest).
    #[serde(default)]
    pub up_to: Option<String>,
    /// With `project_id`, down: every migration above this version key is reverted, newest first.
    #[serde(default)]
    pub down_to: Option<String>,
    /// `up` (default) or `down`.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// `release` (default): apply the versions; `baseline`: record the versions up to `up_to` as applied
    /// without running them; `adopt`: record as applied what another tool (`from`) applied, read from its
    /// history at request and again on the target; `recovery`: resolve the dirty history row of
    /// `version_key` on one target (`resolution`). Every kind is approved and executed like a release.
    #[serde(default)]
    pub kind: Option<RunKind>,
    pub environment_id: EnvironmentId,
    /// The db set whose members get an item; or `target_id`.
    #[serde(default)]
    pub db_set_id: Option<DbSetId>,
    /// One target instead of a db set (a recovery is always for one target).
    #[serde(default)]
    pub target_id: Option<TargetId>,
    /// Adoption: the tool whose history is read (`goose`, `golang-migrate`, `flyway`, `sqlx`, `diesel`,
    /// `dbmate`, `refinery`, `sql-migrate`).
    #[serde(default)]
    pub from: Option<ForeignTool>,
    /// Adoption: the tool's history table when it is not the tool's default (`schema.table` or `table`).
    #[serde(default)]
    pub from_table: Option<String>,
    /// Recovery: the version whose dirty row is resolved.
    #[serde(default)]
    pub version_key: Option<String>,
    /// Recovery: `mark_applied`, `mark_rolled_back` or `resume`.
    #[serde(default)]
    pub resolution: Option<Resolution>,
    /// Recovery: the row's statement count as the caller saw it (`GET /api/v1/targets/{id}/history`);
    /// refused (409 `row_changed`) if the row now says otherwise.
    #[serde(default)]
    pub seen_statements_done: Option<u32>,
    /// Recovery: the row's checksum (hex) as the caller saw it; refused (409 `row_changed`) if it differs.
    #[serde(default)]
    pub seen_checksum: Option<String>,
    /// `stop_on_first_failure` (default) or `continue`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// How many targets at once, 1 to 1000 (default 1).
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The content checksum the requester previewed (hex): refused (409 `content_changed`) if the release
    /// would now pin other content.
    #[serde(default)]
    pub content_checksum: Option<String>,
    /// An admin's reason to let a release go ahead although the environment's policy refuses what its SQL
    /// review found (audited, and shown on the run).
    #[serde(default)]
    pub lint_override: Option<String>,
    /// Roll out over a db set in stages: each wave's cumulative reach (`{"targets": 1}`, `{"percent": 10}`,
    /// the last `{"percent": 100}`) and `max_failures` (default 0). A wave starts when the one before ended
    /// within its budget; over it, the run halts.
    #[serde(default)]
    pub waves: Option<Vec<domain::waves::WaveSpec>>,
    /// With `waves`: `auto` (default), or `manual` (each next wave waits for Continue).
    #[serde(default)]
    pub advance: Option<domain::waves::Advance>,
    /// With `waves`: targets carrying this label (`key=value`, e.g. `canary=true`) go first.
    #[serde(default)]
    pub first_label: Option<String>,
    /// Nothing of the run is claimed before this instant (RFC 3339), once it is executed.
    #[serde(default)]
    pub not_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// An approve or deny decision.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionInput {
    #[serde(default)]
    pub comment: Option<String>,
    /// The content checksum the approver reviewed (hex); refused (409) if the run now pins other content.
    #[serde(default)]
    pub content_checksum: Option<String>,
    /// For a one-migration release: the version number the approver reviewed; refused (409) if the run
    /// applies another.
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
    /// The run has not started and a migration in it was edited since it was pinned: it must be
    /// refreshed (and approved again) before it can run.
    pub stale: bool,
}

/// A run with what is needed to show it.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: Run,
    pub project: Project,
    /// The versions the run applies, in apply order, as pinned.
    pub versions: Vec<ReleaseVersion>,
    /// The checksum of the content the run would apply now: the newest versions of its migrations (the
    /// pinned content for a run that has started).
    pub newest: Checksum,
    /// The newest version number of each of the run's migrations, where newer than the pinned one.
    pub newer: Vec<(MigrationId, u32)>,
    pub environment: Environment,
    /// The db set, for a run over one.
    pub db_set: Option<DbSet>,
    /// The target, for a run of one target.
    pub target: Option<Target>,
    pub approvals: Vec<Approval>,
    pub approval: ApprovalStatus,
    pub items: Vec<(RunItemStatus, u64)>,
    /// The runs that retry this one, oldest first.
    pub retries: Vec<RunId>,
    /// The SQL review findings pinned with the content (`None`: a run that runs no migration SQL, or one
    /// from before the review).
    pub review: Option<Vec<ReviewFinding>>,
    /// The run's waves and where it stands in them (`None`: it has none).
    pub waves: Option<RunWaves>,
    /// Nothing of the run is claimed before this.
    pub not_before: Option<chrono::DateTime<chrono::Utc>>,
    /// The environment's maintenance windows now (`any: false`: it has none).
    pub window: crate::windows::WindowState,
}

/// What one person may do with a run right now, and if not, why: the same `domain::policy` decisions the
/// actions themselves take, for pages that show a disabled button with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub approve: Result<(), Denial>,
    pub deny: Result<(), Denial>,
    pub execute: Result<(), Denial>,
    pub cancel: Result<(), Denial>,
    pub refresh: Result<(), Denial>,
    pub retry: Result<(), Denial>,
    /// Start the next wave, or resume after a halt.
    pub proceed: Result<(), Denial>,
}

impl RunDetail {
    /// What `actor` may do with this run.
    pub fn allowed(&self, actor: &Actor) -> Allowed {
        let run = self.run.facts();
        let decisions = decision_facts(&self.approvals);
        let fresh = if self.approval.stale { Err(Denial::ChecksumMismatch) } else { Ok(()) };
        let authors = authors_of(&self.versions);
        Allowed {
            approve: may_approve(actor, &run, &authors, &decisions).and(fresh),
            deny: may_deny(actor, &run, &authors, &decisions),
            execute: may_execute(actor, &run, &self.environment.policy, &decisions, &self.newest),
            cancel: may_cancel(actor, &run),
            // Only a stale run has anything to refresh to.
            refresh: may_refresh(actor, &run).and(if self.approval.stale {
                Ok(())
            } else {
                Err(Denial::WrongStatus { action: "refresh", status: self.run.status })
            }),
            retry: may_retry(actor, &run),
            proceed: may_continue(
                actor,
                &run,
                &self.environment.policy,
                self.waves.as_ref().is_some_and(RunWaves::awaiting_continue),
            ),
        }
    }

    /// Whether the run is a release of a single migration.
    pub fn single(&self) -> Option<&ReleaseVersion> {
        match self.versions.as_slice() {
            [one] => Some(one),
            _ => None,
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
            ErrorCode::InvalidIdempotencyKey,
            "the Idempotency-Key must be 1 to 200 printable ASCII characters without spaces",
        )),
    }
}

pub(crate) fn decision_facts(approvals: &[Approval]) -> Vec<ApprovalFacts> {
    approvals.iter().map(Approval::facts).collect()
}

/// Who wrote the content of a run: the author of every version it pins (none of them may decide on it).
fn authors_of(versions: &[ReleaseVersion]) -> Vec<UserId> {
    let mut authors: Vec<UserId> = versions.iter().map(|v| v.version.author_id).collect();
    authors.sort_unstable();
    authors.dedup();
    authors
}

/// The content checksum of a run doing `action` with `versions` as they are pinned (their stored checksums).
fn content_of(action: &RunAction, versions: &[ReleaseVersion]) -> Checksum {
    release::run_content(action, versions.iter().map(|v| (&v.version_key, &v.version.checksums)))
}

/// The content checksum of `versions` recomputed from their stored SQL: equal to [`content_of`] unless the
/// stored text was changed behind the hub's back.
fn content_from_sql(action: &RunAction, versions: &[ReleaseVersion]) -> Checksum {
    let recomputed: Vec<_> = versions.iter().map(|v| (&v.version_key, v.version.checksums_of_text())).collect();
    release::run_content(action, recomputed.iter().map(|(k, c)| (*k, c)))
}

/// The newest versions of the migrations of `pinned`, in the same order.
async fn newest_of(
    conn: &mut PgConnection,
    project: ProjectId,
    pinned: &[ReleaseVersion],
) -> AppResult<Vec<ReleaseVersion>> {
    let ids: Vec<MigrationId> = pinned.iter().map(|v| v.version.migration_id).collect();
    let mut newest: HashMap<MigrationId, ReleaseVersion> =
        storage::versions::newest_of_project(conn, project, Some(&ids))
            .await?
            .into_iter()
            .map(|v| (v.version.migration_id, v))
            .collect();
    pinned
        .iter()
        .map(|p| {
            let mut v =
                newest.remove(&p.version.migration_id).ok_or(AppError::NotFound { what: "migration version" })?;
            v.position = p.position;
            Ok(v)
        })
        .collect()
}

/// The versions a request asks for, in apply order.
async fn resolve(
    conn: &mut PgConnection,
    input: &RunRequest,
    direction: Direction,
) -> AppResult<(Project, Vec<ReleaseVersion>)> {
    match (input.migration_id, input.project_id) {
        (Some(_), Some(_)) => Err(AppError::invalid(
            "project_id",
            ErrorCode::ConflictingFields,
            "give either migration_id (a release of one migration) or project_id (a release of the project), not both",
        )),
        (None, None) => Err(AppError::invalid(
            "migration_id",
            ErrorCode::Missing,
            "give migration_id (a release of one migration) or project_id (a release of the project's migrations)",
        )),
        (Some(migration_id), None) => {
            if input.up_to.is_some() || input.down_to.is_some() {
                return Err(AppError::invalid(
                    if input.up_to.is_some() { "up_to" } else { "down_to" },
                    ErrorCode::ConflictingFields,
                    "up_to and down_to go with project_id, not with migration_id",
                ));
            }
            let migration = storage::migrations::get(conn, migration_id).await?;
            let version = storage::versions::latest(conn, migration.id)
                .await?
                .ok_or(AppError::NotFound { what: "migration version" })?;
            if let Some(wanted) = input.version
                && wanted != version.version_no
            {
                return Err(AppError::conflict(
                    ErrorCode::VersionSuperseded,
                    format!(
                        "version {wanted} is not the newest version of this migration (version {} is); review it and request again",
                        version.version_no
                    ),
                ));
            }
            if direction == Direction::Down && version.down_sql.is_none() {
                return Err(AppError::invalid(
                    "direction",
                    ErrorCode::NoDown,
                    "this migration has no down script to run",
                ));
            }
            let project = storage::projects::get(conn, migration.project_id).await?;
            let name = migration.name.clone();
            Ok((project, vec![ReleaseVersion { position: 0, version_key: migration.version_key, name, version }]))
        }
        (None, Some(project_id)) => {
            if input.version.is_some() {
                return Err(AppError::invalid(
                    "version",
                    ErrorCode::ConflictingFields,
                    "version goes with migration_id; with project_id use up_to or down_to",
                ));
            }
            let project = storage::projects::get(conn, project_id).await.map_err(|e| match e {
                StorageError::NotFound(_) => {
                    AppError::invalid("project_id", ErrorCode::UnknownProject, "no such project")
                }
                other => other.into(),
            })?;
            let all = storage::versions::newest_of_project(conn, project.id, None).await?;
            let keys: Vec<VersionKey> = all.iter().map(|v| v.version_key.clone()).collect();
            let key = |field: &'static str, text: &Option<String>| -> AppResult<Option<VersionKey>> {
                text.as_deref().map(|t| VersionKey::parse(t).map_err(AppError::value(field))).transpose()
            };
            let (field, chosen) = match direction {
                Direction::Up => {
                    if input.down_to.is_some() {
                        return Err(AppError::invalid(
                            "down_to",
                            ErrorCode::ConflictingFields,
                            "down_to goes with direction down",
                        ));
                    }
                    ("up_to", release::select_up(&keys, key("up_to", &input.up_to)?.as_ref()))
                }
                Direction::Down => {
                    if input.up_to.is_some() {
                        return Err(AppError::invalid(
                            "up_to",
                            ErrorCode::ConflictingFields,
                            "up_to goes with direction up",
                        ));
                    }
                    let down_to = key("down_to", &input.down_to)?.ok_or_else(|| {
                        AppError::invalid(
                            "down_to",
                            ErrorCode::Missing,
                            "a down release needs down_to: the version to go back to (every migration above it is reverted)",
                        )
                    })?;
                    ("down_to", release::select_down(&keys, &down_to))
                }
            };
            let chosen = chosen.map_err(|e| match e {
                SelectError::UnknownVersion { .. } => {
                    AppError::invalid(field, ErrorCode::UnknownVersion, e.to_string())
                }
                SelectError::Empty => AppError::invalid(field, ErrorCode::NothingToApply, e.to_string()),
            })?;
            let mut all: Vec<Option<ReleaseVersion>> = all.into_iter().map(Some).collect();
            let versions = chosen
                .into_iter()
                .enumerate()
                .filter_map(|(position, i)| {
                    all.get_mut(i).and_then(Option::take).map(|mut v| {
                        v.position = u32::try_from(position).unwrap_or(u32::MAX);
                        v
                    })
                })
                .collect();
            Ok((project, versions))
        }
    }
}

/// Every target of a db set (all pages).
async fn set_targets(conn: &mut PgConnection, set: DbSetId) -> AppResult<Vec<Target>> {
    let mut targets = Vec::new();
    let mut page: PageRequest<Name> = PageRequest::first(storage::MAX_PAGE);
    loop {
        let found = storage::db_sets::list_members(conn, set, None, &page).await?;
        targets.extend(found.items);
        match found.next {
            Some(next) => page = PageRequest::after(next, storage::MAX_PAGE),
            None => return Ok(targets),
        }
    }
}

/// The SQL review of a release of `versions` to `targets`, with `project`'s dialects and switched-off rules.
pub(crate) fn review_of(
    direction: Direction,
    versions: &[ReleaseVersion],
    targets: &[Target],
    project: &Project,
) -> RunReview {
    let versions = preflight_versions(versions);
    let mut engines: Vec<Engine> =
        Engine::ALL.iter().copied().filter(|e| targets.iter().any(|t| t.engine == *e)).collect();
    engines.retain(|e| project.review.dialects.contains(e));
    release::review(direction, &versions, &engines, &project.review.rules_off)
}

/// Refuses (422 `dialect_not_declared`) a release to targets of an engine `project` does not write its
/// migrations for.
fn dialects_declared(project: &Project, targets: &[Target]) -> AppResult<()> {
    let Some(target) = targets.iter().find(|t| !project.review.dialects.contains(&t.engine)) else { return Ok(()) };
    let declared: Vec<&str> = project.review.dialects.iter().map(|d| d.as_str()).collect();
    Err(AppError::invalid(
        "db_set_id",
        ErrorCode::DialectNotDeclared,
        format!(
            "target {} is {}, but project {} declares its migrations for {} only; add the dialect to the project \
             if its SQL is written for it",
            target.name,
            target.engine,
            project.name,
            declared.join(" and ")
        ),
    ))
}

/// What the environment's policy refuses of `review`: nothing, or 422 listing the findings, unless an admin
/// gives a reason to let it through (`reason`), which the run then keeps.
fn review_gate(
    policy: &EnvironmentPolicy,
    review: &RunReview,
    reason: Option<String>,
    caller: &Caller,
) -> AppResult<Option<LintOverride>> {
    let refused = release::blocking(review, policy.lint_block);
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if let Some(reason) = &reason {
        may_administer(&caller.actor)?;
        if reason.chars().count() > MAX_OVERRIDE_REASON {
            return Err(AppError::invalid(
                "lint_override",
                ErrorCode::TooLong,
                format!("the override reason is longer than {MAX_OVERRIDE_REASON} characters"),
            ));
        }
    }
    match (refused.first(), reason) {
        (None, _) => Ok(None),
        (Some(_), Some(reason)) => Ok(Some(LintOverride { reason, by: caller.actor.user_id })),
        (Some(first), None) => Err(AppError::Invalid {
            field: Some("migrations"),
            code: first.code(),
            message: format!(
                "the SQL review refuses this release under the environment's policy (lint_block {}): {}; fix \
                 the migrations, mark an accepted finding with `-- migrate-hub:ignore <rule>`, or have an admin \
                 override with a reason",
                policy.lint_block,
                release::summarize(&refused)
            ),
        }),
    }
}

/// The longest reason an admin may give for an override.
const MAX_OVERRIDE_REASON: usize = 2000;

fn preflight_versions(versions: &[ReleaseVersion]) -> Vec<PreflightVersion<'_>> {
    versions
        .iter()
        .map(|v| PreflightVersion {
            version_key: &v.version_key,
            up_sql: &v.version.up_sql,
            down_sql: v.version.down_sql.as_deref(),
            transaction_mode: v.version.transaction_mode,
            lint: &v.version.lint_results,
        })
        .collect()
}

/// The problems pre-flight finds for `versions` on the targets of `set`.
pub(crate) fn problems(direction: Direction, versions: &[ReleaseVersion], targets: &[Target]) -> Vec<Problem> {
    let versions = preflight_versions(versions);
    let targets: Vec<PreflightTarget<'_>> = targets
        .iter()
        .map(|t| PreflightTarget { name: t.name.as_str(), engine: t.engine, variables: &t.variables })
        .collect();
    release::preflight(direction, &versions, &targets)
}

/// The targets a run of `scope` has items for.
async fn scope_targets(conn: &mut PgConnection, scope: RunScope) -> AppResult<Vec<Target>> {
    match scope {
        RunScope::Set(set) => set_targets(conn, set).await,
        RunScope::Target(target) => Ok(vec![storage::targets::get(conn, target).await?]),
    }
}

/// Refuses (422) a release that pre-flight says cannot work on some target of its scope. A baseline, an
/// adoption and a mark run nothing; a resume was checked on its target at request.
async fn preflight(conn: &mut PgConnection, run: &Run, versions: &[ReleaseVersion]) -> AppResult<()> {
    if run.action != RunAction::Release {
        return Ok(());
    }
    let targets = scope_targets(conn, run.scope).await?;
    preflight_on(run.direction, versions, &targets)
}

fn preflight_on(direction: Direction, versions: &[ReleaseVersion], targets: &[Target]) -> AppResult<()> {
    let found = problems(direction, versions, targets);
    let Some(first) = found.first() else { return Ok(()) };
    let field = match first {
        Problem::MissingVariable { .. } => "db_set_id",
        Problem::NoDown { .. } => "direction",
        _ => "migrations",
    };
    Err(AppError::Invalid {
        field: Some(field),
        code: first.code(),
        message: format!("pre-flight check failed: {}", release::summarize(&found)),
    })
}

fn versions_json(versions: &[ReleaseVersion]) -> serde_json::Value {
    versions
        .iter()
        .map(|v| {
            json!({
                "version_key": v.version_key.as_str(), "version_no": v.version.version_no,
                "up_checksum": v.version.checksums.up.to_hex(),
                "down_checksum": v.version.checksums.down.map(|c| c.to_hex()),
            })
        })
        .collect()
}

/// What a request would pin, checked: for the request form's preview.
#[derive(Debug, Clone)]
pub struct Preview {
    pub project: Project,
    pub versions: Vec<ReleaseVersion>,
    pub content: Checksum,
    pub problems: Vec<Problem>,
    pub targets: usize,
    /// The SQL review for the set's engines, and what of it the environment's policy refuses.
    pub review: RunReview,
    pub refused: Vec<Problem>,
    /// How many approvals the release would need (the review's risk included).
    pub approvals_needed: u8,
}

/// The release a request would make and what pre-flight finds, without making it.
pub async fn preview(hub: &Hub, input: &RunRequest) -> AppResult<Preview> {
    let direction = input.direction.unwrap_or(Direction::Up);
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let (project, versions) = resolve(&mut conn, input, direction).await?;
    let environment = environment_of(&mut conn, input.environment_id).await?;
    let (_, targets, _) = scope_of(&mut conn, &environment, input.db_set_id, input.target_id).await?;
    let mut problems = problems(direction, &versions, &targets);
    if let Err(AppError::Invalid { message, .. }) = dialects_declared(&project, &targets) {
        problems.insert(0, Problem::Undeclared { message });
    }
    let review = review_of(direction, &versions, &targets, &project);
    let refused = release::blocking(&review, environment.policy.lint_block);
    Ok(Preview {
        content: content_of(&RunAction::Release, &versions),
        approvals_needed: environment.policy.approvals_needed(Some(review.risk)),
        project,
        versions,
        problems,
        targets: targets.len(),
        review,
        refused,
    })
}

async fn environment_of(conn: &mut PgConnection, environment: EnvironmentId) -> AppResult<Environment> {
    storage::environments::get(conn, environment).await.map_err(|e| match e {
        StorageError::NotFound(_) => {
            AppError::invalid("environment_id", ErrorCode::UnknownEnvironment, "no such environment")
        }
        other => other.into(),
    })
}

/// The scope a request names (a db set or one target of `environment`), its targets and its name.
async fn scope_of(
    conn: &mut PgConnection,
    environment: &Environment,
    set: Option<DbSetId>,
    target: Option<TargetId>,
) -> AppResult<(RunScope, Vec<Target>, String)> {
    match (set, target) {
        (Some(_), Some(_)) => Err(AppError::invalid(
            "target_id",
            ErrorCode::ConflictingFields,
            "give either db_set_id (every member of a set) or target_id (one target), not both",
        )),
        (None, None) => Err(AppError::invalid(
            "db_set_id",
            ErrorCode::Missing,
            "name the targets: db_set_id (every member of a set) or target_id (one target)",
        )),
        (Some(set), None) => {
            let set = db_set_of(conn, environment.id, set).await?;
            let targets = set_targets(conn, set.id).await?;
            if targets.is_empty() {
                return Err(AppError::invalid("db_set_id", ErrorCode::EmptyDbSet, "the db set has no targets"));
            }
            Ok((RunScope::Set(set.id), targets, set.name.as_str().to_owned()))
        }
        (None, Some(target)) => {
            let target = storage::targets::get(conn, target).await.map_err(|e| match e {
                StorageError::NotFound(_) => AppError::invalid("target_id", ErrorCode::UnknownTarget, "no such target"),
                other => other.into(),
            })?;
            if target.environment_id != environment.id {
                return Err(AppError::invalid(
                    "target_id",
                    ErrorCode::WrongEnvironment,
                    "the target belongs to another environment",
                ));
            }
            let name = format!("target {}", target.name);
            Ok((RunScope::Target(target.id), vec![target], name))
        }
    }
}

async fn db_set_of(conn: &mut PgConnection, environment: EnvironmentId, set: DbSetId) -> AppResult<DbSet> {
    let environment = storage::environments::get(conn, environment).await.map_err(|e| match e {
        StorageError::NotFound(_) => {
            AppError::invalid("environment_id", ErrorCode::UnknownEnvironment, "no such environment")
        }
        other => other.into(),
    })?;
    let set = storage::db_sets::get(conn, set).await.map_err(|e| match e {
        StorageError::NotFound(_) => AppError::invalid("db_set_id", ErrorCode::UnknownDbSet, "no such db set"),
        other => other.into(),
    })?;
    if set.environment_id != environment.id {
        return Err(AppError::invalid(
            "db_set_id",
            ErrorCode::WrongEnvironment,
            "the db set belongs to another environment",
        ));
    }
    Ok(set)
}

/// Requests a run. With an idempotency key, repeating the same request returns the first run (`created:
/// false`) however many arrive at once; the same key with a different request is a conflict. A baseline,
/// adoption or recovery reads its targets at request (with `keys` to open their passwords; see
/// `run_actions`), so that whoever approves decides on what was read.
pub async fn request_run(
    hub: &Hub,
    caller: &Caller,
    keys: Option<&auth::secrets::KeyRing>,
    input: RunRequest,
    key: Option<String>,
) -> AppResult<Requested> {
    let kind = input.kind.unwrap_or(RunKind::Release);
    may_request_run(&caller.actor, kind)?;
    let key = idempotency_key(key)?;
    let direction = input.direction.unwrap_or(Direction::Up);
    let failure_policy = input.failure_policy.unwrap_or(FailurePolicy::StopOnFirstFailure);
    let concurrency_limit = input.concurrency_limit.unwrap_or(1);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency_limit) {
        return Err(AppError::invalid(
            "concurrency_limit",
            ErrorCode::OutOfRange,
            format!("concurrency_limit must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    let comment = comment(input.comment.clone())?;
    let options = (direction, failure_policy, concurrency_limit, comment.as_str());
    let (environment, scope, targets, scope_name) = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        if let Some(key) = &key
            && let Some(existing) = storage::runs::find_by_idempotency_key(&mut conn, caller.actor.user_id, key).await?
        {
            return same_request(&mut conn, existing, &input, options).await;
        }
        let environment = environment_of(&mut conn, input.environment_id).await?;
        let (scope, targets, name) = scope_of(&mut conn, &environment, input.db_set_id, input.target_id).await?;
        (environment, scope, targets, name)
    };
    let waves = crate::waves::requested(&input, scope, targets.len())?;
    let (project, versions, action) = if kind == RunKind::Release {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        let (project, versions) = resolve(&mut conn, &input, direction).await?;
        (project, versions, RunAction::Release)
    } else {
        crate::run_actions::resolve(hub, keys, &input, kind, scope, &targets).await?
    };
    let content = content_of(&action, &versions);
    if let Some(previewed) = &input.content_checksum
        && !previewed.eq_ignore_ascii_case(&content.to_hex())
    {
        return Err(AppError::conflict(
            ErrorCode::ContentChanged,
            format!(
                "you previewed content {previewed}, but the release would now pin content {}; preview it again",
                content.to_hex()
            ),
        ));
    }
    let (review, lint_override) = if action == RunAction::Release {
        dialects_declared(&project, &targets)?;
        preflight_on(direction, &versions, &targets)?;
        let review = review_of(direction, &versions, &targets, &project);
        let lint_override = review_gate(&environment.policy, &review, input.lint_override.clone(), caller)?;
        (Some(review), lint_override)
    } else {
        (None, None)
    };
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let new = NewRun {
        project_id: project.id,
        versions: versions.iter().map(|v| v.version.id).collect(),
        content,
        retry_of: None,
        targets: None,
        direction,
        action: action.clone(),
        environment_id: environment.id,
        scope,
        status: RunStatus::initial(environment.policy.approval_required),
        failure_policy,
        concurrency_limit,
        comment: comment.clone(),
        requested_by: caller.actor.user_id,
        idempotency_key: key.clone(),
        review: review.clone(),
        lint_override: lint_override.clone(),
        first_label: waves.as_ref().and_then(|w| w.label.clone()),
    };
    let (run, items) = match storage::runs::create(&mut tx, &new).await {
        Ok(created) => created,
        Err(e) if e.is_conflict_on("runs_idempotency_key") => {
            // Another request with the same key committed first: answer with its run.
            drop(tx);
            let mut conn = hub.pool.acquire().await.map_err(db)?;
            let key = key.as_deref().unwrap_or_default();
            let existing = storage::runs::find_by_idempotency_key(&mut conn, caller.actor.user_id, key)
                .await?
                .ok_or(AppError::NotFound { what: "run" })?;
            return same_request(&mut conn, existing, &input, options).await;
        }
        Err(e) => return Err(e.into()),
    };
    if items == 0 {
        return Err(AppError::invalid("db_set_id", ErrorCode::EmptyDbSet, "the db set has no targets"));
    }
    let planned = match &waves {
        Some(waves) => Some(crate::waves::store(&mut tx, run.id, waves, items).await?),
        None => None,
    };
    if let Some(at) = input.not_before {
        storage::runs::schedule(&mut tx, run.id, at).await?;
    }
    let mut details = json!({
        "kind": kind.as_str(), "project": project.name.as_str(), "migrations": versions_json(&versions),
        "content_checksum": content.to_hex(), "direction": direction.as_str(),
        "environment": environment.name.as_str(), "scope": scope_name,
        "items": items, "status": run.status.as_str(),
    });
    if let Some(at) = input.not_before {
        details["not_before"] = json!(at);
    }
    if let (Some(planned), Some(waves)) = (&planned, &waves) {
        details["waves"] = crate::waves::details(planned, waves);
    }
    if let Some(review) = &review {
        details["risk"] = json!(review.risk.as_str());
        details["findings"] = json!(review.findings.iter().filter(|f| !f.message.ignored).count());
        details["approvals_needed"] = json!(environment.policy.approvals_needed(Some(review.risk)));
        if let Some(o) = &lint_override {
            let refused = release::blocking(review, environment.policy.lint_block);
            details["lint_override"] = json!({
                "reason": o.reason,
                "refused": refused.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
        }
    }
    match &action {
        RunAction::Release | RunAction::Baseline => {}
        RunAction::Adopt { from, table } => {
            details["from"] = json!(from.as_str());
            details["from_table"] = json!(table);
        }
        RunAction::Recovery { resolution, seen } => {
            details["resolution"] = json!(resolution.as_str());
            details["seen"] = json!({
                "status": seen.status, "statements_done": seen.statements_done,
                "statements_total": seen.statements_total,
                "checksum": seen.checksum.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            });
        }
    }
    record(&mut tx, hub, caller, Action::RunRequest, "run", run.id, details).await?;
    if run.status == RunStatus::AwaitingApproval {
        crate::webhooks::notify(&mut tx, hub, run.id, WebhookEvent::ApprovalRequested).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Requested { run, created: true })
}

async fn same_request(
    conn: &mut PgConnection,
    existing: Run,
    input: &RunRequest,
    (direction, failure_policy, concurrency_limit, comment): (Direction, FailurePolicy, u32, &str),
) -> AppResult<Requested> {
    let reused = || {
        AppError::conflict(
            ErrorCode::IdempotencyKeyReused,
            format!("this Idempotency-Key was already used for a different run request (run {})", existing.id),
        )
    };
    let scope = match (input.db_set_id, input.target_id) {
        (Some(set), None) => Some(RunScope::Set(set)),
        (None, Some(target)) => Some(RunScope::Target(target)),
        _ => None,
    };
    let same_options = existing.direction == direction
        && existing.action.kind() == input.kind.unwrap_or(RunKind::Release)
        && existing.environment_id == input.environment_id
        && Some(existing.scope) == scope
        && existing.failure_policy == failure_policy
        && existing.concurrency_limit == concurrency_limit
        && existing.comment == comment;
    if !same_options
        || !crate::waves::same_plan(storage::runs::waves(conn, existing.id).await?.as_ref(), input)
        || storage::runs::not_before(conn, existing.id).await? != input.not_before
    {
        return Err(reused());
    }
    if existing.action != RunAction::Release {
        // A baseline, adoption or recovery read its targets at request; the same request again is the
        // same run (the worker reads the target again in any case).
        return if input.project_id == Some(existing.project_id) {
            Ok(Requested { run: existing, created: false })
        } else {
            Err(reused())
        };
    }
    // The same selection of migrations: what this request resolves to now must be what the first pinned
    // (an edit in between gives the first run back, which the requester can refresh).
    let (project, wanted) = resolve(conn, input, direction).await.map_err(|_| reused())?;
    let pinned = storage::versions::of_run(conn, existing.id).await?;
    let migrations = |versions: &[ReleaseVersion]| versions.iter().map(|v| v.version.migration_id).collect::<Vec<_>>();
    if project.id != existing.project_id || migrations(&wanted) != migrations(&pinned) {
        return Err(reused());
    }
    Ok(Requested { run: existing, created: false })
}

/// Records a refused action in its own transaction (the action's was rolled back). A failure to record is
/// logged, not returned: the caller still gets the refusal.
pub(crate) async fn record_refusal(hub: &Hub, caller: &Caller, action: Action, run: RunId, error: &AppError) {
    if !matches!(error, AppError::Denied(_) | AppError::Conflict { .. } | AppError::Invalid { .. }) {
        return;
    }
    let result = async {
        let mut tx = hub.pool.begin().await.map_err(db)?;
        record(
            &mut tx,
            hub,
            caller,
            action,
            "run",
            run,
            json!({"reason": error.code().as_str(), "message": error.to_string()}),
        )
        .await?;
        tx.commit().await.map_err(db)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(run.id = %run, error = %auth::error_chain(&e), "could not audit a refused action");
    }
}

/// Approves a run: pins the content checksum of the release it applies.
pub async fn approve(hub: &Hub, caller: &Caller, id: RunId, input: DecisionInput) -> AppResult<Run> {
    let result = decide(hub, caller, id, input, ApprovalDecision::Approve).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunApproveRefused, id, e).await;
    }
    result
}

/// Denies a run; a deny is final.
pub async fn deny(hub: &Hub, caller: &Caller, id: RunId, input: DecisionInput) -> AppResult<Run> {
    let result = decide(hub, caller, id, input, ApprovalDecision::Deny).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunDenyRefused, id, e).await;
    }
    result
}

async fn decide(
    hub: &Hub,
    caller: &Caller,
    id: RunId,
    input: DecisionInput,
    decision: ApprovalDecision,
) -> AppResult<Run> {
    let comment = comment(input.comment)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let mut run = storage::runs::lock(&mut tx, id).await?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    let approvals = storage::approvals::list_for_run(&mut tx, id).await?;
    let decisions = decision_facts(&approvals);
    let versions = storage::versions::of_run(&mut tx, id).await?;
    let authors = authors_of(&versions);
    match decision {
        ApprovalDecision::Approve => may_approve(&caller.actor, &run.facts(), &authors, &decisions)?,
        ApprovalDecision::Deny => may_deny(&caller.actor, &run.facts(), &authors, &decisions)?,
    }
    if let Some(reviewed) = &input.content_checksum
        && !reviewed.eq_ignore_ascii_case(&run.content.to_hex())
    {
        return Err(AppError::conflict(
            ErrorCode::ContentChanged,
            format!(
                "you reviewed content {reviewed}, but the run pins content {}; review it and decide again",
                run.content.to_hex()
            ),
        ));
    }
    if let Some(reviewed) = input.version {
        match versions.as_slice() {
            [one] if one.version.version_no == reviewed => {}
            [one] => {
                return Err(AppError::conflict(
                    ErrorCode::ContentChanged,
                    format!(
                        "you reviewed version {reviewed}, but the run applies version {}; review it and decide again",
                        one.version.version_no
                    ),
                ));
            }
            _ => {
                return Err(AppError::invalid(
                    "version",
                    ErrorCode::NotSingle,
                    "this run is a release of several migrations: name the content you reviewed with content_checksum",
                ));
            }
        }
    }
    // An approval of content that is no longer the newest could never be executed: refresh first.
    if decision == ApprovalDecision::Approve
        && content_of(&run.action, &newest_of(&mut tx, run.project_id, &versions).await?) != run.content
    {
        return Err(Denial::ChecksumMismatch.into());
    }
    let approval = storage::approvals::create(
        &mut tx,
        &NewApproval {
            run_id: id,
            approver: caller.actor.user_id,
            decision,
            comment,
            pinned: run.content,
            carried_from: None,
        },
    )
    .await?;
    let mut all = approvals;
    all.push(approval);
    let state = approval_state(&environment.policy, &run.facts(), &decision_facts(&all));
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
        _ => {
            let need = environment.policy.approvals_needed(run.risk);
            (need, need)
        }
    };
    let action = match decision {
        ApprovalDecision::Approve => Action::RunApprove,
        ApprovalDecision::Deny => Action::RunDeny,
    };
    record(
        &mut tx,
        hub,
        caller,
        action,
        "run",
        id,
        json!({
            "revision": run.revision, "direction": run.direction.as_str(),
            "content_checksum": run.content.to_hex(), "migrations": versions_json(&versions),
            "approvals": have, "needed": need, "status": run.status.as_str(),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// Executes an approved run: queues its items for the workers.
pub async fn execute(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = execute_inner(hub, caller, id).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunExecuteRefused, id, e).await;
    }
    result
}

async fn execute_inner(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let run = storage::runs::lock(&mut tx, id).await?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    let versions = storage::versions::of_run(&mut tx, id).await?;
    let approvals = storage::approvals::list_for_run(&mut tx, id).await?;
    // What would be applied is the newest content of the run's migrations: after an edit it is not what
    // the run pinned (and was approved for), and the run must be refreshed first.
    let newest = content_of(&run.action, &newest_of(&mut tx, run.project_id, &versions).await?);
    may_execute(&caller.actor, &run.facts(), &environment.policy, &decision_facts(&approvals), &newest)?;
    // The stored text must still hash to the stored checksums (the workers check again before applying).
    if content_from_sql(&run.action, &versions) != run.content {
        return Err(AppError::conflict(
            ErrorCode::StoredSqlMismatch,
            "the stored SQL of a version in this run no longer matches its checksums; refusing to execute",
        ));
    }
    // The targets may have changed since the request (variables, members): check again.
    preflight(&mut tx, &run, &versions).await?;
    let run =
        storage::runs::set_status(&mut tx, id, RunStatus::Approved, RunStatus::Queued, Some(caller.actor.user_id))
            .await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::RunExecute,
        "run",
        id,
        json!({"content_checksum": run.content.to_hex(), "migrations": versions.len(), "status": run.status.as_str()}),
    )
    .await?;
    // Delivered at commit: workers wake as soon as the items are claimable.
    storage::queue::notify(&mut tx, id).await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// Re-pins a run that has not started, after an edit of one of its migrations, to the newest versions of
/// its migrations: a new revision, whose approval is asked for again (earlier decisions stay on record
/// and no longer count).
pub async fn refresh(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = refresh_inner(hub, caller, id).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunRefreshRefused, id, e).await;
    }
    result
}

async fn refresh_inner(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let run = storage::runs::lock(&mut tx, id).await?;
    may_refresh(&caller.actor, &run.facts())?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    let pinned = storage::versions::of_run(&mut tx, id).await?;
    let newest = newest_of(&mut tx, run.project_id, &pinned).await?;
    let content = content_of(&run.action, &newest);
    if content == run.content {
        return Err(AppError::conflict(
            ErrorCode::NotStale,
            "the run already pins the newest version of each of its migrations; there is nothing to refresh",
        ));
    }
    preflight(&mut tx, &run, &newest).await?;
    // The new content is reviewed as a request is; an admin's override was for the old content and goes.
    let review = if run.action == RunAction::Release {
        let project = storage::projects::get(&mut tx, run.project_id).await?;
        let targets = scope_targets(&mut tx, run.scope).await?;
        dialects_declared(&project, &targets)?;
        let review = review_of(run.direction, &newest, &targets, &project);
        review_gate(&environment.policy, &review, None, caller)?;
        Some(review)
    } else {
        None
    };
    let status = RunStatus::initial(environment.policy.approval_required);
    let ids: Vec<_> = newest.iter().map(|v| v.version.id).collect();
    let refreshed = storage::runs::repin(&mut tx, id, &ids, &content, status, review.as_ref()).await?;
    let changed: Vec<serde_json::Value> = pinned
        .iter()
        .zip(&newest)
        .filter(|(old, new)| old.version.id != new.version.id)
        .map(|(old, new)| json!({"version_key": new.version_key.as_str(), "from": old.version.version_no, "to": new.version.version_no}))
        .collect();
    record(
        &mut tx,
        hub,
        caller,
        Action::RunRefresh,
        "run",
        id,
        json!({
            "revision": refreshed.revision, "from_content": run.content.to_hex(), "content_checksum": content.to_hex(),
            "changed": changed, "status": refreshed.status.as_str(),
            "risk": refreshed.risk.map(|r| r.as_str()),
        }),
    )
    .await?;
    if refreshed.status == RunStatus::AwaitingApproval {
        crate::webhooks::notify(&mut tx, hub, id, WebhookEvent::ApprovalRequested).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(refreshed)
}

/// Makes a new run over the same content for the targets of a failed or cancelled run that did not
/// finish (failed, cancelled or never ran). Same content and environment, so the original's approvals
/// are carried over (each audited): the retry starts approved when they still satisfy the policy.
pub async fn retry(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = retry_inner(hub, caller, id).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunRetryRefused, id, e).await;
    }
    result
}

async fn retry_inner(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let original = storage::runs::lock(&mut tx, id).await?;
    may_retry(&caller.actor, &original.facts())?;
    let environment = storage::environments::get(&mut tx, original.environment_id).await?;
    let targets = storage::runs::unfinished_targets(&mut tx, id).await?;
    if targets.is_empty() {
        return Err(AppError::conflict(
            ErrorCode::NothingToRetry,
            "every target of this run finished; there is nothing to retry",
        ));
    }
    let versions = storage::versions::of_run(&mut tx, id).await?;
    // The same content: the same review, and the same admin's override, carried over with the approvals.
    let review = match (original.risk, storage::runs::review(&mut tx, id).await?) {
        (Some(risk), Some(findings)) => Some(RunReview { risk, findings }),
        _ => None,
    };
    let new = NewRun {
        project_id: original.project_id,
        versions: versions.iter().map(|v| v.version.id).collect(),
        content: original.content,
        retry_of: Some(original.id),
        targets: Some(targets),
        direction: original.direction,
        action: original.action.clone(),
        environment_id: original.environment_id,
        scope: original.scope,
        status: RunStatus::initial(environment.policy.approval_required),
        failure_policy: original.failure_policy,
        concurrency_limit: original.concurrency_limit,
        comment: original.comment.clone(),
        // The same request, retried: separation of duties keeps holding against the original requester.
        requested_by: original.requested_by,
        idempotency_key: None,
        review,
        lint_override: original.lint_override.clone(),
        // A retry goes to the targets that did not finish, at once: its waves were the original's.
        first_label: None,
    };
    let (mut run, items) = storage::runs::create(&mut tx, &new).await?;
    if items == 0 {
        return Err(AppError::conflict(
            ErrorCode::NothingToRetry,
            "none of the unfinished targets is still a member of the db set; there is nothing to retry",
        ));
    }
    let mut carried = Vec::new();
    if environment.policy.approval_required {
        let approvals = storage::approvals::list_for_run(&mut tx, id).await?;
        for approval in approvals.iter().filter(|a| {
            a.decision == ApprovalDecision::Approve
                && a.direction == original.direction
                && a.revision == original.revision
                && a.pinned == original.content
                && a.approver != original.requested_by
        }) {
            let copy = storage::approvals::create(
                &mut tx,
                &NewApproval {
                    run_id: run.id,
                    approver: approval.approver,
                    decision: ApprovalDecision::Approve,
                    comment: approval.comment.clone(),
                    pinned: approval.pinned,
                    carried_from: Some(approval.id),
                },
            )
            .await?;
            record(
                &mut tx,
                hub,
                caller,
                Action::RunApprovalCarried,
                "run",
                run.id,
                json!({"from_run": original.id, "from_approval": approval.id, "approver": approval.approver, "content_checksum": approval.pinned.to_hex()}),
            )
            .await?;
            carried.push(copy);
        }
        if approval_state(&environment.policy, &run.facts(), &decision_facts(&carried)) == ApprovalState::Approved {
            run = storage::runs::set_status(&mut tx, run.id, RunStatus::AwaitingApproval, RunStatus::Approved, None)
                .await?;
        }
    }
    record(
        &mut tx,
        hub,
        caller,
        Action::RunRetry,
        "run",
        run.id,
        json!({
            "retry_of": original.id, "items": items, "content_checksum": run.content.to_hex(),
            "approvals_carried": carried.len(), "status": run.status.as_str(),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// Cancels a run: pending items are cancelled now, running ones stop at their next statement boundary.
pub async fn cancel(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = cancel_inner(hub, caller, id).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunCancelRefused, id, e).await;
    }
    result
}

async fn cancel_inner(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let run = storage::runs::lock(&mut tx, id).await?;
    may_cancel(&caller.actor, &run.facts())?;
    let from = run.status;
    let run = storage::runs::set_status(&mut tx, id, from, RunStatus::Cancelled, Some(caller.actor.user_id)).await?;
    let cancelled = storage::run_items::cancel_pending(&mut tx, id).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::RunCancel,
        "run",
        id,
        json!({"from": from.as_str(), "items_cancelled": cancelled}),
    )
    .await?;
    storage::queue::notify(&mut tx, id).await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}

/// A run with its content, environment, approvals and item counts.
pub async fn get_run(hub: &Hub, id: RunId) -> AppResult<RunDetail> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let run = storage::runs::get(&mut conn, id).await?;
    let project = storage::projects::get(&mut conn, run.project_id).await?;
    let versions = storage::versions::of_run(&mut conn, id).await?;
    let environment = storage::environments::get(&mut conn, run.environment_id).await?;
    let db_set = match run.scope {
        RunScope::Set(set) => Some(storage::db_sets::get(&mut conn, set).await?),
        RunScope::Target(_) => None,
    };
    let target = match run.scope {
        RunScope::Target(target) => Some(storage::targets::get(&mut conn, target).await?),
        RunScope::Set(_) => None,
    };
    let approvals = storage::approvals::list_for_run(&mut conn, id).await?;
    // A run that has started applies what it pinned, whatever happened to its migrations since.
    let not_started = matches!(run.status, RunStatus::AwaitingApproval | RunStatus::Approved);
    let (newest, newer) = if not_started {
        let newest = newest_of(&mut conn, run.project_id, &versions).await?;
        let newer = versions
            .iter()
            .zip(&newest)
            .filter(|(p, n)| n.version.version_no > p.version.version_no)
            .map(|(p, n)| (p.version.migration_id, n.version.version_no))
            .collect();
        (content_of(&run.action, &newest), newer)
    } else {
        (run.content, Vec::new())
    };
    let state = approval_state(&environment.policy, &run.facts(), &decision_facts(&approvals));
    let items = storage::run_items::count_by_status(&mut conn, id).await?;
    let retries = storage::runs::retries_of(&mut conn, id).await?;
    let review = storage::runs::review(&mut conn, id).await?;
    let waves = storage::runs::waves(&mut conn, id).await?;
    let not_before = storage::runs::not_before(&mut conn, id).await?;
    let window = storage::windows::state(&mut conn, run.environment_id, chrono::Utc::now()).await?;
    Ok(RunDetail {
        review,
        waves,
        not_before,
        window,
        approval: ApprovalStatus { state, stale: newest != run.content },
        run,
        project,
        versions,
        newest,
        newer,
        environment,
        db_set,
        target,
        approvals,
        items,
        retries,
    })
}

/// Which runs a list shows (the storage filter; each field that is set narrows it).
pub use storage::runs::RunFilter;

/// Runs, newest first.
pub async fn list_runs(hub: &Hub, filter: &RunFilter, page: &PageRequest<RunId>) -> AppResult<Page<Run, RunId>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::runs::list(&mut conn, filter, page).await?)
}

/// How many runs are in each status (for the server's metrics).
pub async fn count_by_status(hub: &Hub) -> AppResult<Vec<(RunStatus, u64)>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::runs::count_by_status(&mut conn).await?)
}

pub async fn list_items(
    hub: &Hub,
    run: RunId,
    status: Option<RunItemStatus>,
    page: &PageRequest<u32>,
) -> AppResult<Page<RunItem, u32>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::runs::get(&mut conn, run).await?;
    Ok(storage::run_items::list_for_run(&mut conn, run, status, page).await?)
}

/// The log of one item of a run (404 if the item is not the run's).
pub async fn item_logs(
    hub: &Hub,
    run: RunId,
    item: RunItemId,
    page: &PageRequest<u32>,
) -> AppResult<(RunItem, Page<RunItemLog, u32>)> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let found = storage::run_items::get(&mut conn, item).await?;
    if found.run_id != run {
        return Err(AppError::NotFound { what: "run item" });
    }
    let logs = storage::logs::list(&mut conn, item, page).await?;
    Ok((found, logs))
}
