//! Who may do what: the approval and role rules as pure functions.
//!
//! The use cases (request, approve, deny, execute, cancel) load the facts they need, call one of
//! these functions inside their transaction, and act only on `Ok`. Keeping the rules here, away
//! from HTTP and SQL, means the REST API, the web UI and the workers cannot disagree, and every
//! rule can be tested without a database.
//!
//! The rules, briefly:
//! - anyone may request a run;
//! - managers and admins may approve or deny, but never a run they requested themselves nor one whose
//!   content (any of its migration versions) they authored, and only once per run;
//! - an approval counts only for the direction, the run's revision and the exact content (the
//!   release's content checksum) it was given for; a run whose migrations were edited after the
//!   request is stale and may not be applied until it is refreshed (a new revision) and approved
//!   again;
//! - the same rule decides at execute and in the worker right before applying ([`may_apply`]);
//! - one deny stops the run for good;
//! - executing needs a role the environment allows and enough valid approvals;
//! - the requester, managers and admins may cancel an unfinished run, refresh one that has not
//!   started, and retry a failed or cancelled one;
//! - an API token is made by its owner, from a signed-in session: never for someone else (that would
//!   let an admin act, and approve, as another person) and never with another token (a short-lived
//!   or read-only token must not mint a longer-lived or writing one that outlives it).

use std::fmt;
use std::time::Duration;

use crate::checksum::Checksum;
use crate::enums::{ActorKind, ApprovalDecision, Direction, LintBlock, Risk, Role, RunKind};
use crate::error_code::ErrorCode;
use crate::ids::{RunId, UserId};
use crate::run::RunStatus;

/// A set of roles, e.g. the roles allowed to execute runs in an environment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<Role>", into = "Vec<Role>")]
pub struct RoleSet {
    /// One bit per role, at the role's position in `Role::ALL`.
    bits: u8,
}

impl RoleSet {
    const fn bit(role: Role) -> u8 {
        match role {
            Role::User => 1,
            Role::Manager => 1 << 1,
            Role::Admin => 1 << 2,
        }
    }

    /// No role.
    pub const fn empty() -> Self {
        RoleSet { bits: 0 }
    }

    /// Every role.
    pub const fn all() -> Self {
        RoleSet::empty().with(Role::User).with(Role::Manager).with(Role::Admin)
    }

    /// This set plus `role`.
    pub const fn with(self, role: Role) -> Self {
        RoleSet { bits: self.bits | Self::bit(role) }
    }

    /// The set of the given roles; duplicates are ignored.
    pub fn from_roles(roles: &[Role]) -> Self {
        roles.iter().copied().collect()
    }

    /// Whether `role` is in the set.
    pub const fn contains(&self, role: Role) -> bool {
        self.bits & Self::bit(role) != 0
    }

    /// Adds `role`.
    pub fn insert(&mut self, role: Role) {
        self.bits |= Self::bit(role);
    }

    /// Removes `role`.
    pub fn remove(&mut self, role: Role) {
        self.bits &= !Self::bit(role);
    }

    /// Whether the set has no role.
    pub const fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// How many roles the set has.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The roles in the set, from least to most privileged.
    pub fn iter(&self) -> impl Iterator<Item = Role> + use<> {
        let set = *self;
        Role::ALL.iter().copied().filter(move |&role| set.contains(role))
    }

    /// The roles in the set, from least to most privileged.
    pub fn to_vec(&self) -> Vec<Role> {
        self.iter().collect()
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(roles: I) -> Self {
        let mut set = RoleSet::empty();
        for role in roles {
            set.insert(role);
        }
        set
    }
}

impl From<Vec<Role>> for RoleSet {
    fn from(roles: Vec<Role>) -> Self {
        roles.into_iter().collect()
    }
}

impl From<&[Role]> for RoleSet {
    fn from(roles: &[Role]) -> Self {
        RoleSet::from_roles(roles)
    }
}

impl From<RoleSet> for Vec<Role> {
    fn from(set: RoleSet) -> Self {
        set.to_vec()
    }
}

/// An environment setting that is out of range. Shown to the admin editing the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Approval is required but the count is 0 or above the maximum.
    #[error(
        "when approval is required, the number of approvals must be between 1 and {max}, not {got}",
        max = EnvironmentPolicy::MAX_APPROVALS
    )]
    ApprovalsOutOfRange {
        /// The number given.
        got: u8,
    },
    /// Approval is not required but a count was given.
    #[error("when approval is not required, the number of approvals must be 0, not {got}")]
    ApprovalsWithoutApproval {
        /// The number given.
        got: u8,
    },
    /// Nobody could execute runs.
    #[error("at least one role must be allowed to execute runs")]
    NoExecuteRoles,
    /// A timeout is below its minimum.
    #[error("the {setting} must be at least 1 millisecond")]
    TooShort {
        /// Which setting, in words.
        setting: &'static str,
    },
    /// A count is above its maximum.
    #[error("the {setting} must be at most {max}")]
    TooMany {
        /// Which setting, in words.
        setting: &'static str,
        /// The maximum.
        max: u8,
    },
    /// A timeout is above its maximum.
    #[error("the {setting} must be at most {max}")]
    TooLong {
        /// Which setting, in words.
        setting: &'static str,
        /// The maximum, in words.
        max: &'static str,
    },
}

impl PolicyError {
    /// A stable code for API clients and bug reports.
    pub fn code(&self) -> ErrorCode {
        match self {
            PolicyError::ApprovalsOutOfRange { .. } => ErrorCode::ApprovalsOutOfRange,
            PolicyError::ApprovalsWithoutApproval { .. } => ErrorCode::ApprovalsWithoutApproval,
            PolicyError::NoExecuteRoles => ErrorCode::NoExecuteRoles,
            PolicyError::TooShort { .. } => ErrorCode::TimeoutTooShort,
            PolicyError::TooLong { .. } => ErrorCode::TimeoutTooLong,
            PolicyError::TooMany { .. } => ErrorCode::OutOfRange,
        }
    }
}

/// The rules of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvironmentPolicy {
    /// Whether runs need approval before they may execute.
    pub approval_required: bool,
    /// How many distinct approvers are needed: 1..=10 when approval is required, else 0.
    pub approvals_required: u8,
    /// Roles allowed to execute approved runs.
    pub execute_roles: RoleSet,
    /// How long a migration statement waits for a table lock before giving up, so a migration
    /// queued behind a long transaction does not block every other query on that table.
    pub lock_timeout: Duration,
    /// How long one statement may run; `None` for no limit.
    pub statement_timeout: Option<Duration>,
    /// How long a worker waits for another worker's lock on the same target.
    pub target_lock_wait: Duration,
    /// Whether a migration older than the newest applied one may still be applied.
    pub allow_out_of_order: bool,
    /// How often a statement that gave up waiting for a lock (`lock_timeout`) is tried again, 0 to 10.
    pub lock_retries: u8,
    /// The longest wait between two tries after a lock timeout (the waits double from 200 ms).
    pub lock_retry_max_delay: Duration,
    /// Which SQL review findings refuse a release at request.
    pub lint_block: LintBlock,
    /// The approvals a high-risk release needs on top of `approvals_required`, 0 to 10 (only where approval
    /// is required).
    pub high_risk_approvals: u8,
}

impl EnvironmentPolicy {
    /// The most approvals an environment may require; more would make runs impossible to approve
    /// in most teams.
    pub const MAX_APPROVALS: u8 = 10;
    const MIN_TIMEOUT: Duration = Duration::from_millis(1);
    const HOUR: Duration = Duration::from_secs(60 * 60);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    /// The most retries after lock timeouts.
    pub const MAX_LOCK_RETRIES: u8 = 10;
    const LOCK_RETRIES: u8 = 3;
    const LOCK_RETRY_MAX_DELAY: Duration = Duration::from_secs(10);
    const MAX_LOCK_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);

    /// A validated policy.
    pub fn new(
        approval_required: bool,
        approvals_required: u8,
        execute_roles: RoleSet,
        lock_timeout: Duration,
        statement_timeout: Option<Duration>,
        target_lock_wait: Duration,
        allow_out_of_order: bool,
    ) -> Result<Self, PolicyError> {
        let policy = EnvironmentPolicy {
            approval_required,
            approvals_required,
            execute_roles,
            lock_timeout,
            statement_timeout,
            target_lock_wait,
            allow_out_of_order,
            lock_retries: Self::LOCK_RETRIES,
            lock_retry_max_delay: Self::LOCK_RETRY_MAX_DELAY,
            lint_block: LintBlock::Error,
            high_risk_approvals: if approval_required { 1 } else { 0 },
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the ranges; the fields are public, so a policy built by hand or loaded from storage
    /// can be checked too.
    ///
    /// Zero timeouts are refused because Postgres and MySQL read 0 as "no limit", the opposite of
    /// what a zero usually means; `statement_timeout: None` is the way to say "no limit".
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.approval_required {
            if !(1..=Self::MAX_APPROVALS).contains(&self.approvals_required) {
                return Err(PolicyError::ApprovalsOutOfRange { got: self.approvals_required });
            }
        } else if self.approvals_required != 0 {
            return Err(PolicyError::ApprovalsWithoutApproval { got: self.approvals_required });
        }
        if self.execute_roles.is_empty() {
            return Err(PolicyError::NoExecuteRoles);
        }
        let lock = "lock timeout";
        if self.lock_timeout < Self::MIN_TIMEOUT {
            return Err(PolicyError::TooShort { setting: lock });
        }
        if self.lock_timeout > Self::HOUR {
            return Err(PolicyError::TooLong { setting: lock, max: "1 hour" });
        }
        if let Some(statement_timeout) = self.statement_timeout {
            let statement = "statement timeout";
            if statement_timeout < Self::MIN_TIMEOUT {
                return Err(PolicyError::TooShort { setting: statement });
            }
            if statement_timeout > Self::DAY {
                return Err(PolicyError::TooLong { setting: statement, max: "24 hours" });
            }
        }
        if self.target_lock_wait > Self::HOUR {
            return Err(PolicyError::TooLong { setting: "target lock wait", max: "1 hour" });
        }
        if self.lock_retries > Self::MAX_LOCK_RETRIES {
            return Err(PolicyError::TooMany { setting: "lock retries", max: Self::MAX_LOCK_RETRIES });
        }
        if self.lock_retry_max_delay > Self::MAX_LOCK_RETRY_DELAY {
            return Err(PolicyError::TooLong { setting: "longest wait between lock retries", max: "5 minutes" });
        }
        if self.high_risk_approvals > Self::MAX_APPROVALS {
            return Err(PolicyError::TooMany {
                setting: "extra approvals for a high-risk release",
                max: Self::MAX_APPROVALS,
            });
        }
        Ok(())
    }

    /// A safe default for production-like environments: one approval, executed by managers or
    /// admins.
    pub fn production_default() -> Self {
        EnvironmentPolicy {
            approval_required: true,
            approvals_required: 1,
            execute_roles: RoleSet::empty().with(Role::Manager).with(Role::Admin),
            // Short, so a blocked ALTER does not stall the application queued behind its lock; a
            // statement that gives up is tried again (`lock_retries`).
            lock_timeout: Duration::from_secs(2),
            statement_timeout: None,
            target_lock_wait: Duration::from_secs(60),
            allow_out_of_order: false,
            lock_retries: Self::LOCK_RETRIES,
            lock_retry_max_delay: Self::LOCK_RETRY_MAX_DELAY,
            lint_block: LintBlock::Error,
            // A destructive or long-locking release needs a second pair of eyes.
            high_risk_approvals: 1,
        }
    }

    /// How many distinct approvals a run of `risk` needs under this policy (0 where none is required).
    pub fn approvals_needed(&self, risk: Option<Risk>) -> u8 {
        if !self.approval_required {
            return 0;
        }
        let extra = if risk == Some(Risk::High) { self.high_risk_approvals } else { 0 };
        self.approvals_required.saturating_add(extra)
    }

    /// A default for development environments: no approval, anyone may execute. Only who may do
    /// what is relaxed; the timeouts and ordering stay as in production.
    pub fn permissive_default() -> Self {
        EnvironmentPolicy {
            approval_required: false,
            approvals_required: 0,
            execute_roles: RoleSet::all(),
            high_risk_approvals: 0,
            ..EnvironmentPolicy::production_default()
        }
    }
}

/// The person asking to do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// Who.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

/// The checksums of one migration version's up and down scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PinnedChecksums {
    /// The checksum of the up script.
    pub up: Checksum,
    /// The checksum of the down script, when there is one.
    pub down: Option<Checksum>,
}

/// What the rules need to know about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFacts {
    /// The run.
    pub id: RunId,
    /// Who requested it.
    pub requested_by: UserId,
    /// Its current status.
    pub status: RunStatus,
    /// Whether it applies or reverts.
    pub direction: Direction,
    /// What it does on each target.
    pub kind: RunKind,
    /// How often its content was pinned: 1 at request, plus one per refresh.
    pub revision: u32,
    /// The checksum of the content pinned for it (`release::content_checksum`).
    pub content: Checksum,
    /// The risk of that content from its SQL review, pinned with it (`None`: a run from before the review).
    pub risk: Option<Risk>,
}

/// What the rules need to know about one approve or deny decision on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalFacts {
    /// Who decided.
    pub approver: UserId,
    /// What they decided.
    pub decision: ApprovalDecision,
    /// The direction they decided on.
    pub direction: Direction,
    /// The run's revision they decided on.
    pub revision: u32,
    /// The content checksum they decided on.
    pub pinned: Checksum,
}

/// Why an action is refused. Every message is meant to be shown to the user as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The actor's role is below what the action needs.
    #[error("this action requires the {needed} role or higher")]
    RoleTooLow {
        /// The lowest role that may act.
        needed: &'static str,
    },
    /// The actor requested the run they are trying to approve or deny.
    #[error("the requester of a run cannot approve it or deny it")]
    SelfApproval,
    /// The actor authored a migration version in the run they are trying to approve or deny.
    #[error("you authored a migration version in this run, so you cannot approve it or deny it")]
    AuthorApproval,
    /// The actor has already approved or denied this run.
    #[error("you have already approved or denied this run")]
    AlreadyDecided,
    /// The run's status does not allow the action.
    #[error("cannot {action} this run: its status is \"{status}\"")]
    WrongStatus {
        /// The action, as a verb: `"approve"`, `"execute"`…
        action: &'static str,
        /// The run's current status.
        status: RunStatus,
    },
    /// Refresh and retry are for releases: a baseline, adoption or recovery pins what was read on its
    /// target at request, so a new one is requested instead.
    #[error("cannot {action} a {kind} run: request a new one, so that it is read and approved afresh")]
    NotARelease {
        /// The action, as a verb.
        action: &'static str,
        /// The run's kind.
        kind: RunKind,
    },
    /// Not enough valid approvals yet.
    #[error("the run has {have} of the {need} approvals it needs")]
    NotApproved {
        /// Valid approvals so far.
        have: u8,
        /// Approvals the environment requires.
        need: u8,
    },
    /// The content that would be applied is not the content the run pinned (and its approvals were
    /// given for): a migration of the run was edited after the request, or the stored SQL changed.
    #[error(
        "the migrations changed after this run was requested, so its approval was given for different \
         content; refresh the run to the newest versions and have it approved again"
    )]
    ChecksumMismatch,
    /// A reviewer denied the run.
    #[error("the run was denied")]
    Denied,
    /// The environment does not let this role execute runs.
    #[error("the {role} role may not execute runs in this environment")]
    RoleCannotExecute {
        /// The actor's role.
        role: Role,
    },
    /// Only admins may do this.
    #[error("this action requires the admin role")]
    NotAdmin,
    /// A new API token was asked for with something other than a signed-in session (another token).
    #[error(
        "API tokens are created only from a signed-in session, not with an API token: sign in to the hub and \
         create the token there"
    )]
    SessionRequired,
}

impl Denial {
    /// A stable code for API clients and bug reports.
    pub fn code(&self) -> ErrorCode {
        match self {
            Denial::RoleTooLow { .. } => ErrorCode::RoleTooLow,
            Denial::SelfApproval => ErrorCode::SelfApproval,
            Denial::AuthorApproval => ErrorCode::AuthorApproval,
            Denial::AlreadyDecided => ErrorCode::AlreadyDecided,
            Denial::WrongStatus { .. } => ErrorCode::WrongStatus,
            Denial::NotARelease { .. } => ErrorCode::NotARelease,
            Denial::NotApproved { .. } => ErrorCode::NotApproved,
            Denial::ChecksumMismatch => ErrorCode::ChecksumMismatch,
            Denial::Denied => ErrorCode::Denied,
            Denial::RoleCannotExecute { .. } => ErrorCode::RoleCannotExecute,
            Denial::NotAdmin => ErrorCode::NotAdmin,
            Denial::SessionRequired => ErrorCode::SessionRequired,
        }
    }
}

/// Where a run stands with respect to approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// The environment needs no approval.
    NotRequired,
    /// Some valid approvals are still missing.
    Pending {
        /// Valid approvals so far.
        have: u8,
        /// Approvals the environment requires.
        need: u8,
    },
    /// Enough valid approvals.
    Approved,
    /// A reviewer denied the run.
    Denied,
}

/// Whether `actor` may request a run of `kind`. Everyone may request a release: approval, not requesting,
/// is the gate. A baseline, adoption or recovery writes history rows without running the migrations (and
/// reads the targets at request), so it takes a manager or an admin to ask for one.
pub fn may_request_run(actor: &Actor, kind: RunKind) -> Result<(), Denial> {
    if kind != RunKind::Release && actor.role < Role::Manager {
        return Err(Denial::RoleTooLow { needed: "manager" });
    }
    Ok(())
}

/// Whether `actor` may approve `run`, given the authors of its content (the `author_id` of every
/// migration version it pins) and the decisions already recorded on it.
///
/// The requester may never approve their own run, whatever their role, and neither may anyone who
/// wrote what it applies: the point of approval is a second pair of eyes on the content, and admins
/// are not exempt.
pub fn may_approve(
    actor: &Actor,
    run: &RunFacts,
    authors: &[UserId],
    decisions: &[ApprovalFacts],
) -> Result<(), Denial> {
    may_decide("approve", actor, run, authors, decisions)
}

/// Whether `actor` may deny `run`: the same rules as [`may_approve`]. A requester who no longer
/// wants their run cancels it instead.
pub fn may_deny(actor: &Actor, run: &RunFacts, authors: &[UserId], decisions: &[ApprovalFacts]) -> Result<(), Denial> {
    may_decide("deny", actor, run, authors, decisions)
}

fn may_decide(
    action: &'static str,
    actor: &Actor,
    run: &RunFacts,
    authors: &[UserId],
    decisions: &[ApprovalFacts],
) -> Result<(), Denial> {
    // Separation of duties first: the requester and the authors hear why they cannot decide, whatever
    // their role.
    if actor.user_id == run.requested_by {
        return Err(Denial::SelfApproval);
    }
    if authors.contains(&actor.user_id) {
        return Err(Denial::AuthorApproval);
    }
    if actor.role < Role::Manager {
        return Err(Denial::RoleTooLow { needed: "manager" });
    }
    if run.status != RunStatus::AwaitingApproval {
        return Err(Denial::WrongStatus { action, status: run.status });
    }
    // A refresh (a new revision) asks everyone again.
    if decisions.iter().any(|d| d.approver == actor.user_id && d.revision == run.revision) {
        return Err(Denial::AlreadyDecided);
    }
    Ok(())
}

/// Approvals that count: approve decisions for the run's direction and current revision, by someone
/// other than the requester (stored data is not trusted to have been checked), for exactly the
/// content the run pinned.
fn valid_approvers(run: &RunFacts, decisions: &[ApprovalFacts]) -> Vec<UserId> {
    let mut approvers: Vec<UserId> = decisions
        .iter()
        .filter(|d| {
            d.decision == ApprovalDecision::Approve
                && d.direction == run.direction
                && d.approver != run.requested_by
                && d.revision == run.revision
                && d.pinned == run.content
        })
        .map(|d| d.approver)
        .collect();
    // One person counts once, however many rows they have.
    approvers.sort_unstable();
    approvers.dedup();
    approvers
}

/// Where `run` stands with respect to approval, under `policy`.
///
/// A deny for the run's direction and current revision outweighs any number of approvals.
pub fn approval_state(policy: &EnvironmentPolicy, run: &RunFacts, decisions: &[ApprovalFacts]) -> ApprovalState {
    if !policy.approval_required {
        return ApprovalState::NotRequired;
    }
    if decisions
        .iter()
        .any(|d| d.decision == ApprovalDecision::Deny && d.direction == run.direction && d.revision == run.revision)
    {
        return ApprovalState::Denied;
    }
    // More than 255 approvers cannot happen in practice; saturating keeps the comparison right.
    let have = u8::try_from(valid_approvers(run, decisions).len()).unwrap_or(u8::MAX);
    let need = policy.approvals_needed(run.risk);
    if have >= need { ApprovalState::Approved } else { ApprovalState::Pending { have, need } }
}

/// Whether the content `actual` may be applied for `run`: the one rule the execute action and the
/// workers (right before applying, from the stored SQL) both call.
///
/// `actual` is the checksum of what would be applied now. It must be the content the run pinned,
/// and that content must be approved as the environment's (current) policy requires.
pub fn may_apply(
    policy: &EnvironmentPolicy,
    run: &RunFacts,
    decisions: &[ApprovalFacts],
    actual: &Checksum,
) -> Result<(), Denial> {
    if *actual != run.content {
        return Err(Denial::ChecksumMismatch);
    }
    match approval_state(policy, run, decisions) {
        ApprovalState::NotRequired | ApprovalState::Approved => Ok(()),
        ApprovalState::Denied => Err(Denial::Denied),
        ApprovalState::Pending { have, need } => Err(Denial::NotApproved { have, need }),
    }
}

/// Whether `actor` may execute `run` now, with `actual` being the checksum of the content that
/// would be applied (the newest versions of the run's migrations).
///
/// A run whose status is `approved` is still checked against its approvals: the content may have
/// changed since it was approved, and an approval is only for what the approver saw. The policy is
/// the environment's current one, so tightening a policy applies to runs not yet executed.
pub fn may_execute(
    actor: &Actor,
    run: &RunFacts,
    policy: &EnvironmentPolicy,
    decisions: &[ApprovalFacts],
    actual: &Checksum,
) -> Result<(), Denial> {
    if !policy.execute_roles.contains(actor.role) {
        return Err(Denial::RoleCannotExecute { role: actor.role });
    }
    if run.status != RunStatus::Approved {
        return Err(Denial::WrongStatus { action: "execute", status: run.status });
    }
    may_apply(policy, run, decisions, actual)
}

/// Whether `actor` may refresh `run` (re-pin it to the newest versions of its migrations, which
/// asks for approval again): its requester, or any manager or admin, before it has started.
pub fn may_refresh(actor: &Actor, run: &RunFacts) -> Result<(), Denial> {
    if actor.user_id != run.requested_by && actor.role < Role::Manager {
        return Err(Denial::RoleTooLow { needed: "manager" });
    }
    if run.kind != RunKind::Release {
        return Err(Denial::NotARelease { action: "refresh", kind: run.kind });
    }
    match run.status {
        RunStatus::AwaitingApproval | RunStatus::Approved => Ok(()),
        status => Err(Denial::WrongStatus { action: "refresh", status }),
    }
}

/// Whether `actor` may retry `run` (a new run over the same content for the targets it did not
/// finish): its requester, or any manager or admin, once it failed or was cancelled.
pub fn may_retry(actor: &Actor, run: &RunFacts) -> Result<(), Denial> {
    if actor.user_id != run.requested_by && actor.role < Role::Manager {
        return Err(Denial::RoleTooLow { needed: "manager" });
    }
    if run.kind != RunKind::Release {
        return Err(Denial::NotARelease { action: "retry", kind: run.kind });
    }
    match run.status {
        RunStatus::Failed | RunStatus::Cancelled => Ok(()),
        status => Err(Denial::WrongStatus { action: "retry", status }),
    }
}

/// Whether `actor` may cancel `run`: its requester, or any manager or admin, while it is not
/// finished.
pub fn may_cancel(actor: &Actor, run: &RunFacts) -> Result<(), Denial> {
    if actor.user_id != run.requested_by && actor.role < Role::Manager {
        return Err(Denial::RoleTooLow { needed: "manager" });
    }
    match run.status {
        RunStatus::AwaitingApproval
        | RunStatus::Approved
        | RunStatus::Queued
        | RunStatus::Running
        | RunStatus::Halted => Ok(()),
        RunStatus::Denied | RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled => {
            Err(Denial::WrongStatus { action: "cancel", status: run.status })
        }
    }
}

/// Whether `actor` may continue `run`'s waves: start its next wave (`awaiting_continue`: the current one
/// ended within its budget and the run's waves advance by hand) or resume it after a wave halted it
/// (tolerating that wave's failures so far). The same people the environment lets execute runs.
pub fn may_continue(
    actor: &Actor,
    run: &RunFacts,
    policy: &EnvironmentPolicy,
    awaiting_continue: bool,
) -> Result<(), Denial> {
    if !policy.execute_roles.contains(actor.role) {
        return Err(Denial::RoleCannotExecute { role: actor.role });
    }
    match run.status {
        RunStatus::Halted => Ok(()),
        RunStatus::Running if awaiting_continue => Ok(()),
        status => Err(Denial::WrongStatus { action: "continue", status }),
    }
}

/// Whether `actor` has at least `least` role: the gate of every route (what the route then does is
/// decided by the functions above).
pub fn has_role(actor: &Actor, least: Role) -> Result<(), Denial> {
    if actor.role >= least { Ok(()) } else { Err(Denial::RoleTooLow { needed: least.as_str() }) }
}

/// Whether `actor` may change environments, targets, users and tokens.
pub fn may_administer(actor: &Actor) -> Result<(), Denial> {
    if actor.role == Role::Admin { Ok(()) } else { Err(Denial::NotAdmin) }
}

/// Whether `actor`, authenticated as `credential`, may create an API token. The token is always
/// `actor`'s own (there is no way to name another owner: admins list and revoke anyone's tokens but
/// never mint one for someone else, which would let them act as that person), and it is made from a
/// signed-in session only: a token minted with a token could outlive its parent's expiry, scope and
/// revocation.
pub fn may_create_token(_actor: &Actor, credential: ActorKind) -> Result<(), Denial> {
    match credential {
        ActorKind::User => Ok(()),
        ActorKind::Token | ActorKind::System | ActorKind::Worker => Err(Denial::SessionRequired),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::release::content_checksum;
    use crate::test_support::{from_str, to_json};
    use crate::values::VersionKey;

    // --- fixtures ---

    fn actor(role: Role) -> Actor {
        Actor { user_id: UserId::new(), role }
    }

    /// The content checksum of a one-migration release whose up script is `up` and down script `down`.
    fn release(up: &str, down: Option<&str>) -> Checksum {
        let key = VersionKey::parse("1").unwrap();
        let pinned = PinnedChecksums { up: Checksum::of(up), down: down.map(Checksum::of) };
        content_checksum([(&key, &pinned)])
    }

    /// The content checksum of a one-migration release with an up and a down script.
    fn content(text: &str) -> Checksum {
        release(text, Some(&format!("-- revert\n{text}")))
    }

    /// A run at revision 1 that pins `content("SELECT 1;")`.
    fn run_by(requester: &Actor, status: RunStatus) -> RunFacts {
        RunFacts {
            id: RunId::new(),
            requested_by: requester.user_id,
            status,
            direction: Direction::Up,
            kind: RunKind::Release,
            revision: 1,
            content: content("SELECT 1;"),
            risk: Some(Risk::Low),
        }
    }

    #[test]
    fn a_high_risk_run_needs_the_extra_approvals_of_its_environment() {
        let (requester, first, second) = (actor(Role::User), actor(Role::Manager), actor(Role::Manager));
        let policy = EnvironmentPolicy::production_default();
        assert_eq!(policy.high_risk_approvals, 1);
        let risky = RunFacts { risk: Some(Risk::High), ..run_by(&requester, RunStatus::AwaitingApproval) };
        let approve = |who: &Actor| ApprovalFacts {
            approver: who.user_id,
            decision: ApprovalDecision::Approve,
            direction: Direction::Up,
            revision: 1,
            pinned: risky.content,
        };
        let one = [approve(&first)];
        assert_eq!(approval_state(&policy, &risky, &one), ApprovalState::Pending { have: 1, need: 2 });
        let two = [approve(&first), approve(&second)];
        assert_eq!(approval_state(&policy, &risky, &two), ApprovalState::Approved);
        // Medium risk, or a run from before the review: the environment's approvals alone.
        for risk in [Some(Risk::Medium), None] {
            assert_eq!(approval_state(&policy, &RunFacts { risk, ..risky }, &one), ApprovalState::Approved);
        }
        // Where no approval is required, none is for high risk either.
        let open = EnvironmentPolicy::permissive_default();
        assert_eq!(open.approvals_needed(Some(Risk::High)), 0);
        let too_many = EnvironmentPolicy { high_risk_approvals: 11, ..policy };
        assert!(too_many.validate().is_err());
    }

    /// The run refreshed `times` times onto `content`.
    fn refreshed(run: RunFacts, times: u32, content: Checksum) -> RunFacts {
        RunFacts { revision: run.revision + times, content, ..run }
    }

    /// A decision on exactly what `run` pins now (its revision and content).
    fn decision(by: &Actor, decision: ApprovalDecision, run: &RunFacts) -> ApprovalFacts {
        ApprovalFacts {
            approver: by.user_id,
            decision,
            direction: run.direction,
            revision: run.revision,
            pinned: run.content,
        }
    }

    fn approve(by: &Actor, run: &RunFacts) -> ApprovalFacts {
        decision(by, ApprovalDecision::Approve, run)
    }

    fn deny(by: &Actor, run: &RunFacts) -> ApprovalFacts {
        decision(by, ApprovalDecision::Deny, run)
    }

    fn needing(approvals: u8) -> EnvironmentPolicy {
        EnvironmentPolicy {
            approvals_required: approvals,
            execute_roles: RoleSet::all(),
            ..EnvironmentPolicy::production_default()
        }
    }

    #[test]
    fn fixtures_pin_what_they_say() {
        // The tests below rely on these being different checksums.
        let base = content("SELECT 1;");
        assert_ne!(base, content("SELECT 2;"));
        assert_ne!(base, release("SELECT 1;", Some("-- other revert")));
        assert_ne!(base, release("SELECT 1;", None));
        assert_eq!(base, release("SELECT 1;", Some("-- revert\nSELECT 1;")));
        let run = run_by(&actor(Role::User), RunStatus::AwaitingApproval);
        assert_eq!((run.revision, run.content), (1, base));
        let approval = approve(&actor(Role::Manager), &run);
        assert_eq!((approval.revision, approval.pinned), (1, base));
    }

    // --- RoleSet ---

    #[test]
    fn role_set_basics() {
        let mut set = RoleSet::from_roles(&[Role::Admin, Role::User, Role::Admin]);
        assert!(set.contains(Role::User));
        assert!(!set.contains(Role::Manager));
        assert!(set.contains(Role::Admin));
        assert_eq!(set.len(), 2);
        assert_eq!(set.to_vec(), [Role::User, Role::Admin]);
        assert_eq!(format!("{set:?}"), "{User, Admin}");
        set.insert(Role::Manager);
        assert_eq!(set, RoleSet::all());
        set.remove(Role::User);
        set.remove(Role::User);
        assert_eq!(set.iter().collect::<Vec<_>>(), [Role::Manager, Role::Admin]);
        assert!(RoleSet::empty().is_empty());
        assert!(RoleSet::default().is_empty());
        assert!(!set.is_empty());
        assert_eq!(RoleSet::all().len(), 3);
    }

    #[test]
    fn role_set_vec_conversions() {
        for roles in
            [vec![], vec![Role::User], vec![Role::Manager, Role::Admin], vec![Role::User, Role::Manager, Role::Admin]]
        {
            let set = RoleSet::from(roles.clone());
            assert_eq!(Vec::<Role>::from(set), roles);
            assert_eq!(RoleSet::from(roles.as_slice()), set);
        }
        // Order and duplicates do not matter going in; out comes privilege order.
        let set = RoleSet::from(vec![Role::Admin, Role::User, Role::User]);
        assert_eq!(Vec::<Role>::from(set), [Role::User, Role::Admin]);
    }

    #[test]
    fn role_set_serializes_as_a_list() {
        let set = RoleSet::from_roles(&[Role::Admin, Role::Manager]);
        assert_eq!(to_json(&set), r#"["manager","admin"]"#);
        assert_eq!(to_json(&RoleSet::empty()), "[]");
    }

    // --- EnvironmentPolicy ---

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let prod = EnvironmentPolicy::production_default();
        prod.validate().unwrap();
        assert!(prod.approval_required);
        assert_eq!(prod.approvals_required, 1);
        assert_eq!(prod.execute_roles.to_vec(), [Role::Manager, Role::Admin]);
        assert_eq!(prod.lock_timeout, Duration::from_secs(2));
        assert_eq!(prod.statement_timeout, None);
        assert_eq!(prod.target_lock_wait, Duration::from_secs(60));
        assert!(!prod.allow_out_of_order);

        let dev = EnvironmentPolicy::permissive_default();
        dev.validate().unwrap();
        assert!(!dev.approval_required);
        assert_eq!(dev.approvals_required, 0);
        assert_eq!(dev.execute_roles, RoleSet::all());
    }

    fn build(
        approval_required: bool,
        approvals_required: u8,
        execute_roles: RoleSet,
        lock_timeout: Duration,
        statement_timeout: Option<Duration>,
        target_lock_wait: Duration,
    ) -> Result<EnvironmentPolicy, PolicyError> {
        EnvironmentPolicy::new(
            approval_required,
            approvals_required,
            execute_roles,
            lock_timeout,
            statement_timeout,
            target_lock_wait,
            false,
        )
    }

    const SEC: Duration = Duration::from_secs(1);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86400);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn policy_accepts_boundaries() {
        let all = RoleSet::all();
        build(true, 1, all, SEC, None, SEC).unwrap();
        build(true, 10, all, SEC, None, SEC).unwrap();
        build(false, 0, all, SEC, None, SEC).unwrap();
        build(true, 1, all, HOUR, Some(DAY), HOUR).unwrap();
        build(true, 1, all, MS, Some(MS), Duration::ZERO).unwrap();
        let policy =
            EnvironmentPolicy::new(true, 2, RoleSet::from_roles(&[Role::Admin]), SEC, Some(SEC), SEC, true).unwrap();
        assert_eq!(policy.approvals_required, 2);
        assert!(policy.allow_out_of_order);
    }

    #[test]
    fn policy_rejects_out_of_range_settings() {
        let all = RoleSet::all();
        let over = |d: Duration| d + Duration::from_nanos(1);
        let cases = [
            (
                build(true, 0, all, SEC, None, SEC),
                PolicyError::ApprovalsOutOfRange { got: 0 },
                "approvals_out_of_range",
                "when approval is required, the number of approvals must be between 1 and 10, not 0",
            ),
            (
                build(true, 11, all, SEC, None, SEC),
                PolicyError::ApprovalsOutOfRange { got: 11 },
                "approvals_out_of_range",
                "when approval is required, the number of approvals must be between 1 and 10, not 11",
            ),
            (
                build(false, 1, all, SEC, None, SEC),
                PolicyError::ApprovalsWithoutApproval { got: 1 },
                "approvals_without_approval",
                "when approval is not required, the number of approvals must be 0, not 1",
            ),
            (
                build(true, 1, RoleSet::empty(), SEC, None, SEC),
                PolicyError::NoExecuteRoles,
                "no_execute_roles",
                "at least one role must be allowed to execute runs",
            ),
            (
                build(true, 1, all, Duration::ZERO, None, SEC),
                PolicyError::TooShort { setting: "lock timeout" },
                "timeout_too_short",
                "the lock timeout must be at least 1 millisecond",
            ),
            (
                build(true, 1, all, over(HOUR), None, SEC),
                PolicyError::TooLong { setting: "lock timeout", max: "1 hour" },
                "timeout_too_long",
                "the lock timeout must be at most 1 hour",
            ),
            (
                build(true, 1, all, SEC, Some(Duration::from_micros(999)), SEC),
                PolicyError::TooShort { setting: "statement timeout" },
                "timeout_too_short",
                "the statement timeout must be at least 1 millisecond",
            ),
            (
                build(true, 1, all, SEC, Some(over(DAY)), SEC),
                PolicyError::TooLong { setting: "statement timeout", max: "24 hours" },
                "timeout_too_long",
                "the statement timeout must be at most 24 hours",
            ),
            (
                build(true, 1, all, SEC, None, over(HOUR)),
                PolicyError::TooLong { setting: "target lock wait", max: "1 hour" },
                "timeout_too_long",
                "the target lock wait must be at most 1 hour",
            ),
        ];
        for (result, error, code, message) in cases {
            let err = result.unwrap_err();
            assert_eq!(err, error);
            assert_eq!(err.code().as_str(), code);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn validate_catches_hand_built_policies() {
        let policy = EnvironmentPolicy { execute_roles: RoleSet::empty(), ..EnvironmentPolicy::production_default() };
        assert_eq!(policy.validate(), Err(PolicyError::NoExecuteRoles));
    }

    // --- may_request_run / may_administer ---

    #[test]
    fn everyone_may_request_a_run() {
        for &role in Role::ALL {
            assert_eq!(may_request_run(&actor(role), RunKind::Release), Ok(()));
            let action = may_request_run(&actor(role), RunKind::Recovery);
            assert_eq!(action.is_ok(), role >= Role::Manager, "{role}");
        }
    }

    #[test]
    fn only_admins_may_administer() {
        assert_eq!(may_administer(&actor(Role::Admin)), Ok(()));
        assert_eq!(may_administer(&actor(Role::Manager)), Err(Denial::NotAdmin));
        assert_eq!(has_role(&actor(Role::User), Role::Manager), Err(Denial::RoleTooLow { needed: "manager" }));
        assert_eq!(has_role(&actor(Role::Manager), Role::Manager), Ok(()));
        assert_eq!(has_role(&actor(Role::Admin), Role::User), Ok(()));
        assert_eq!(may_administer(&actor(Role::User)), Err(Denial::NotAdmin));
    }

    // --- may_approve / may_deny ---

    #[test]
    fn managers_and_admins_may_approve_and_deny_others_runs() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        for role in [Role::Manager, Role::Admin] {
            assert_eq!(may_approve(&actor(role), &run, &[], &[]), Ok(()));
            assert_eq!(may_deny(&actor(role), &run, &[], &[]), Ok(()));
        }
    }

    #[test]
    fn users_may_not_approve() {
        let run = run_by(&actor(Role::User), RunStatus::AwaitingApproval);
        let denial = may_approve(&actor(Role::User), &run, &[], &[]).unwrap_err();
        assert_eq!(denial, Denial::RoleTooLow { needed: "manager" });
        assert_eq!(denial.code().as_str(), "role_too_low");
        assert_eq!(denial.to_string(), "this action requires the manager role or higher");
        assert_eq!(may_deny(&actor(Role::User), &run, &[], &[]), Err(denial));
    }

    #[test]
    fn an_admin_requester_still_cannot_approve_their_own_run() {
        let admin = actor(Role::Admin);
        let run = run_by(&admin, RunStatus::AwaitingApproval);
        let denial = may_approve(&admin, &run, &[], &[]).unwrap_err();
        assert_eq!(denial, Denial::SelfApproval);
        assert_eq!(denial.code().as_str(), "self_approval");
        assert!(denial.to_string().starts_with("the requester of a run cannot approve it"));
        assert_eq!(may_deny(&admin, &run, &[], &[]), Err(Denial::SelfApproval));
        let manager = actor(Role::Manager);
        let run = run_by(&manager, RunStatus::AwaitingApproval);
        assert_eq!(may_approve(&manager, &run, &[], &[]), Err(Denial::SelfApproval));
        // Nor after a refresh.
        let run = refreshed(run, 1, content("SELECT 2;"));
        assert_eq!(may_approve(&manager, &run, &[], &[]), Err(Denial::SelfApproval));
    }

    #[test]
    fn approving_needs_awaiting_approval() {
        let requester = actor(Role::User);
        let manager = actor(Role::Manager);
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            let result = may_approve(&manager, &run, &[], &[]);
            if status == RunStatus::AwaitingApproval {
                assert_eq!(result, Ok(()));
            } else {
                assert_eq!(result, Err(Denial::WrongStatus { action: "approve", status }));
                assert_eq!(may_deny(&manager, &run, &[], &[]), Err(Denial::WrongStatus { action: "deny", status }));
            }
        }
        let denial = may_approve(&manager, &run_by(&requester, RunStatus::Approved), &[], &[]).unwrap_err();
        assert_eq!(denial.code().as_str(), "wrong_status");
        assert_eq!(denial.to_string(), r#"cannot approve this run: its status is "approved""#);
    }

    #[test]
    fn one_decision_per_approver() {
        let requester = actor(Role::User);
        let manager = actor(Role::Manager);
        let other = actor(Role::Admin);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        for previous in [approve(&manager, &run), deny(&manager, &run)] {
            let denial = may_approve(&manager, &run, &[], &[previous]).unwrap_err();
            assert_eq!(denial, Denial::AlreadyDecided);
            assert_eq!(denial.code().as_str(), "already_decided");
            assert_eq!(denial.to_string(), "you have already approved or denied this run");
            assert_eq!(may_deny(&manager, &run, &[], &[previous]), Err(Denial::AlreadyDecided));
            // Someone else's decision does not block this approver.
            assert_eq!(may_approve(&other, &run, &[], &[previous]), Ok(()));
            assert_eq!(may_deny(&other, &run, &[], &[previous]), Ok(()));
        }
        // A decision for other content (data not made through the use cases) still is this approver's
        // decision on this revision.
        let odd = ApprovalFacts { pinned: content("SELECT 0;"), ..approve(&manager, &run) };
        assert_eq!(may_approve(&manager, &run, &[], &[odd]), Err(Denial::AlreadyDecided));
    }

    #[test]
    fn lock_retries_are_bounded() {
        let base = EnvironmentPolicy::production_default();
        assert_eq!((base.lock_retries, base.lock_retry_max_delay), (3, Duration::from_secs(10)));
        let many = EnvironmentPolicy { lock_retries: 11, ..base };
        assert_eq!(many.validate(), Err(PolicyError::TooMany { setting: "lock retries", max: 10 }));
        assert_eq!(many.validate().unwrap_err().code(), ErrorCode::OutOfRange);
        let long = EnvironmentPolicy { lock_retry_max_delay: Duration::from_secs(301), ..base };
        assert!(matches!(long.validate(), Err(PolicyError::TooLong { .. })));
        assert_eq!(
            EnvironmentPolicy { lock_retries: 0, lock_retry_max_delay: Duration::ZERO, ..base }.validate(),
            Ok(())
        );
    }

    #[test]
    fn only_releases_are_refreshed_or_retried() {
        let manager = actor(Role::Manager);
        for kind in [RunKind::Baseline, RunKind::Adopt, RunKind::Recovery] {
            let waiting = RunFacts { kind, ..run_by(&manager, RunStatus::AwaitingApproval) };
            assert_eq!(may_refresh(&manager, &waiting), Err(Denial::NotARelease { action: "refresh", kind }));
            let failed = RunFacts { kind, ..run_by(&manager, RunStatus::Failed) };
            assert_eq!(may_retry(&manager, &failed), Err(Denial::NotARelease { action: "retry", kind }));
            assert_eq!(may_cancel(&manager, &waiting), Ok(()));
        }
        let failed = run_by(&manager, RunStatus::Failed);
        assert_eq!(may_retry(&manager, &failed), Ok(()));
    }

    #[test]
    fn a_refresh_asks_every_approver_again() {
        let requester = actor(Role::User);
        let manager = actor(Role::Manager);
        let first = run_by(&requester, RunStatus::AwaitingApproval);
        let before = [approve(&manager, &first)];
        let second = refreshed(first, 1, content("SELECT 2;"));
        assert_eq!(second.revision, 2);
        // The decision on revision 1 does not stop a decision on revision 2…
        assert_eq!(may_approve(&manager, &second, &[], &before), Ok(()));
        assert_eq!(may_deny(&manager, &second, &[], &before), Ok(()));
        // …even when the refresh found the same content.
        let same = refreshed(first, 1, first.content);
        assert_eq!(may_approve(&manager, &same, &[], &before), Ok(()));
        // A decision on revision 2 does, whatever was decided before.
        let both = [before[0], deny(&manager, &second)];
        assert_eq!(may_approve(&manager, &second, &[], &both), Err(Denial::AlreadyDecided));
        assert_eq!(may_deny(&manager, &second, &[], &both), Err(Denial::AlreadyDecided));
        // And a decision on revision 2 does not count for revision 3.
        let third = refreshed(second, 1, content("SELECT 3;"));
        assert_eq!(may_approve(&manager, &third, &[], &both), Ok(()));
    }

    #[test]
    fn an_author_of_the_content_may_neither_approve_nor_deny() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let (author, co_author, reviewer) = (actor(Role::Manager), actor(Role::Admin), actor(Role::Manager));
        let authors = [author.user_id, co_author.user_id];
        for who in [&author, &co_author] {
            let denial = may_approve(who, &run, &authors, &[]).unwrap_err();
            assert_eq!(denial, Denial::AuthorApproval);
            assert_eq!(denial.code().as_str(), "author_approval");
            assert!(denial.to_string().starts_with("you authored a migration version in this run"), "{denial}");
            assert_eq!(may_deny(who, &run, &authors, &[]), Err(Denial::AuthorApproval));
        }
        // Someone who wrote none of it may decide.
        assert_eq!(may_approve(&reviewer, &run, &authors, &[]), Ok(()));
        assert_eq!(may_deny(&reviewer, &run, &authors, &[]), Ok(()));
        // An author is told so whatever else would refuse them; a requester who also authored hears the
        // requester rule.
        let user_author = actor(Role::User);
        let done = run_by(&requester, RunStatus::Approved);
        assert_eq!(may_approve(&user_author, &run, &[user_author.user_id], &[]), Err(Denial::AuthorApproval));
        assert_eq!(may_approve(&author, &done, &authors, &[]), Err(Denial::AuthorApproval));
        let own = run_by(&author, RunStatus::AwaitingApproval);
        assert_eq!(may_approve(&author, &own, &authors, &[]), Err(Denial::SelfApproval));
    }

    // --- may_create_token ---

    #[test]
    fn tokens_are_created_from_a_session_only() {
        for &role in Role::ALL {
            let who = actor(role);
            assert_eq!(may_create_token(&who, ActorKind::User), Ok(()));
            for credential in [ActorKind::Token, ActorKind::System, ActorKind::Worker] {
                let denial = may_create_token(&who, credential).unwrap_err();
                assert_eq!(denial, Denial::SessionRequired);
                assert_eq!(denial.code().as_str(), "session_required");
            }
        }
        assert!(Denial::SessionRequired.to_string().contains("signed-in session"));
    }

    // --- approval_state ---

    #[test]
    fn no_approval_needed() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::Approved);
        let policy = EnvironmentPolicy::permissive_default();
        assert_eq!(approval_state(&policy, &run, &[]), ApprovalState::NotRequired);
        // Even a deny is irrelevant when the environment needs no approval.
        let decisions = [deny(&actor(Role::Admin), &run)];
        assert_eq!(approval_state(&policy, &run, &decisions), ApprovalState::NotRequired);
    }

    #[test]
    fn approvals_are_counted_up_to_the_requirement() {
        let requester = actor(Role::User);
        let (a, b) = (actor(Role::Manager), actor(Role::Admin));
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let policy = needing(2);
        assert_eq!(approval_state(&policy, &run, &[]), ApprovalState::Pending { have: 0, need: 2 });
        assert_eq!(approval_state(&policy, &run, &[approve(&a, &run)]), ApprovalState::Pending { have: 1, need: 2 });
        assert_eq!(approval_state(&policy, &run, &[approve(&a, &run), approve(&b, &run)]), ApprovalState::Approved);
        // More than needed is still approved.
        let c = actor(Role::Manager);
        assert_eq!(
            approval_state(&needing(1), &run, &[approve(&a, &run), approve(&b, &run), approve(&c, &run)]),
            ApprovalState::Approved
        );
    }

    #[test]
    fn the_same_approver_counts_once() {
        let requester = actor(Role::User);
        let a = actor(Role::Manager);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let decisions = [approve(&a, &run), approve(&a, &run)];
        assert_eq!(approval_state(&needing(2), &run, &decisions), ApprovalState::Pending { have: 1, need: 2 });
    }

    #[test]
    fn an_approval_pinned_to_other_content_does_not_count() {
        // Within one revision the use cases only record the run's content; stored data is not trusted.
        let requester = actor(Role::User);
        let a = actor(Role::Manager);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        assert_eq!(approval_state(&needing(1), &run, &[approve(&a, &run)]), ApprovalState::Approved);
        for other in [
            content("SELECT 2;"),
            // A change to the down script alone is other content too…
            release("SELECT 1;", Some("DROP TABLE t;")),
            // …and so is dropping it.
            release("SELECT 1;", None),
        ] {
            assert_ne!(other, run.content);
            let stale = ApprovalFacts { pinned: other, ..approve(&a, &run) };
            assert_eq!(approval_state(&needing(1), &run, &[stale]), ApprovalState::Pending { have: 0, need: 1 });
        }
    }

    #[test]
    fn an_approval_of_an_earlier_revision_does_not_count() {
        let requester = actor(Role::User);
        let (a, b) = (actor(Role::Manager), actor(Role::Admin));
        let first = run_by(&requester, RunStatus::AwaitingApproval);
        let old = [approve(&a, &first), approve(&b, &first)];
        assert_eq!(approval_state(&needing(2), &first, &old), ApprovalState::Approved);
        let second = refreshed(first, 1, content("SELECT 2;"));
        assert_eq!(approval_state(&needing(2), &second, &old), ApprovalState::Pending { have: 0, need: 2 });
        // Not even when the refresh pinned the very same content: the revision is what was approved.
        let same = refreshed(first, 1, first.content);
        assert_eq!(approval_state(&needing(2), &same, &old), ApprovalState::Pending { have: 0, need: 2 });
        // Nor a decision claiming a later revision than the run's.
        let future = ApprovalFacts { revision: 2, ..approve(&a, &first) };
        assert_eq!(approval_state(&needing(1), &first, &[future]), ApprovalState::Pending { have: 0, need: 1 });
        // Approvals of the current revision count, next to the old ones.
        let mixed = [old[0], old[1], approve(&a, &second)];
        assert_eq!(approval_state(&needing(2), &second, &mixed), ApprovalState::Pending { have: 1, need: 2 });
        let mixed = [old[0], old[1], approve(&a, &second), approve(&b, &second)];
        assert_eq!(approval_state(&needing(2), &second, &mixed), ApprovalState::Approved);
    }

    #[test]
    fn a_down_approval_does_not_count_for_an_up_run() {
        let requester = actor(Role::User);
        let a = actor(Role::Manager);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let down = ApprovalFacts { direction: Direction::Down, ..approve(&a, &run) };
        assert_eq!(approval_state(&needing(1), &run, &[down]), ApprovalState::Pending { have: 0, need: 1 });
        // And the other way round.
        let down_run = RunFacts { direction: Direction::Down, ..run };
        assert_eq!(approval_state(&needing(1), &down_run, &[down]), ApprovalState::Approved);
        assert_eq!(
            approval_state(&needing(1), &down_run, &[approve(&a, &run)]),
            ApprovalState::Pending { have: 0, need: 1 }
        );
    }

    #[test]
    fn the_requesters_own_approval_never_counts() {
        // may_approve refuses it, but stored data is not trusted to have gone through it.
        let requester = actor(Role::Admin);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        assert_eq!(
            approval_state(&needing(1), &run, &[approve(&requester, &run)]),
            ApprovalState::Pending { have: 0, need: 1 }
        );
    }

    #[test]
    fn deny_beats_approvals() {
        let requester = actor(Role::User);
        let (a, b, c) = (actor(Role::Manager), actor(Role::Admin), actor(Role::Manager));
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let decisions = [approve(&a, &run), deny(&c, &run), approve(&b, &run)];
        assert_eq!(approval_state(&needing(2), &run, &decisions), ApprovalState::Denied);
        // Even a deny of the current revision that names other content.
        let odd = ApprovalFacts { pinned: content("SELECT 0;"), ..deny(&c, &run) };
        let decisions = [approve(&a, &run), odd];
        assert_eq!(approval_state(&needing(1), &run, &decisions), ApprovalState::Denied);
    }

    #[test]
    fn a_deny_of_an_earlier_revision_does_not_deny() {
        let requester = actor(Role::User);
        let (a, c) = (actor(Role::Manager), actor(Role::Admin));
        let first = run_by(&requester, RunStatus::AwaitingApproval);
        let second = refreshed(first, 1, content("SELECT 2;"));
        let decisions = [deny(&c, &first), approve(&a, &second)];
        assert_eq!(approval_state(&needing(1), &second, &decisions), ApprovalState::Approved);
        assert_eq!(approval_state(&needing(1), &first, &decisions), ApprovalState::Denied);
    }

    #[test]
    fn a_deny_for_the_other_direction_does_not_deny() {
        let requester = actor(Role::User);
        let (a, c) = (actor(Role::Manager), actor(Role::Admin));
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        let down_deny = ApprovalFacts { direction: Direction::Down, ..deny(&c, &run) };
        assert_eq!(approval_state(&needing(1), &run, &[approve(&a, &run), down_deny]), ApprovalState::Approved);
    }

    // --- may_apply ---

    #[test]
    fn applying_the_pinned_approved_content() {
        let requester = actor(Role::User);
        let a = actor(Role::Manager);
        let policy = needing(1);
        // The worker asks while the run is running; the rule does not look at the status or the actor.
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            assert_eq!(may_apply(&policy, &run, &[approve(&a, &run)], &run.content), Ok(()), "{status}");
        }
        let run = run_by(&requester, RunStatus::Running);
        assert_eq!(may_apply(&EnvironmentPolicy::permissive_default(), &run, &[], &run.content), Ok(()));
    }

    #[test]
    fn applying_other_content_is_a_checksum_mismatch() {
        let requester = actor(Role::User);
        let (a, b) = (actor(Role::Manager), actor(Role::Admin));
        let run = run_by(&requester, RunStatus::Running);
        let approvals = [approve(&a, &run), approve(&b, &run)];
        let edited = content("SELECT 2;");
        let denial = may_apply(&needing(2), &run, &approvals, &edited).unwrap_err();
        assert_eq!(denial, Denial::ChecksumMismatch);
        assert_eq!(denial.code().as_str(), "checksum_mismatch");
        assert_eq!(
            denial.to_string(),
            "the migrations changed after this run was requested, so its approval was given for different \
             content; refresh the run to the newest versions and have it approved again"
        );
        // An edit of the down script alone, or the stored SQL changing behind the hub's back, is a mismatch.
        for actual in [release("SELECT 1;", Some("-- changed")), release("SELECT 1;", None)] {
            assert_eq!(may_apply(&needing(2), &run, &approvals, &actual), Err(Denial::ChecksumMismatch));
        }
        // Even where no approval is needed: the run must apply what was requested.
        let policy = EnvironmentPolicy::permissive_default();
        assert_eq!(may_apply(&policy, &run, &[], &edited), Err(Denial::ChecksumMismatch));
        // Even when approvers approved the edited content: they did so for another run's content.
        let of_edited =
            [ApprovalFacts { pinned: edited, ..approvals[0] }, ApprovalFacts { pinned: edited, ..approvals[1] }];
        assert_eq!(may_apply(&needing(2), &run, &of_edited, &edited), Err(Denial::ChecksumMismatch));
    }

    #[test]
    fn a_mismatch_is_reported_before_the_approval_state() {
        let requester = actor(Role::User);
        let (a, c) = (actor(Role::Manager), actor(Role::Admin));
        let run = run_by(&requester, RunStatus::Running);
        let edited = content("SELECT 2;");
        assert_eq!(may_apply(&needing(1), &run, &[], &edited), Err(Denial::ChecksumMismatch));
        assert_eq!(may_apply(&needing(1), &run, &[deny(&c, &run)], &edited), Err(Denial::ChecksumMismatch));
        // With the pinned content, the approval state decides.
        assert_eq!(may_apply(&needing(1), &run, &[], &run.content), Err(Denial::NotApproved { have: 0, need: 1 }));
        assert_eq!(
            may_apply(&needing(1), &run, &[approve(&a, &run), deny(&c, &run)], &run.content),
            Err(Denial::Denied)
        );
    }

    #[test]
    fn applying_after_a_refresh_needs_the_new_revisions_approvals() {
        let requester = actor(Role::User);
        let (a, b) = (actor(Role::Manager), actor(Role::Admin));
        let first = run_by(&requester, RunStatus::Approved);
        let old = [approve(&a, &first)];
        let second = refreshed(first, 1, content("SELECT 2;"));
        // The old content is no longer what the run pins.
        assert_eq!(may_apply(&needing(1), &second, &old, &first.content), Err(Denial::ChecksumMismatch));
        // The new content is, but nobody approved revision 2 yet.
        assert_eq!(
            may_apply(&needing(1), &second, &old, &second.content),
            Err(Denial::NotApproved { have: 0, need: 1 })
        );
        let now = [old[0], approve(&b, &second)];
        assert_eq!(may_apply(&needing(1), &second, &now, &second.content), Ok(()));
        // An approver of revision 1 may approve revision 2 as well, and counts once.
        let now = [old[0], approve(&a, &second)];
        assert_eq!(may_apply(&needing(1), &second, &now, &second.content), Ok(()));
        assert_eq!(
            may_apply(&needing(2), &second, &now, &second.content),
            Err(Denial::NotApproved { have: 1, need: 2 })
        );
    }

    // --- may_execute ---

    #[test]
    fn executing_an_approved_run() {
        let requester = actor(Role::User);
        let (approver, executor) = (actor(Role::Admin), actor(Role::Manager));
        let run = run_by(&requester, RunStatus::Approved);
        let policy = EnvironmentPolicy::production_default();
        assert_eq!(may_execute(&executor, &run, &policy, &[approve(&approver, &run)], &run.content), Ok(()));
    }

    #[test]
    fn executing_without_approval_needed() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::Approved);
        let policy = EnvironmentPolicy::permissive_default();
        assert_eq!(may_execute(&requester, &run, &policy, &[], &run.content), Ok(()));
    }

    #[test]
    fn execution_needs_an_allowed_role() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::Approved);
        let decisions = [approve(&actor(Role::Admin), &run)];
        let policy = EnvironmentPolicy::production_default();
        let denial = may_execute(&requester, &run, &policy, &decisions, &run.content).unwrap_err();
        assert_eq!(denial, Denial::RoleCannotExecute { role: Role::User });
        assert_eq!(denial.code().as_str(), "role_cannot_execute");
        assert_eq!(denial.to_string(), "the user role may not execute runs in this environment");
        // Roles are a set, not a threshold: an admin is refused where only managers execute.
        let managers_only = EnvironmentPolicy { execute_roles: RoleSet::from_roles(&[Role::Manager]), ..policy };
        assert_eq!(
            may_execute(&actor(Role::Admin), &run, &managers_only, &decisions, &run.content),
            Err(Denial::RoleCannotExecute { role: Role::Admin })
        );
        // The role is checked first, before the status and the content.
        let stale = content("SELECT 2;");
        assert_eq!(
            may_execute(&requester, &run_by(&requester, RunStatus::Queued), &policy, &[], &stale),
            Err(Denial::RoleCannotExecute { role: Role::User })
        );
    }

    #[test]
    fn execution_needs_status_approved() {
        let requester = actor(Role::User);
        let executor = actor(Role::Admin);
        let policy = EnvironmentPolicy::production_default();
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            let decisions = [approve(&actor(Role::Manager), &run)];
            let result = may_execute(&executor, &run, &policy, &decisions, &run.content);
            if status == RunStatus::Approved {
                assert_eq!(result, Ok(()));
            } else {
                assert_eq!(result, Err(Denial::WrongStatus { action: "execute", status }), "{status}");
                // The status is checked before the content.
                assert_eq!(
                    may_execute(&executor, &run, &policy, &decisions, &content("SELECT 2;")),
                    Err(Denial::WrongStatus { action: "execute", status }),
                    "{status}"
                );
            }
        }
    }

    #[test]
    fn executing_a_stale_run_is_a_checksum_mismatch() {
        // The migrations were edited after approval: the newest content is not what the run pins.
        let requester = actor(Role::User);
        let executor = actor(Role::Admin);
        let run = run_by(&requester, RunStatus::Approved);
        let decisions = [approve(&actor(Role::Manager), &run)];
        let policy = EnvironmentPolicy::production_default();
        let newest = content("SELECT 2;");
        let denial = may_execute(&executor, &run, &policy, &decisions, &newest).unwrap_err();
        assert_eq!(denial, Denial::ChecksumMismatch);
        assert_eq!(denial.code().as_str(), "checksum_mismatch");
        assert!(denial.to_string().starts_with("the migrations changed after this run was requested"), "{denial}");
        // Where no approval is needed too.
        let permissive = EnvironmentPolicy::permissive_default();
        assert_eq!(may_execute(&requester, &run, &permissive, &[], &newest), Err(Denial::ChecksumMismatch));
        // Once refreshed onto the newest content and approved again, it may run.
        let run = refreshed(RunFacts { status: RunStatus::AwaitingApproval, ..run }, 1, newest);
        let approved = RunFacts { status: RunStatus::Approved, ..run };
        assert_eq!(
            may_execute(&executor, &approved, &policy, &decisions, &newest),
            Err(Denial::NotApproved { have: 0, need: 1 })
        );
        let decisions = [decisions[0], approve(&actor(Role::Manager), &run)];
        assert_eq!(may_execute(&executor, &approved, &policy, &decisions, &newest), Ok(()));
    }

    #[test]
    fn an_approval_for_other_content_is_not_an_approval() {
        let requester = actor(Role::User);
        let executor = actor(Role::Admin);
        let (a, b) = (actor(Role::Manager), actor(Role::Admin));
        let run = run_by(&requester, RunStatus::Approved);
        let odd = ApprovalFacts { pinned: content("SELECT 0;"), ..approve(&b, &run) };
        let decisions = [approve(&a, &run), odd];
        assert_eq!(
            may_execute(&executor, &run, &needing(2), &decisions, &run.content),
            Err(Denial::NotApproved { have: 1, need: 2 })
        );
        assert_eq!(may_execute(&executor, &run, &needing(1), &decisions, &run.content), Ok(()));
    }

    #[test]
    fn execution_without_enough_approvals() {
        let requester = actor(Role::User);
        let executor = actor(Role::Admin);
        let a = actor(Role::Manager);
        let run = run_by(&requester, RunStatus::Approved);
        let denial = may_execute(&executor, &run, &needing(2), &[approve(&a, &run)], &run.content).unwrap_err();
        assert_eq!(denial, Denial::NotApproved { have: 1, need: 2 });
        assert_eq!(denial.code().as_str(), "not_approved");
        assert_eq!(denial.to_string(), "the run has 1 of the 2 approvals it needs");
        // Approvals for the other direction are not stale content: it is simply not approved.
        let down = ApprovalFacts { direction: Direction::Down, ..approve(&a, &run) };
        assert_eq!(
            may_execute(&executor, &run, &needing(1), &[down], &run.content),
            Err(Denial::NotApproved { have: 0, need: 1 })
        );
        // Nor is the requester's own approval.
        assert_eq!(
            may_execute(&executor, &run, &needing(1), &[approve(&requester, &run)], &run.content),
            Err(Denial::NotApproved { have: 0, need: 1 })
        );
        // A tightened policy applies to a run already approved under the old one.
        assert_eq!(
            may_execute(&executor, &run, &needing(3), &[approve(&a, &run), approve(&executor, &run)], &run.content),
            Err(Denial::NotApproved { have: 2, need: 3 })
        );
    }

    #[test]
    fn execution_of_a_denied_run() {
        let requester = actor(Role::User);
        let executor = actor(Role::Admin);
        let (a, b) = (actor(Role::Manager), actor(Role::Manager));
        let run = run_by(&requester, RunStatus::Approved);
        let decisions = [approve(&a, &run), deny(&b, &run)];
        let denial = may_execute(&executor, &run, &needing(1), &decisions, &run.content).unwrap_err();
        assert_eq!(denial, Denial::Denied);
        assert_eq!(denial.code().as_str(), "denied");
        assert_eq!(denial.to_string(), "the run was denied");
        // A deny is reported even when the approvals do not count either.
        let odd = ApprovalFacts { pinned: content("SELECT 0;"), ..approve(&a, &run) };
        let decisions = [odd, deny(&b, &run)];
        assert_eq!(may_execute(&executor, &run, &needing(1), &decisions, &run.content), Err(Denial::Denied));
    }

    // --- may_refresh ---

    #[test]
    fn who_may_refresh() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::AwaitingApproval);
        assert_eq!(may_refresh(&requester, &run), Ok(()));
        assert_eq!(may_refresh(&actor(Role::Manager), &run), Ok(()));
        assert_eq!(may_refresh(&actor(Role::Admin), &run), Ok(()));
        let denial = may_refresh(&actor(Role::User), &run).unwrap_err();
        assert_eq!(denial, Denial::RoleTooLow { needed: "manager" });
        // The role is checked before the status.
        let done = run_by(&requester, RunStatus::Succeeded);
        assert_eq!(may_refresh(&actor(Role::User), &done), Err(Denial::RoleTooLow { needed: "manager" }));
    }

    #[test]
    fn refreshing_needs_a_run_that_has_not_started() {
        let requester = actor(Role::User);
        let manager = actor(Role::Manager);
        let refreshable = [RunStatus::AwaitingApproval, RunStatus::Approved];
        for &status in RunStatus::ALL {
            // Any revision may be refreshed again.
            for revision in [1, 2, 7] {
                let run = RunFacts { revision, ..run_by(&requester, status) };
                for who in [&requester, &manager] {
                    let result = may_refresh(who, &run);
                    if refreshable.contains(&status) {
                        assert_eq!(result, Ok(()), "{status}");
                    } else {
                        assert_eq!(result, Err(Denial::WrongStatus { action: "refresh", status }), "{status}");
                    }
                }
            }
        }
        let denial = may_refresh(&requester, &run_by(&requester, RunStatus::Queued)).unwrap_err();
        assert_eq!(denial.code().as_str(), "wrong_status");
        assert_eq!(denial.to_string(), r#"cannot refresh this run: its status is "queued""#);
    }

    // --- may_retry ---

    #[test]
    fn who_may_retry() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::Failed);
        assert_eq!(may_retry(&requester, &run), Ok(()));
        assert_eq!(may_retry(&actor(Role::Manager), &run), Ok(()));
        assert_eq!(may_retry(&actor(Role::Admin), &run), Ok(()));
        assert_eq!(may_retry(&actor(Role::User), &run), Err(Denial::RoleTooLow { needed: "manager" }));
        // The role is checked before the status.
        let running = run_by(&requester, RunStatus::Running);
        assert_eq!(may_retry(&actor(Role::User), &running), Err(Denial::RoleTooLow { needed: "manager" }));
    }

    #[test]
    fn retrying_needs_a_failed_or_cancelled_run() {
        let requester = actor(Role::User);
        let manager = actor(Role::Manager);
        let retryable = [RunStatus::Failed, RunStatus::Cancelled];
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            for who in [&requester, &manager] {
                let result = may_retry(who, &run);
                if retryable.contains(&status) {
                    assert_eq!(result, Ok(()), "{status}");
                } else {
                    assert_eq!(result, Err(Denial::WrongStatus { action: "retry", status }), "{status}");
                }
            }
            // The rule agrees with the state machine: only a final run that did not succeed is retried.
            assert_eq!(
                retryable.contains(&status),
                status.is_terminal() && status != RunStatus::Succeeded && status != RunStatus::Denied,
                "{status}"
            );
        }
        let denial = may_retry(&requester, &run_by(&requester, RunStatus::Succeeded)).unwrap_err();
        assert_eq!(denial.to_string(), r#"cannot retry this run: its status is "succeeded""#);
    }

    // --- may_continue ---

    #[test]
    fn continuing_needs_a_role_the_environment_lets_execute_and_a_halt_or_a_waiting_wave() {
        let requester = actor(Role::User);
        let mut policy = EnvironmentPolicy::production_default();
        policy.execute_roles = RoleSet::empty().with(Role::Manager).with(Role::Admin);
        let halted = run_by(&requester, RunStatus::Halted);
        let running = run_by(&requester, RunStatus::Running);
        let manager = actor(Role::Manager);
        assert_eq!(may_continue(&manager, &halted, &policy, false), Ok(()));
        assert_eq!(may_continue(&manager, &running, &policy, true), Ok(()));
        assert_eq!(
            may_continue(&manager, &running, &policy, false),
            Err(Denial::WrongStatus { action: "continue", status: RunStatus::Running })
        );
        assert_eq!(
            may_continue(&requester, &halted, &policy, false),
            Err(Denial::RoleCannotExecute { role: Role::User })
        );
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            let allowed = may_continue(&manager, &run, &policy, true).is_ok();
            assert_eq!(allowed, matches!(status, RunStatus::Halted | RunStatus::Running), "{status}");
        }
    }

    // --- may_cancel ---

    #[test]
    fn who_may_cancel() {
        let requester = actor(Role::User);
        let run = run_by(&requester, RunStatus::Queued);
        assert_eq!(may_cancel(&requester, &run), Ok(()));
        assert_eq!(may_cancel(&actor(Role::Manager), &run), Ok(()));
        assert_eq!(may_cancel(&actor(Role::Admin), &run), Ok(()));
        assert_eq!(may_cancel(&actor(Role::User), &run), Err(Denial::RoleTooLow { needed: "manager" }));
    }

    #[test]
    fn cancelling_needs_an_unfinished_run() {
        let requester = actor(Role::User);
        let cancellable = [
            RunStatus::AwaitingApproval,
            RunStatus::Approved,
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Halted,
        ];
        for &status in RunStatus::ALL {
            let run = run_by(&requester, status);
            let result = may_cancel(&requester, &run);
            if cancellable.contains(&status) {
                assert_eq!(result, Ok(()), "{status}");
            } else {
                assert_eq!(result, Err(Denial::WrongStatus { action: "cancel", status }), "{status}");
            }
            // The rule agrees with the state machine.
            assert_eq!(result.is_ok(), status.can_transition_to(RunStatus::Cancelled));
        }
    }

    // --- Denial ---

    #[test]
    fn denial_codes_are_distinct() {
        let all = [
            Denial::RoleTooLow { needed: "manager" },
            Denial::SelfApproval,
            Denial::AlreadyDecided,
            Denial::WrongStatus { action: "approve", status: RunStatus::Denied },
            Denial::NotApproved { have: 0, need: 1 },
            Denial::ChecksumMismatch,
            Denial::Denied,
            Denial::RoleCannotExecute { role: Role::User },
            Denial::NotAdmin,
            Denial::AuthorApproval,
            Denial::SessionRequired,
        ];
        let mut codes: Vec<&str> = all.iter().map(|d| d.code().as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(Denial::NotAdmin.to_string(), "this action requires the admin role");
        assert_eq!(Denial::NotAdmin.code().as_str(), "not_admin");
    }

    #[test]
    fn pinned_checksums_serde() {
        let pinned = PinnedChecksums { up: Checksum::of(""), down: None };
        let json = to_json(&pinned);
        assert!(json.starts_with(r#"{"up":{"algorithm":"sha256-lf-nobom","hex":"e3b0"#), "{json}");
        assert!(json.ends_with(r#","down":null}"#), "{json}");
        // Strings are not role sets.
        assert!(from_str::<RoleSet>("admin").is_err());
    }
}
