//! The records of the tool database as the rest of the hub sees them.
//!
//! These are plain data: every field that has rules is one of the validated types of [`crate::values`] or
//! a closed enum, so a `Target` in memory always satisfies what the database CHECKs say. Storage converts
//! its private row types into these; nothing above storage ever sees a raw row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::enums::{
    ActorKind, ApprovalDecision, Direction, Engine, FailurePolicy, ForeignTool, LogLevel, Resolution, Risk, Role,
    RunKind, TlsMode, TokenScope, TransactionMode, WorkerStatus,
};
use crate::ids::{
    ApprovalId, DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, TargetId, TokenId, UserId, VersionId,
    WorkerId,
};
use crate::policy::{EnvironmentPolicy, PinnedChecksums};
use crate::run::{LeftAs, RunItemStatus, RunStatus};
use crate::values::{DisplayName, Email, Identifier, MigrationName, Name, VersionKey};

/// A user is identified by the OIDC issuer and subject once they have logged in; before that an admin
/// may have pre-provisioned them by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub disabled: bool,
    pub oidc_identity: Option<OidcIdentity>,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub oidc_identity: Option<OidcIdentity>,
    /// An argon2 PHC string, never a password.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub scope: TokenScope,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token may authenticate a request at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    /// The keyed hash of the token; the token itself is shown once and never stored.
    pub hash: [u8; 32],
    pub scope: TokenScope,
    pub created_by: UserId,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: Name,
    pub description: String,
    pub policy: EnvironmentPolicy,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub name: Name,
    pub description: String,
    pub policy: EnvironmentPolicy,
}

/// Where a target's password comes from. The sealed bytes themselves are not part of this record:
/// they are read only by the code that connects (see `storage::targets::sealed_secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// No password (e.g. trust or certificate authentication).
    None,
    /// Encrypted at rest under the master key `key_id`.
    Sealed { key_id: String },
    /// Resolved by the worker from its own environment (`env:NAME`) or a file (`file:/path`).
    Reference { reference: String },
}

/// A password sealed with AES-256-GCM, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ciphertext is not a secret, but nobody needs it in a log line either.
        f.debug_struct("SealedSecret").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: TargetId,
    pub environment_id: EnvironmentId,
    pub name: Name,
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub schema: Option<Identifier>,
    pub username: String,
    pub secret: SecretSource,
    pub tls_mode: TlsMode,
    pub labels: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Connection settings of a target, as created or replaced by an admin (the secret is set separately).
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: Name,
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub schema: Option<Identifier>,
    pub username: String,
    pub tls_mode: TlsMode,
    pub labels: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSet {
    pub id: DbSetId,
    pub environment_id: EnvironmentId,
    pub name: Name,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: Name,
    pub description: String,
    pub history_table: Identifier,
    /// The engines its migrations are written for, and the SQL review rules it switched off.
    pub review: ProjectReview,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a project's migrations are reviewed: the SQL dialects they are written for (a release to targets of
/// another engine is refused; each version is reviewed with each dialect's rules), and the rules switched
/// off for all of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectReview {
    /// Sorted, without repeats, never empty.
    pub dialects: Vec<Engine>,
    /// Rule names, sorted, without repeats.
    pub rules_off: Vec<String>,
}

impl Default for ProjectReview {
    /// Both dialects, every rule on.
    fn default() -> Self {
        ProjectReview { dialects: vec![Engine::Postgres, Engine::Mysql], rules_off: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub id: MigrationId,
    pub project_id: ProjectId,
    pub version_key: VersionKey,
    pub name: MigrationName,
    pub source_path: Option<String>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// A statement of a migration's SQL, as the byte range `[start, end)` of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u32, u32)", into = "(u32, u32)")]
pub struct StatementRange {
    pub start: u32,
    pub end: u32,
}

impl From<(u32, u32)> for StatementRange {
    fn from((start, end): (u32, u32)) -> Self {
        Self { start, end }
    }
}

impl From<StatementRange> for (u32, u32) {
    fn from(range: StatementRange) -> Self {
        (range.start, range.end)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// A lint or validation message about a migration version, kept with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationMessage {
    pub severity: Severity,
    /// A stable code, e.g. a squawk rule name or `transaction-mode`.
    pub code: String,
    pub message: String,
    pub direction: Direction,
    pub statement_index: Option<u32>,
    /// The engine the message holds for (a Postgres rule, for instance); `None`: every engine. Pre-flight
    /// refuses an error only for a release to targets of that engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// Set for a finding of the SQL review (`lint`): its 1-based line in the script. `code` is then the
    /// rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// With `line`: the 1-based column, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What to do instead, where the rule says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Kept as `info` because a `-- migrate-hub:ignore rule` comment marks it as seen and accepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
}

impl ValidationMessage {
    /// A message of the checks every version goes through (not a finding of the SQL review).
    pub fn check(
        severity: Severity,
        code: &str,
        message: String,
        direction: Direction,
        statement: Option<usize>,
    ) -> Self {
        ValidationMessage {
            severity,
            code: code.to_owned(),
            message,
            direction,
            statement_index: statement.and_then(|i| u32::try_from(i).ok()),
            engine: None,
            line: None,
            column: None,
            help: None,
            ignored: false,
        }
    }

    /// Whether this is a finding of the SQL review (a rule that fired on a line).
    pub fn is_finding(&self) -> bool {
        self.line.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationVersion {
    pub id: VersionId,
    pub migration_id: MigrationId,
    pub version_no: u32,
    pub up_sql: String,
    pub down_sql: Option<String>,
    pub checksums: PinnedChecksums,
    pub transaction_mode: TransactionMode,
    pub up_statements: Vec<StatementRange>,
    pub down_statements: Vec<StatementRange>,
    pub lint_results: Vec<ValidationMessage>,
    pub source_hash: Option<[u8; 32]>,
    pub author_id: UserId,
    pub created_at: DateTime<Utc>,
}

impl MigrationVersion {
    /// The checksums recomputed from the stored text: equal to `checksums` unless the text was changed
    /// behind the hub's back.
    pub fn checksums_of_text(&self) -> PinnedChecksums {
        PinnedChecksums { up: Checksum::of(&self.up_sql), down: self.down_sql.as_deref().map(Checksum::of) }
    }
}

#[derive(Debug, Clone)]
pub struct NewMigrationVersion {
    pub migration_id: MigrationId,
    pub up_sql: String,
    pub down_sql: Option<String>,
    pub transaction_mode: TransactionMode,
    pub up_statements: Vec<StatementRange>,
    pub down_statements: Vec<StatementRange>,
    pub lint_results: Vec<ValidationMessage>,
    pub source_hash: Option<[u8; 32]>,
    pub author_id: UserId,
}

impl NewMigrationVersion {
    /// The checksums this version will be stored with, computed from its text.
    pub fn checksums(&self) -> PinnedChecksums {
        PinnedChecksums { up: Checksum::of(&self.up_sql), down: self.down_sql.as_deref().map(Checksum::of) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    /// The project whose migrations the run applies (the versions are in [`ReleaseVersion`]s).
    pub project_id: ProjectId,
    /// The checksum of the pinned content (`release::content_checksum`).
    pub content: Checksum,
    /// 1 at request, plus one per refresh; approvals count only for the current revision.
    pub revision: u32,
    /// The failed or cancelled run this one retries.
    pub retry_of: Option<RunId>,
    pub direction: Direction,
    /// What the run does on each target, with its parameters (pinned with the content).
    pub action: RunAction,
    pub environment_id: EnvironmentId,
    /// Every member of a db set, or one target.
    pub scope: RunScope,
    pub status: RunStatus,
    pub failure_policy: FailurePolicy,
    pub concurrency_limit: u32,
    pub comment: String,
    pub requested_by: UserId,
    pub idempotency_key: Option<String>,
    pub executed_by: Option<UserId>,
    pub cancelled_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The risk of the pinned content from its SQL review; `None` for a run that runs no migration SQL (a
    /// baseline, adoption or recovery) or one requested before the review.
    pub risk: Option<Risk>,
    /// An admin let the release go ahead although the review refused it.
    pub lint_override: Option<LintOverride>,
}

/// An admin's decision to let a release go ahead although the environment's policy refuses what its SQL
/// review found (audited, and shown on the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintOverride {
    pub reason: String,
    pub by: UserId,
}

/// One finding of a run's SQL review: a version's message, with the version it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFinding {
    pub version_key: String,
    #[serde(flatten)]
    pub message: ValidationMessage,
}

/// The SQL review of a release's content, pinned with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReview {
    /// The highest risk of the findings.
    pub risk: Risk,
    /// The findings for the run's direction and its targets' engines, after the project's switched-off
    /// rules, in apply order of their versions.
    pub findings: Vec<ReviewFinding>,
}

/// Which targets a run has items for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunScope {
    /// Every member of the db set (at request; a retry: those of them it names).
    Set(DbSetId),
    /// This one target (recovery, adoption or a baseline of one database).
    Target(TargetId),
}

impl RunScope {
    pub fn db_set_id(self) -> Option<DbSetId> {
        match self {
            RunScope::Set(id) => Some(id),
            RunScope::Target(_) => None,
        }
    }

    pub fn target_id(self) -> Option<TargetId> {
        match self {
            RunScope::Set(_) => None,
            RunScope::Target(id) => Some(id),
        }
    }
}

/// The dirty history row a recovery was requested for, as the server read it on the target at request.
/// The worker goes ahead only while the row is still this one (status, progress and content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRow {
    /// The history status as the target stores it (e.g. `failed`, `running`).
    pub status: String,
    pub statements_done: u32,
    pub statements_total: u32,
    /// The checksum the row records (the content that ran).
    pub checksum: Vec<u8>,
    /// The error the row records, for whoever decides.
    pub error: Option<String>,
}

/// What a run does on each of its targets, with the parameters an approval pins along with the versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAction {
    /// Apply (or revert) the pinned versions.
    Release,
    /// Record the pinned versions as applied without running them.
    Baseline,
    /// Record as applied those of the pinned versions that `from` applied, read from its history table
    /// (`table`, or the tool's default).
    Adopt { from: ForeignTool, table: Option<String> },
    /// Get the dirty history row of the one pinned version out of its state.
    Recovery { resolution: Resolution, seen: SeenRow },
}

impl RunAction {
    pub fn kind(&self) -> RunKind {
        match self {
            RunAction::Release => RunKind::Release,
            RunAction::Baseline => RunKind::Baseline,
            RunAction::Adopt { .. } => RunKind::Adopt,
            RunAction::Recovery { .. } => RunKind::Recovery,
        }
    }

    /// How the action reads in a sentence: `release`, `adoption from goose`, `recovery (resume)`.
    pub fn describe(&self) -> String {
        match self {
            RunAction::Release => "release".to_owned(),
            RunAction::Baseline => "baseline".to_owned(),
            RunAction::Adopt { from, table } => match table {
                Some(table) => format!("adoption from {from} ({table})"),
                None => format!("adoption from {from}"),
            },
            RunAction::Recovery { resolution, .. } => format!("recovery ({resolution})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub project_id: ProjectId,
    /// The versions to apply, in apply order.
    pub versions: Vec<VersionId>,
    pub content: Checksum,
    pub retry_of: Option<RunId>,
    /// The targets to make items for; `None`: every member of the db set.
    pub targets: Option<Vec<TargetId>>,
    pub direction: Direction,
    pub action: RunAction,
    pub environment_id: EnvironmentId,
    pub scope: RunScope,
    pub status: RunStatus,
    pub failure_policy: FailurePolicy,
    pub concurrency_limit: u32,
    pub comment: String,
    pub requested_by: UserId,
    pub idempotency_key: Option<String>,
    /// The SQL review of the content (a release); `None` for a run that runs no migration SQL.
    pub review: Option<RunReview>,
    pub lint_override: Option<LintOverride>,
    /// Members carrying this label get the first ordinals (a run with waves: its canaries).
    pub first_label: Option<crate::waves::LabelMatch>,
}

/// A run's waves and where its queue stands in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWaves {
    pub advance: crate::waves::Advance,
    pub first_label: Option<crate::waves::LabelMatch>,
    /// The wave claims take items from (0-based).
    pub current: u32,
    /// The current wave's items not yet ended.
    pub open: u32,
    /// The current wave's failed items, and how many it tolerates now.
    pub failed: u32,
    pub allowed: u32,
    pub waves: Vec<RunWave>,
}

/// One wave of a run, with its items by status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWave {
    /// 0-based.
    pub wave: u32,
    /// Its items are those whose ordinal is in `first..end`.
    pub first: u32,
    pub end: u32,
    pub spec: String,
    pub max_failures: u32,
    /// Failures a person accepted by continuing the run after this wave halted it.
    pub tolerated_failures: u32,
    /// When it started; `None` for the first wave (it starts with the run) and waves not started.
    pub started_at: Option<DateTime<Utc>>,
    /// Who continued the run into it; `None` when it started by itself.
    pub started_by: Option<(UserId, String)>,
    pub ended_at: Option<DateTime<Utc>>,
    pub pending: u32,
    pub running: u32,
    pub succeeded: u32,
    pub skipped: u32,
    pub failed: u32,
    pub cancelled: u32,
}

impl RunWaves {
    /// Where the run stands in its waves, given its status.
    pub fn state(&self, status: RunStatus) -> crate::waves::WaveState {
        use crate::waves::WaveState;
        match status {
            RunStatus::AwaitingApproval | RunStatus::Approved | RunStatus::Queued => WaveState::NotStarted,
            RunStatus::Halted => WaveState::Halted,
            RunStatus::Running if self.awaiting_continue() => WaveState::AwaitingContinue,
            RunStatus::Running => WaveState::Running,
            RunStatus::Denied | RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled => WaveState::Ended,
        }
    }

    /// The current wave ended within its budget and the next waits for a person.
    pub fn awaiting_continue(&self) -> bool {
        self.advance == crate::waves::Advance::Manual
            && self.open == 0
            && self.failed <= self.allowed
            && (self.current as usize) + 1 < self.waves.len()
    }

    /// The wave holding the item at `ordinal`.
    pub fn wave_of(&self, ordinal: u32) -> Option<&RunWave> {
        self.waves.iter().find(|w| (w.first..w.end).contains(&ordinal))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunItem {
    pub id: RunItemId,
    pub run_id: RunId,
    pub target_id: TargetId,
    pub ordinal: u32,
    pub status: RunItemStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub not_before: Option<DateTime<Utc>>,
    pub lease_owner: Option<WorkerId>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub fencing_token: i64,
    /// Statements done of the migration the item is at (`migrations_done + 1`, while running).
    pub statements_done: u32,
    pub statements_total: Option<u32>,
    /// Migrations of the release finished (applied or skipped) on this target.
    pub migrations_done: u32,
    pub migrations_total: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One migration on one target as the hub's runs left it (the per-database view of a target's page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationOnTarget {
    pub project_id: ProjectId,
    pub project_name: Name,
    pub migration_id: MigrationId,
    pub version_key: VersionKey,
    pub migration_name: MigrationName,
    /// The version the run pinned.
    pub version_no: u32,
    pub run_id: RunId,
    pub finished_at: DateTime<Utc>,
    pub state: LeftAs,
}

/// One target of a migration as the hub's runs left it there (a migration's page, per target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetOfMigration {
    pub target_id: TargetId,
    pub target_name: Name,
    pub environment_name: Name,
    pub version_no: u32,
    pub run_id: RunId,
    pub finished_at: DateTime<Utc>,
    pub state: LeftAs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: ApprovalId,
    pub run_id: RunId,
    /// The run's revision the decision was given for.
    pub revision: u32,
    pub direction: Direction,
    pub environment_id: EnvironmentId,
    pub approver: UserId,
    pub decision: ApprovalDecision,
    pub comment: String,
    /// The content checksum the approver saw.
    pub pinned: Checksum,
    /// The decision on the retried run this one was carried over from.
    pub carried_from: Option<ApprovalId>,
    pub created_at: DateTime<Utc>,
}

impl Run {
    /// What `policy` needs to know about this run.
    pub fn facts(&self) -> crate::policy::RunFacts {
        crate::policy::RunFacts {
            id: self.id,
            requested_by: self.requested_by,
            status: self.status,
            direction: self.direction,
            kind: self.action.kind(),
            revision: self.revision,
            content: self.content,
            risk: self.risk,
        }
    }
}

impl Approval {
    /// What `policy` needs to know about this decision.
    pub fn facts(&self) -> crate::policy::ApprovalFacts {
        crate::policy::ApprovalFacts {
            approver: self.approver,
            decision: self.decision,
            direction: self.direction,
            revision: self.revision,
            pinned: self.pinned,
        }
    }
}

/// A decision to record on a run, for the run's current revision.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub run_id: RunId,
    pub approver: UserId,
    pub decision: ApprovalDecision,
    pub comment: String,
    pub pinned: Checksum,
    pub carried_from: Option<ApprovalId>,
}

/// One version of a release as pinned by its run, with its migration's key and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseVersion {
    /// Apply order, from 0.
    pub position: u32,
    pub version_key: VersionKey,
    pub name: MigrationName,
    pub version: MigrationVersion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunItemLog {
    pub run_item_id: RunItemId,
    pub seq: u32,
    pub level: LogLevel,
    pub message: String,
    /// The version the line is about; `None` for lines about the whole item.
    pub version_key: Option<String>,
    /// From 1 (lines written before releases numbered from 0).
    pub statement_index: Option<u32>,
    pub duration_ms: Option<u64>,
    pub rows_affected: Option<u64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewLogLine {
    pub level: LogLevel,
    pub message: String,
    pub version_key: Option<String>,
    pub statement_index: Option<u32>,
    pub duration_ms: Option<u64>,
    pub rows_affected: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub id: WorkerId,
    pub hostname: String,
    pub pid: u32,
    pub version: String,
    pub status: WorkerStatus,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Who did something, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub kind: ActorKind,
    pub user_id: Option<UserId>,
    /// A human-readable label: the user's email, `system`, or a worker's host.
    pub label: String,
}
