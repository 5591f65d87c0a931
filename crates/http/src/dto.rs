//! The JSON the REST API answers with: one response type per resource, built from the domain records.
//!
//! Each type derives its OpenAPI schema (`utoipa::ToSchema`), so the document and the bytes on the wire come
//! from the same definition. Nothing here carries a secret: a target says which kind of secret it has, never
//! the value; a token's value is shown only by the response that creates it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::enums::{
    ActorKind, ApprovalDecision, Direction, Engine, FailurePolicy, ForeignTool, LintBlock, LogLevel, Resolution, Risk,
    Role, RunKind, TlsMode, TransactionMode,
};
use domain::ids::{
    ApprovalId, DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, TargetId, UserId, VersionId,
};
use domain::model::{
    Approval, DbSet, Environment, Migration, MigrationVersion, Project, ReleaseVersion, Run, RunAction, RunItem,
    RunItemLog, RunWaves, SecretSource, Severity, Target, ValidationMessage,
};
use domain::policy::ApprovalState;
use domain::run::{RunItemStatus, RunStatus};
use domain::waves::{Advance, WaveState};
use serde::Serialize;
use utoipa::ToSchema;

/// A page of a list, and the cursor of the next page (`null` on the last one): pass it back as `after`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct List<T: ToSchema> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn of<'a, R, K: ToString>(page: &'a app::Page<R, K>, f: impl Fn(&'a R) -> T) -> Self {
        List { items: page.items.iter().map(f).collect(), next: page.next.as_ref().map(ToString::to_string) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentDto {
    pub id: EnvironmentId,
    pub name: String,
    pub description: String,
    pub approval_required: bool,
    pub approvals_required: u8,
    pub execute_roles: Vec<Role>,
    pub lock_timeout_ms: u64,
    pub statement_timeout_ms: Option<u64>,
    pub target_lock_wait_ms: u64,
    pub allow_out_of_order: bool,
    /// Retries of a statement that gave up waiting for a lock (a Postgres transaction: of the migration).
    pub lock_retries: u8,
    /// The longest wait between two of those tries (they double from 200 ms, with jitter).
    pub lock_retry_max_delay_ms: u64,
    /// Which SQL review findings refuse a release at request: `error`, `warning` or `never`.
    pub lint_block: LintBlock,
    /// Approvals a high-risk release needs on top of `approvals_required`.
    pub high_risk_approvals: u8,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<&Environment> for EnvironmentDto {
    fn from(e: &Environment) -> Self {
        EnvironmentDto {
            id: e.id,
            name: e.name.as_str().to_owned(),
            description: e.description.clone(),
            approval_required: e.policy.approval_required,
            approvals_required: e.policy.approvals_required,
            execute_roles: e.policy.execute_roles.to_vec(),
            lock_timeout_ms: ms(e.policy.lock_timeout),
            statement_timeout_ms: e.policy.statement_timeout.map(ms),
            target_lock_wait_ms: ms(e.policy.target_lock_wait),
            allow_out_of_order: e.policy.allow_out_of_order,
            lock_retries: e.policy.lock_retries,
            lock_retry_max_delay_ms: ms(e.policy.lock_retry_max_delay),
            lint_block: e.policy.lint_block,
            high_risk_approvals: e.policy.high_risk_approvals,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Which kind of secret a target has; the value is never shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretKind {
    None,
    Sealed,
    Reference,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TargetDto {
    pub id: TargetId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub schema: Option<String>,
    pub username: String,
    pub tls_mode: TlsMode,
    pub secret: SecretKind,
    /// The reference (`env:NAME`, `file:/path`) when the secret is one: it names a place, not a value.
    pub secret_ref: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only on a change: the sealed password was dropped, because it was entered for the engine, host,
    /// port, database or user that changed and no new one was given. Set it again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret_dropped: bool,
}

/// A target's history tables as read (`GET /api/v1/targets/{id}/history`): `outcome` is `read` with
/// `tables`, or `failed` with the `stage` (`secret`, `tool_database`, `connect`, `query`) and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TargetHistoryDto {
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub tables: Vec<HistoryTableDto>,
    /// Who holds the hub's lock on the target now (process, application, user, client, state; never its
    /// SQL); absent when nobody does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryTableDto {
    /// `schema.table` or `table`.
    pub table: String,
    /// Whether the table exists on the target.
    pub exists: bool,
    pub rows: Vec<HistoryRowDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryRowDto {
    /// The hub project the row belongs to, when the hub knows it.
    pub project_id: Option<ProjectId>,
    pub project_name: Option<String>,
    /// The row's project key as stored (empty: the plain CLI's, or written before the table had projects).
    pub project_key: String,
    pub version: String,
    pub name: String,
    /// `applied`, `running` or `failed`.
    pub status: String,
    /// A migration that stopped part-way: the target needs recovery.
    pub dirty: bool,
    pub statements_done: i32,
    pub statements_total: i32,
    /// Hex.
    pub checksum: String,
    pub run_id: Option<String>,
    pub worker: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

impl From<&app::inventory::TargetHistory> for TargetHistoryDto {
    fn from(history: &app::inventory::TargetHistory) -> Self {
        use app::inventory::TargetHistory;
        match history {
            TargetHistory::Failed { stage, message } => TargetHistoryDto {
                outcome: "failed",
                stage: Some(stage),
                message: Some(message.clone()),
                tables: Vec::new(),
                lock_holder: None,
            },
            TargetHistory::Read { tables, lock_holder, .. } => TargetHistoryDto {
                outcome: "read",
                stage: None,
                message: None,
                lock_holder: lock_holder.clone(),
                tables: tables
                    .iter()
                    .map(|t| HistoryTableDto {
                        table: t.table.clone(),
                        exists: t.rows.is_some(),
                        rows: t
                            .rows
                            .iter()
                            .flatten()
                            .map(|r| HistoryRowDto {
                                project_id: r.project.as_ref().map(|(id, _)| *id),
                                project_name: r.project.as_ref().map(|(_, name)| name.as_str().to_owned()),
                                project_key: r.row.project.clone(),
                                version: r.row.version.clone(),
                                name: r.row.name.clone(),
                                status: r.row.status.clone(),
                                dirty: r.dirty(),
                                statements_done: r.row.statements_done,
                                statements_total: r.row.statements_total,
                                checksum: r.row.checksum.clone(),
                                run_id: r.row.run_id.clone(),
                                worker: r.row.worker.clone(),
                                started_at: r.row.started_at.clone(),
                                finished_at: r.row.finished_at.clone(),
                                error: r.row.error.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            },
        }
    }
}

impl From<&Target> for TargetDto {
    fn from(t: &Target) -> Self {
        let (secret, secret_ref) = match &t.secret {
            SecretSource::None => (SecretKind::None, None),
            SecretSource::Sealed { .. } => (SecretKind::Sealed, None),
            SecretSource::Reference { reference } => (SecretKind::Reference, Some(reference.clone())),
        };
        TargetDto {
            id: t.id,
            environment_id: t.environment_id,
            name: t.name.as_str().to_owned(),
            engine: t.engine,
            host: t.host.clone(),
            port: t.port,
            database: t.database.clone(),
            schema: t.schema.as_ref().map(|s| s.as_str().to_owned()),
            username: t.username.clone(),
            tls_mode: t.tls_mode,
            secret,
            secret_ref,
            labels: t.labels.clone(),
            variables: t.variables.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            secret_dropped: false,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DbSetDto {
    pub id: DbSetId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub description: String,
    /// Present on single-set responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DbSetDto {
    pub fn new(s: &DbSet, members: Option<u64>) -> Self {
        DbSetDto {
            id: s.id,
            environment_id: s.environment_id,
            name: s.name.as_str().to_owned(),
            description: s.description.clone(),
            members,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MembershipDto {
    pub added: u64,
    pub removed: u64,
    pub members: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectDto {
    pub id: ProjectId,
    pub name: String,
    pub description: String,
    pub history_table: String,
    /// The engines its migrations are written for.
    pub dialects: Vec<Engine>,
    /// SQL review rules switched off for all of its versions.
    pub lint_rules_off: Vec<String>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Project> for ProjectDto {
    fn from(p: &Project) -> Self {
        ProjectDto {
            id: p.id,
            name: p.name.as_str().to_owned(),
            description: p.description.clone(),
            history_table: p.history_table.as_str().to_owned(),
            dialects: p.review.dialects.clone(),
            lint_rules_off: p.review.rules_off.clone(),
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MigrationDto {
    pub id: MigrationId,
    pub project_id: ProjectId,
    pub version_key: String,
    pub name: String,
    pub source_path: Option<String>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// The newest version, on single-migration responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<VersionSummaryDto>,
}

impl MigrationDto {
    pub fn new(m: &Migration, latest: Option<&MigrationVersion>) -> Self {
        MigrationDto {
            id: m.id,
            project_id: m.project_id,
            version_key: m.version_key.as_str().to_owned(),
            name: m.name.as_str().to_owned(),
            source_path: m.source_path.clone(),
            created_by: m.created_by,
            created_at: m.created_at,
            latest: latest.map(VersionSummaryDto::from),
        }
    }
}

/// A version without its SQL.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionSummaryDto {
    pub id: VersionId,
    pub migration_id: MigrationId,
    pub version: u32,
    pub transaction_mode: TransactionMode,
    pub checksum_algorithm: String,
    pub up_checksum: String,
    pub down_checksum: Option<String>,
    pub has_down: bool,
    pub up_statement_count: usize,
    pub errors: usize,
    pub warnings: usize,
    pub author_id: UserId,
    pub created_at: DateTime<Utc>,
}

impl From<&MigrationVersion> for VersionSummaryDto {
    fn from(v: &MigrationVersion) -> Self {
        let count = |s: Severity| v.lint_results.iter().filter(|m| m.severity == s).count();
        VersionSummaryDto {
            id: v.id,
            migration_id: v.migration_id,
            version: v.version_no,
            transaction_mode: v.transaction_mode,
            checksum_algorithm: v.checksums.up.algorithm().as_str().to_owned(),
            up_checksum: v.checksums.up.to_hex(),
            down_checksum: v.checksums.down.map(|c| c.to_hex()),
            has_down: v.down_sql.is_some(),
            up_statement_count: v.up_statements.len(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            author_id: v.author_id,
            created_at: v.created_at,
        }
    }
}

/// One statement of a version's split.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatementDto {
    /// 1-based.
    pub number: usize,
    pub start: u32,
    pub end: u32,
    pub sql: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageDto {
    pub severity: SeverityDto,
    pub code: String,
    pub message: String,
    pub direction: Direction,
    pub statement: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeverityDto {
    Info,
    Warning,
    Error,
}

impl From<&ValidationMessage> for MessageDto {
    fn from(m: &ValidationMessage) -> Self {
        MessageDto {
            severity: match m.severity {
                Severity::Info => SeverityDto::Info,
                Severity::Warning => SeverityDto::Warning,
                Severity::Error => SeverityDto::Error,
            },
            code: m.code.clone(),
            message: m.message.clone(),
            direction: m.direction,
            statement: m.statement_index.map(|i| i + 1),
        }
    }
}

/// A version with its SQL, statement split and validation messages.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDto {
    #[serde(flatten)]
    pub summary: VersionSummaryDto,
    pub up_sql: String,
    pub down_sql: Option<String>,
    pub up_statements: Vec<StatementDto>,
    pub down_statements: Vec<StatementDto>,
    /// Every message kept with the version: the checks' and the SQL review's.
    pub messages: Vec<MessageDto>,
    /// The findings of the SQL review alone, each with its rule, line and help.
    pub lint: Vec<LintDto>,
    /// The version's risk from its review (both directions, every dialect): `high` for a destructive or
    /// long-locking statement or one that does not parse, `medium` for another warning, else `low`.
    pub risk: Risk,
}

/// One finding of the SQL review.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LintDto {
    /// The rule, e.g. `ban-drop-column` (squawk's name on Postgres) or `syntax-error`.
    pub rule: String,
    /// `ignored`: a `-- migrate-hub:ignore rule` comment marks it as seen and accepted.
    pub severity: LintSeverityDto,
    pub direction: Direction,
    /// The engine whose rules found it.
    pub engine: Option<Engine>,
    /// The statement, from 1.
    pub statement: Option<u32>,
    /// 1-based line and column in the script.
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LintSeverityDto {
    Info,
    Warning,
    Error,
    Ignored,
}

impl From<&ValidationMessage> for LintDto {
    fn from(m: &ValidationMessage) -> Self {
        LintDto {
            rule: m.code.clone(),
            severity: match m.severity {
                _ if m.ignored => LintSeverityDto::Ignored,
                Severity::Info => LintSeverityDto::Info,
                Severity::Warning => LintSeverityDto::Warning,
                Severity::Error => LintSeverityDto::Error,
            },
            direction: m.direction,
            engine: m.engine,
            statement: m.statement_index.map(|i| i + 1),
            line: m.line,
            column: m.column,
            message: m.message.clone(),
            help: m.help.clone(),
        }
    }
}

/// A finding of a run's pinned review, with its version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewFindingDto {
    pub version_key: String,
    #[serde(flatten)]
    pub finding: LintDto,
}

fn statements(sql: &str, ranges: &[domain::model::StatementRange]) -> Vec<StatementDto> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| StatementDto {
            number: i + 1,
            start: r.start,
            end: r.end,
            sql: sql.get(r.start as usize..r.end as usize).unwrap_or_default().to_owned(),
        })
        .collect()
}

impl From<&MigrationVersion> for VersionDto {
    fn from(v: &MigrationVersion) -> Self {
        VersionDto {
            summary: v.into(),
            up_sql: v.up_sql.clone(),
            down_sql: v.down_sql.clone(),
            up_statements: statements(&v.up_sql, &v.up_statements),
            down_statements: statements(v.down_sql.as_deref().unwrap_or_default(), &v.down_statements),
            messages: v.lint_results.iter().map(MessageDto::from).collect(),
            lint: v.lint_results.iter().filter(|m| m.is_finding()).map(LintDto::from).collect(),
            risk: domain::lint::risk(v.lint_results.iter().filter(|m| m.is_finding())),
        }
    }
}

/// A version as created by an edit: `created` is false when the content equals the newest version's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionCreatedDto {
    pub created: bool,
    pub version: VersionDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MigrationCreatedDto {
    pub migration: MigrationDto,
    pub version: VersionDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDto {
    pub id: RunId,
    pub project_id: ProjectId,
    /// SHA-256 over the release's ordered version keys and checksums (what approvals pin).
    pub content_checksum: String,
    /// 1 at request, plus one per refresh; approvals count only for the current revision.
    pub revision: u32,
    /// The failed or cancelled run this one retries.
    pub retry_of: Option<RunId>,
    pub direction: Direction,
    /// `release`, `baseline`, `adopt` or `recovery`.
    pub kind: RunKind,
    pub environment_id: EnvironmentId,
    /// The db set whose members the run has items for (`null` for a run of one target).
    pub db_set_id: Option<DbSetId>,
    /// The one target of the run (`null` for a run over a db set).
    pub target_id: Option<TargetId>,
    /// An adoption: the tool and its history table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopt: Option<AdoptDto>,
    /// A recovery: how, and the dirty row as the server read it at request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryDto>,
    pub status: RunStatus,
    pub failure_policy: FailurePolicy,
    pub concurrency_limit: u32,
    pub comment: String,
    pub requested_by: UserId,
    pub executed_by: Option<UserId>,
    pub cancelled_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The risk of the pinned content from its SQL review (`null`: a run that runs no migration SQL, or one
    /// from before the review).
    pub risk: Option<Risk>,
    /// An admin let the release go ahead although the environment's policy refused its review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint_override: Option<LintOverrideDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LintOverrideDto {
    pub reason: String,
    pub by: UserId,
}

impl From<&Run> for RunDto {
    fn from(r: &Run) -> Self {
        RunDto {
            id: r.id,
            project_id: r.project_id,
            content_checksum: r.content.to_hex(),
            revision: r.revision,
            retry_of: r.retry_of,
            direction: r.direction,
            kind: r.action.kind(),
            environment_id: r.environment_id,
            db_set_id: r.scope.db_set_id(),
            target_id: r.scope.target_id(),
            adopt: match &r.action {
                RunAction::Adopt { from, table } => Some(AdoptDto { from: *from, table: table.clone() }),
                _ => None,
            },
            recovery: match &r.action {
                RunAction::Recovery { resolution, seen } => Some(RecoveryDto {
                    resolution: *resolution,
                    seen: SeenRowDto {
                        status: seen.status.clone(),
                        statements_done: seen.statements_done,
                        statements_total: seen.statements_total,
                        checksum: seen.checksum.iter().map(|b| format!("{b:02x}")).collect(),
                        error: seen.error.clone(),
                    },
                }),
                _ => None,
            },
            status: r.status,
            failure_policy: r.failure_policy,
            concurrency_limit: r.concurrency_limit,
            comment: r.comment.clone(),
            requested_by: r.requested_by,
            executed_by: r.executed_by,
            cancelled_by: r.cancelled_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            risk: r.risk,
            lint_override: r.lint_override.as_ref().map(|o| LintOverrideDto { reason: o.reason.clone(), by: o.by }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdoptDto {
    pub from: ForeignTool,
    /// The history table when not the tool's default.
    pub table: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecoveryDto {
    pub resolution: Resolution,
    /// The dirty row of the run's one version, as the server read it on the target at request; the worker
    /// goes ahead only while the row is still this one.
    pub seen: SeenRowDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeenRowDto {
    pub status: String,
    pub statements_done: u32,
    pub statements_total: u32,
    /// Hex.
    pub checksum: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApprovalDto {
    pub id: ApprovalId,
    /// The run's revision the decision was given for.
    pub revision: u32,
    pub direction: Direction,
    pub approver: UserId,
    pub decision: ApprovalDecision,
    pub comment: String,
    /// The content checksum the approver saw.
    pub content_checksum: String,
    /// The decision on the retried run this one was carried over from.
    pub carried_from: Option<ApprovalId>,
    /// Whether it counts for the content the run pins now.
    pub current: bool,
    pub created_at: DateTime<Utc>,
}

/// One version of a release, in apply order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReleaseVersionDto {
    pub migration_id: MigrationId,
    pub version_key: String,
    pub name: String,
    pub version_id: VersionId,
    pub version_no: u32,
    pub up_checksum: String,
    pub down_checksum: Option<String>,
    pub transaction_mode: TransactionMode,
}

impl From<&ReleaseVersion> for ReleaseVersionDto {
    fn from(v: &ReleaseVersion) -> Self {
        ReleaseVersionDto {
            migration_id: v.version.migration_id,
            version_key: v.version_key.as_str().to_owned(),
            name: v.name.as_str().to_owned(),
            version_id: v.version.id,
            version_no: v.version.version_no,
            up_checksum: v.version.checksums.up.to_hex(),
            down_checksum: v.version.checksums.down.map(|c| c.to_hex()),
            transaction_mode: v.version.transaction_mode,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApprovalStateDto {
    NotRequired,
    Pending,
    Approved,
    Denied,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApprovalStatusDto {
    pub state: ApprovalStateDto,
    pub have: u8,
    pub need: u8,
    /// The run has not started and a migration in it was edited since it was pinned: refresh it (and
    /// have it approved again) before it can run.
    pub stale: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemCountDto {
    pub status: RunItemStatus,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDetailDto {
    #[serde(flatten)]
    pub run: RunDto,
    pub project: String,
    /// The versions the run applies, in apply order, as pinned (a finished run shows what it applied).
    pub migrations: Vec<ReleaseVersionDto>,
    /// The content checksum of the newest versions of the run's migrations (equal to `content_checksum`
    /// unless the run is stale).
    pub newest_content_checksum: String,
    pub environment: String,
    /// The db set's name (`null` for a run of one target).
    pub db_set: Option<String>,
    /// The target's name (`null` for a run over a db set).
    pub target: Option<String>,
    pub approval: ApprovalStatusDto,
    pub approvals: Vec<ApprovalDto>,
    pub items: Vec<ItemCountDto>,
    /// Runs that retry this one.
    pub retries: Vec<RunId>,
    /// The SQL review pinned with the content, for the run's direction and its targets' engines (`null`: a
    /// run that runs no migration SQL, or one from before the review).
    pub review: Option<Vec<ReviewFindingDto>>,
    /// The run's waves and where it stands in them (`null`: it goes to every target at once).
    pub waves: Option<RunWavesDto>,
    /// Nothing of the run is claimed before this (`null`: at once).
    pub not_before: Option<DateTime<Utc>>,
    /// The environment's maintenance windows now (`null`: it has none, workers claim any time).
    pub window: Option<WindowStateDto>,
}

/// A webhook of an environment. Its URL shows as its origin only (a path may hold a token).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookDto {
    pub id: uuid::Uuid,
    pub environment_id: EnvironmentId,
    /// `scheme://host[:port]/…`.
    pub url: String,
    pub events: Vec<domain::webhooks::WebhookEvent>,
    pub format: domain::webhooks::WebhookFormat,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

impl From<&domain::webhooks::Webhook> for WebhookDto {
    fn from(w: &domain::webhooks::Webhook) -> Self {
        WebhookDto {
            id: w.id,
            environment_id: w.environment_id,
            url: app::webhooks::origin_of(&w.url),
            events: w.events.clone(),
            format: w.format,
            created_by: w.created_by,
            created_at: w.created_at,
        }
    }
}

/// A webhook just made, with its signing secret: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedWebhookDto {
    pub webhook: WebhookDto,
    /// Verify `X-MigrateHub-Signature: t=…,v1=…` as HMAC-SHA256 under this over `"<t>.<body>"`.
    pub secret: String,
}

/// One delivery of an event to a webhook, and how it went.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryDto {
    pub id: uuid::Uuid,
    pub webhook_id: uuid::Uuid,
    pub event: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&domain::webhooks::Delivery> for DeliveryDto {
    fn from(d: &domain::webhooks::Delivery) -> Self {
        DeliveryDto {
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// A target's schema drift: what differs from the schema the hub's last apply left (names only).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DriftDto {
    pub target_id: TargetId,
    /// `drifted`, `clean`, or `unknown` (never fingerprinted: its environment does not check, or no release
    /// ran since it began to).
    pub state: &'static str,
    pub drifted_since: Option<DateTime<Utc>>,
    pub differences: Vec<domain::drift::Difference>,
    pub baseline_at: Option<DateTime<Utc>>,
    /// The run whose apply left the baseline (`null`: an admin accepted it).
    pub baseline_run: Option<RunId>,
    pub accepted_by: Option<UserId>,
    pub checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
}

impl DriftDto {
    pub(crate) fn of(target: TargetId, state: Option<&app::drift::DriftState>) -> Self {
        match state {
            None => DriftDto {
                target_id: target,
                state: "unknown",
                drifted_since: None,
                differences: Vec::new(),
                baseline_at: None,
                baseline_run: None,
                accepted_by: None,
                checked_at: None,
                next_check_at: None,
            },
            Some(d) => DriftDto {
                target_id: target,
                state: if d.drifted_since.is_some() { "drifted" } else { "clean" },
                drifted_since: d.drifted_since,
                differences: d.differences.clone(),
                baseline_at: Some(d.baseline_at),
                baseline_run: d.baseline_run,
                accepted_by: d.accepted_by,
                checked_at: d.checked_at,
                next_check_at: d.next_check_at,
            },
        }
    }
}

/// An environment's maintenance windows and where they stand now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WindowsDto {
    /// One per line, as stored (`Sat 02:00-05:00 Europe/Berlin`); empty: workers claim any time.
    pub windows: Vec<String>,
    #[serde(flatten)]
    pub state: WindowStateDto,
}

/// Whether workers may claim an environment's items now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WindowStateDto {
    /// No windows, or one is open.
    pub open: bool,
    /// When the open window closes.
    pub closes_at: Option<DateTime<Utc>>,
    /// When the next window opens.
    pub next_opens_at: Option<DateTime<Utc>>,
}

impl From<&app::windows::WindowState> for WindowStateDto {
    fn from(s: &app::windows::WindowState) -> Self {
        WindowStateDto { open: s.open(), closes_at: s.closes_at, next_opens_at: s.next_opens_at }
    }
}

impl From<&app::windows::Windows> for WindowsDto {
    fn from(w: &app::windows::Windows) -> Self {
        WindowsDto { windows: w.windows.clone(), state: (&w.state).into() }
    }
}

/// A run's waves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunWavesDto {
    /// `running`, `awaiting_continue` (the next wave waits for `POST /runs/{id}/continue`), `halted` (a
    /// wave failed more targets than it allows), `not_started` or `ended`.
    pub state: WaveState,
    pub advance: Advance,
    /// Targets carrying this label went first (`key=value`).
    pub first_label: Option<String>,
    /// The wave claims take items from, numbered from 1.
    pub current: u32,
    pub waves: Vec<RunWaveDto>,
}

/// One wave: the items whose ordinal is in `[first_ordinal, end_ordinal)`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunWaveDto {
    /// Numbered from 1.
    pub wave: u32,
    /// The request's words for it (`1 target`, `10%`).
    pub spec: String,
    pub first_ordinal: u32,
    pub end_ordinal: u32,
    pub targets: u32,
    pub max_failures: u32,
    /// Failures a person accepted by continuing the run after this wave halted it.
    pub tolerated_failures: u32,
    pub started_at: Option<DateTime<Utc>>,
    /// Who continued the run into this wave (`null`: it started by itself, or with the run).
    pub started_by: Option<UserId>,
    pub ended_at: Option<DateTime<Utc>>,
    pub items: Vec<ItemCountDto>,
}

impl RunWavesDto {
    pub(crate) fn of(waves: &RunWaves, status: RunStatus) -> Self {
        RunWavesDto {
            state: waves.state(status),
            advance: waves.advance,
            first_label: waves.first_label.as_ref().map(ToString::to_string),
            current: waves.current + 1,
            waves: waves
                .waves
                .iter()
                .map(|w| RunWaveDto {
                    wave: w.wave + 1,
                    spec: w.spec.clone(),
                    first_ordinal: w.first,
                    end_ordinal: w.end,
                    targets: w.end - w.first,
                    max_failures: w.max_failures,
                    tolerated_failures: w.tolerated_failures,
                    started_at: w.started_at,
                    started_by: w.started_by.as_ref().map(|(id, _)| *id),
                    ended_at: w.ended_at,
                    items: [
                        (RunItemStatus::Pending, w.pending),
                        (RunItemStatus::Running, w.running),
                        (RunItemStatus::Succeeded, w.succeeded),
                        (RunItemStatus::Skipped, w.skipped),
                        (RunItemStatus::Failed, w.failed),
                        (RunItemStatus::Cancelled, w.cancelled),
                    ]
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(status, n)| ItemCountDto { status, count: u64::from(n) })
                    .collect(),
                })
                .collect(),
        }
    }
}

impl From<&app::runs::RunDetail> for RunDetailDto {
    fn from(d: &app::runs::RunDetail) -> Self {
        let policy = &d.environment.policy;
        let (state, have, need) = match d.approval.state {
            ApprovalState::NotRequired => (ApprovalStateDto::NotRequired, 0, 0),
            ApprovalState::Pending { have, need } => (ApprovalStateDto::Pending, have, need),
            ApprovalState::Approved => {
                let need = policy.approvals_needed(d.run.risk);
                (ApprovalStateDto::Approved, need, need)
            }
            ApprovalState::Denied => (ApprovalStateDto::Denied, 0, policy.approvals_needed(d.run.risk)),
        };
        RunDetailDto {
            run: (&d.run).into(),
            project: d.project.name.as_str().to_owned(),
            migrations: d.versions.iter().map(ReleaseVersionDto::from).collect(),
            newest_content_checksum: d.newest.to_hex(),
            environment: d.environment.name.as_str().to_owned(),
            db_set: d.db_set.as_ref().map(|s| s.name.as_str().to_owned()),
            target: d.target.as_ref().map(|t| t.name.as_str().to_owned()),
            approval: ApprovalStatusDto { state, have, need, stale: d.approval.stale },
            approvals: d
                .approvals
                .iter()
                .map(|a: &Approval| ApprovalDto {
                    id: a.id,
                    revision: a.revision,
                    direction: a.direction,
                    approver: a.approver,
                    decision: a.decision,
                    comment: a.comment.clone(),
                    content_checksum: a.pinned.to_hex(),
                    carried_from: a.carried_from,
                    current: a.revision == d.run.revision && a.pinned == d.run.content,
                    created_at: a.created_at,
                })
                .collect(),
            items: d.items.iter().map(|(status, count)| ItemCountDto { status: *status, count: *count }).collect(),
            retries: d.retries.clone(),
            review: d.review.as_ref().map(|findings| {
                findings
                    .iter()
                    .map(|f| ReviewFindingDto { version_key: f.version_key.clone(), finding: (&f.message).into() })
                    .collect()
            }),
            waves: d.waves.as_ref().map(|w| RunWavesDto::of(w, d.run.status)),
            not_before: d.not_before,
            window: d.window.any.then(|| (&d.window).into()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunItemDto {
    pub id: RunItemId,
    pub run_id: RunId,
    pub target_id: TargetId,
    pub ordinal: u32,
    pub status: RunItemStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Migrations of the release finished on this target.
    pub migrations_done: u32,
    pub migrations_total: Option<u32>,
    /// Statements done of the migration the item is at (numbered from 1: statement `statements_done` was
    /// the last to run).
    pub statements_done: u32,
    pub statements_total: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl From<&RunItem> for RunItemDto {
    fn from(i: &RunItem) -> Self {
        RunItemDto {
            id: i.id,
            run_id: i.run_id,
            target_id: i.target_id,
            ordinal: i.ordinal,
            status: i.status,
            attempts: i.attempts,
            max_attempts: i.max_attempts,
            migrations_done: i.migrations_done,
            migrations_total: i.migrations_total,
            statements_done: i.statements_done,
            statements_total: i.statements_total,
            started_at: i.started_at,
            finished_at: i.finished_at,
            duration_ms: i.duration_ms,
            error_code: i.error_code.clone(),
            error_message: i.error_message.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogLineDto {
    pub seq: u32,
    pub level: LogLevel,
    pub message: String,
    /// The version the line is about; absent for lines about the whole item.
    pub version_key: Option<String>,
    /// The statement the line is about, numbered from 1.
    pub statement_index: Option<u32>,
    pub duration_ms: Option<u64>,
    pub rows_affected: Option<u64>,
    pub created_at: DateTime<Utc>,
}

impl From<&RunItemLog> for LogLineDto {
    fn from(l: &RunItemLog) -> Self {
        LogLineDto {
            seq: l.seq,
            level: l.level,
            message: l.message.clone(),
            version_key: l.version_key.clone(),
            statement_index: l.statement_index,
            duration_ms: l.duration_ms,
            rows_affected: l.rows_affected,
            created_at: l.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemLogsDto {
    pub item: RunItemDto,
    pub lines: List<LogLineDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventDto {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor_user_id: Option<UserId>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: String,
}

impl From<&app::audit_log::AuditRecord> for AuditEventDto {
    fn from(r: &app::audit_log::AuditRecord) -> Self {
        let e = &r.entry;
        AuditEventDto {
            id: r.id,
            occurred_at: e.occurred_at,
            actor_kind: e.actor_kind,
            actor_user_id: e.actor_user_id,
            actor_label: e.actor_label.clone(),
            action: e.action.clone(),
            object_type: e.object_type.clone(),
            object_id: e.object_id.clone(),
            details: e.details.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            prev_hash: r.prev_hash.map(hex::encode),
            hash: hex::encode(r.hash),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationDto {
    pub intact: bool,
    /// Rows checked (when intact).
    pub rows: Option<u64>,
    /// The first row that does not check out, and why.
    pub broken_row: Option<i64>,
    pub reason: Option<String>,
}
