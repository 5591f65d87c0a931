//! The stable codes of the API's error answers (`{"error": {"code", …}}`): one closed list.
//!
//! Clients and bug reports key on these strings, so they never change once published; a new refusal gets
//! a new variant here, listed with its meaning in the README's "Error codes" section (a test fails when one
//! is missing there). They live in `domain` because refusals are decided at every layer: the rules here
//! ([`crate::policy::Denial`], [`crate::release::Problem`]), the use cases in `app` and the HTTP edge, and
//! each of them names its refusal with a variant of this one enum.

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)+) => {
        /// A stable code of an error answer; [`ErrorCode::as_str`] is what the API sends.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order declared.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as the API sends it, e.g. `checksum_mismatch`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)+
                }
            }
        }
    };
}

error_codes! {
    // --- the request itself (400) ---
    /// The body is not valid JSON for this operation, or has a field it does not know.
    InvalidJson = "invalid_json",
    /// A form body does not parse.
    InvalidForm = "invalid_form",
    /// A query parameter does not parse.
    InvalidQuery = "invalid_query",
    /// A path segment (e.g. an id) does not parse.
    InvalidPath = "invalid_path",
    /// The body is not sent as `application/json`.
    UnsupportedContentType = "unsupported_content_type",
    /// A form read for its CSRF token is over the size limit.
    BodyTooLarge = "body_too_large",
    /// `after` is not a cursor that this list gave out.
    InvalidCursor = "invalid_cursor",
    /// `after` is not a valid value to list from.
    InvalidAfter = "invalid_after",
    /// Logout was asked for with an API token, which has no session.
    NoSession = "no_session",

    // --- who is asking (401, 403) ---
    /// No valid credentials: not signed in, or a bad, expired or revoked token.
    Unauthenticated = "unauthenticated",
    /// The caller's role is below what the action needs.
    RoleTooLow = "role_too_low",
    /// Only admins may do this.
    NotAdmin = "not_admin",
    /// The requester of a run may not approve or deny it.
    SelfApproval = "self_approval",
    /// An author of a version a run pins may not approve or deny it.
    AuthorApproval = "author_approval",
    /// The environment does not let this role execute runs.
    RoleCannotExecute = "role_cannot_execute",
    /// API tokens are created only from a signed-in session, not with another token.
    SessionRequired = "session_required",
    /// A read-scoped API token tried to change something.
    ReadOnlyToken = "read_only_token",
    /// A state-changing browser request did not come from the hub's own pages (`Origin`/`Referer`).
    BadOrigin = "bad_origin",
    /// A state-changing browser request lacks the session's CSRF token, or has a wrong one.
    Csrf = "csrf",

    // --- what is asked for (404, 409) ---
    /// No such object, route or page (or one the caller may not know exists).
    NotFound = "not_found",
    /// This approver already approved or denied this run.
    AlreadyDecided = "already_decided",
    /// The run's status does not allow this action (e.g. approving a running run).
    WrongStatus = "wrong_status",
    /// The run does not have all the approvals its environment requires.
    NotApproved = "not_approved",
    /// A reviewer denied the run.
    Denied = "denied",
    /// The run's migrations changed after it was requested: refresh it and have it approved again.
    ChecksumMismatch = "checksum_mismatch",
    /// The content named by the caller (`content_checksum` or `version`) is not what the run pins.
    ContentChanged = "content_changed",
    /// The stored SQL of a version no longer matches its checksums; the run is not executed.
    StoredSqlMismatch = "stored_sql_mismatch",
    /// The run already pins the newest versions: there is nothing to refresh.
    NotStale = "not_stale",
    /// Every target of the run finished: there is nothing to retry.
    NothingToRetry = "nothing_to_retry",
    /// Refresh and retry are for releases; a baseline, adoption or recovery is requested anew.
    NotARelease = "not_a_release",
    /// The target's history could not be read at request (connection, secret or query); nothing was made.
    TargetUnreadable = "target_unreadable",
    /// The version's history row on the target is not dirty, or there is none: nothing to recover.
    NotDirty = "not_dirty",
    /// The target's history row is no longer the one the caller saw.
    RowChanged = "row_changed",
    /// The other tool's history cannot be adopted: dirty, versions the project lacks, checksums that differ,
    /// or nothing applied.
    AdoptRefused = "adopt_refused",
    /// The version named is not the newest of its migration.
    VersionSuperseded = "version_superseded",
    /// The run changed status meanwhile; reload it and try again.
    StatusChanged = "status_changed",
    /// The same `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// An environment, target, db set or project with this name exists.
    NameTaken = "name_taken",
    /// This project has a migration with this version key.
    VersionKeyTaken = "version_key_taken",
    /// A user with this email exists.
    EmailTaken = "email_taken",
    /// The object is still used (an environment with targets or db sets, a target that is part of runs).
    InUse = "in_use",
    /// A target or db set belongs to another environment than the one it is used with.
    WrongEnvironment = "wrong_environment",
    /// The last enabled admin cannot be demoted or disabled.
    LastAdmin = "last_admin",
    /// Tokens cannot be created for a disabled user.
    UserDisabled = "user_disabled",
    /// The hub has no master keys to seal a password with; use a secret reference.
    NoMasterKeys = "no_master_keys",

    // --- values (422) ---
    /// A value is not valid for its field; the message says why.
    InvalidValue = "invalid_value",
    /// A resume was asked for where it cannot work: a Postgres migration in a transaction, a stopped down.
    CannotResume = "cannot_resume",
    /// A text contains NUL characters.
    InvalidText = "invalid_text",
    /// The email address is not valid.
    InvalidEmail = "invalid_email",
    /// The display name is not valid.
    InvalidDisplayName = "invalid_display_name",
    /// The token name must be 1 to 100 characters.
    InvalidName = "invalid_name",
    /// The token lifetime is out of range.
    InvalidExpiry = "invalid_expiry",
    /// The `Idempotency-Key` is not 1 to 200 printable ASCII characters.
    InvalidIdempotencyKey = "invalid_idempotency_key",
    /// A text is longer than its limit.
    TooLong = "too_long",
    /// More items than one request may carry (files of an import, targets of a membership change).
    TooMany = "too_many",
    /// A number is out of its range (e.g. `concurrency_limit`).
    OutOfRange = "out_of_range",
    /// A required field is missing.
    Missing = "missing",
    /// A change with nothing to change.
    EmptyPatch = "empty_patch",
    /// A script has no statements, or an import has no files.
    Empty = "empty",
    /// Fields that do not go together were given.
    ConflictingFields = "conflicting_fields",
    /// Both a password and a secret reference were given.
    TwoSecrets = "two_secrets",
    /// A secret reference outside the allowlist (`MIGRATE_HUB_SECRET_REFS`), or naming the hub's own settings.
    SecretRefNotAllowed = "secret_ref_not_allowed",
    /// The target is the hub's own tool database.
    ToolDatabase = "tool_database",
    /// A target named in a membership change does not exist in the db set's environment.
    UnknownTarget = "unknown_target",
    /// No such project.
    UnknownProject = "unknown_project",
    /// No such environment.
    UnknownEnvironment = "unknown_environment",
    /// No such db set.
    UnknownDbSet = "unknown_db_set",
    /// The db set has no targets.
    EmptyDbSet = "empty_db_set",
    /// A run's wave plan cannot be used (too few or many waves, a reach that shrinks, a last wave short of
    /// every target, a label that is not `key=value`).
    InvalidWaves = "invalid_waves",
    /// A maintenance window cannot be read (`DAYS HH:MM-HH:MM ZONE`) or names an unknown time zone.
    InvalidWindow = "invalid_window",
    /// There is no checked schema to accept as a target's baseline.
    NothingToAccept = "nothing_to_accept",
    /// A webhook URL is refused: not http(s), with credentials, the hub's own address or a link-local one.
    RefusedUrl = "refused_url",
    /// No such version key in the project.
    UnknownVersion = "unknown_version",
    /// The release would select no migration.
    NothingToApply = "nothing_to_apply",
    /// A run was asked to name one version, but it is a release of several migrations.
    NotSingle = "not_single",
    /// The migration layout of an import is unknown.
    UnknownLayout = "unknown_layout",
    /// The files of an import cannot be read as migrations.
    Unreadable = "unreadable",
    /// A script does not split into statements.
    Unsplittable = "unsplittable",
    /// A statement cannot run inside a transaction; the migration needs transaction mode `none`.
    NeedsNoTransaction = "needs_no_transaction",
    /// A down release includes a migration without a down script.
    NoDown = "no_down",
    /// A migration uses a placeholder variable a target of the set lacks.
    MissingVariable = "missing_variable",
    /// A target's value of a placeholder variable cannot be substituted.
    InvalidVariable = "invalid_variable",
    /// A migration cannot be split into statements for a target's engine.
    SplitError = "split_error",
    /// The SQL review found an error in the release (a statement that does not parse), and the environment's
    /// policy refuses it.
    LintError = "lint_error",
    /// The SQL review found a warning in the release, and the environment's policy (`lint_block: warning`)
    /// refuses it.
    LintWarning = "lint_warning",
    /// A name that is not a rule of the SQL review (or one that cannot be switched off).
    UnknownRule = "unknown_rule",
    /// The release goes to targets of an engine the project does not declare among its dialects.
    DialectNotDeclared = "dialect_not_declared",
    /// The number of approvals is out of range (1 to 10 when approval is required).
    ApprovalsOutOfRange = "approvals_out_of_range",
    /// Approvals were asked for where approval is not required.
    ApprovalsWithoutApproval = "approvals_without_approval",
    /// No role would be allowed to execute runs.
    NoExecuteRoles = "no_execute_roles",
    /// A timeout is below its minimum.
    TimeoutTooShort = "timeout_too_short",
    /// A timeout is above its maximum.
    TimeoutTooLong = "timeout_too_long",

    // --- limits and the hub (413, 429, 5xx) ---
    /// The body, or a text in it, is over its size limit.
    TooLarge = "too_large",
    /// Too many attempts (login); try again in a minute.
    TooManyRequests = "too_many_requests",
    /// The caller already has an import running.
    ImportInProgress = "import_in_progress",
    /// The hub is running as many imports as it allows; try again in a few seconds.
    ImportsBusy = "imports_busy",
    /// The tool database or another dependency is unavailable; try again later.
    Unavailable = "unavailable",
    /// An internal error; quote the request id when reporting it.
    Internal = "internal",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ErrorCode;

    /// The API's documentation, where every code is listed with its meaning.
    const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

    /// The README's "Error codes" section: from its heading to the next heading of the same or a higher level.
    fn documented() -> &'static str {
        let start = README.find("### Error codes").unwrap_or_default();
        let rest = &README[start..];
        let end = rest[1..].find("\n#").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let names: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "two variants share a code");
        for name in names {
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not snake_case"
            );
        }
    }

    #[test]
    fn every_code_is_documented_and_nothing_else() {
        let section = documented();
        assert!(section.starts_with("### Error codes"), "the README has no \"### Error codes\" section");
        let missing: Vec<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).filter(|c| !section.contains(&format!("`{c}`"))).collect();
        assert!(missing.is_empty(), "README.md \"Error codes\" does not list {missing:?}");
        // Every line of the list starts with a code in backticks; each must be one the API can send.
        let listed: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("- `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code))
            .collect();
        let unknown: Vec<&&str> = listed.iter().filter(|l| !ErrorCode::ALL.iter().any(|c| c.as_str() == **l)).collect();
        assert!(unknown.is_empty(), "README.md \"Error codes\" lists codes the API never sends: {unknown:?}");
        assert_eq!(listed.len(), ErrorCode::ALL.len(), "every code is listed once");
    }

    #[test]
    fn the_codes_clients_rely_on_are_unchanged() {
        for (code, text) in [
            (ErrorCode::AuthorApproval, "author_approval"),
            (ErrorCode::SessionRequired, "session_required"),
            (ErrorCode::SecretRefNotAllowed, "secret_ref_not_allowed"),
            (ErrorCode::ImportInProgress, "import_in_progress"),
            (ErrorCode::ImportsBusy, "imports_busy"),
            (ErrorCode::ChecksumMismatch, "checksum_mismatch"),
        ] {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
        }
    }
}
