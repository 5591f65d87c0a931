//! What a use case can answer besides success, in terms the edge maps to a status without guessing.

use domain::ErrorCode;
use domain::policy::{Denial, PolicyError};
use domain::values::ValueError;
use storage::StorageError;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A value in the request is invalid (422); `field` names it when there is one.
    #[error("{message}")]
    Invalid { field: Option<&'static str>, code: ErrorCode, message: String },
    /// No such thing (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// A rule of `domain::policy` refuses it (403 when it is about who the caller is, 409 when about the
    /// state of the thing).
    #[error("{0}")]
    Denied(Denial),
    /// Too much of this is running already (429); `code` says what, the message when to try again.
    #[error("{message}")]
    Busy { code: ErrorCode, message: String },
    /// A text is over its size limit (413).
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    /// Something below failed: logged with its cause at the edge, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub(crate) fn invalid(field: &'static str, code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Invalid { field: Some(field), code, message: message.into() }
    }

    pub(crate) fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Conflict { code, message: message.into() }
    }

    /// A stable code for clients.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Invalid { code, .. } | AppError::Conflict { code, .. } | AppError::Busy { code, .. } => *code,
            AppError::NotFound { .. } => ErrorCode::NotFound,
            AppError::Denied(denial) => denial.code(),
            AppError::TooLarge { .. } => ErrorCode::TooLarge,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether a denial is about the caller (their role, their own run) rather than the object's state.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            AppError::Denied(
                Denial::RoleTooLow { .. }
                    | Denial::SelfApproval
                    | Denial::AuthorApproval
                    | Denial::RoleCannotExecute { .. }
                    | Denial::NotAdmin
                    | Denial::SessionRequired
            )
        )
    }

    /// A value that failed to parse, attributed to `field`.
    pub(crate) fn value(field: &'static str) -> impl FnOnce(ValueError) -> AppError {
        move |e| AppError::invalid(field, ErrorCode::InvalidValue, e.to_string())
    }

    pub(crate) fn policy(e: PolicyError) -> AppError {
        AppError::Invalid { field: None, code: e.code(), message: e.to_string() }
    }
}

impl From<Denial> for AppError {
    fn from(denial: Denial) -> Self {
        AppError::Denied(denial)
    }
}

/// Unique and foreign-key constraints that users can run into, with what to tell them.
const CONSTRAINTS: &[(&str, ErrorCode, &str)] = &[
    ("environments_name_key", ErrorCode::NameTaken, "an environment with this name exists"),
    ("db_targets_env_name_key", ErrorCode::NameTaken, "a target with this name exists in this environment"),
    ("db_sets_env_name_key", ErrorCode::NameTaken, "a db set with this name exists in this environment"),
    ("projects_name_key", ErrorCode::NameTaken, "a project with this name exists"),
    (
        "migrations_project_version_key",
        ErrorCode::VersionKeyTaken,
        "this project has a migration with this version key",
    ),
    ("users_email_key", ErrorCode::EmailTaken, "a user with this email exists"),
    ("db_targets_environment_id_fkey", ErrorCode::InUse, "the environment still has targets"),
    ("db_sets_environment_id_fkey", ErrorCode::InUse, "the environment still has db sets"),
    ("run_items_target_fkey", ErrorCode::InUse, "the target is part of runs; it cannot be deleted"),
    ("db_set_members_target_fkey", ErrorCode::WrongEnvironment, "every target must belong to the db set's environment"),
    ("approvals_one_decision_per_approver", ErrorCode::AlreadyDecided, "you have already approved or denied this run"),
    ("runs_status", ErrorCode::StatusChanged, "the run changed status meanwhile; reload it and try again"),
];

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::NotFound(what) => AppError::NotFound { what },
            StorageError::Invalid { constraint } if constraint == storage::TEXT_ENCODING => AppError::Invalid {
                field: None,
                code: ErrorCode::InvalidText,
                message: "text must not contain NUL (\\u0000) characters".into(),
            },
            StorageError::Conflict { constraint } | StorageError::Reference { constraint } => {
                match CONSTRAINTS.iter().find(|(name, _, _)| name == constraint) {
                    Some((_, code, message)) => AppError::conflict(*code, *message),
                    None => AppError::Internal(Box::new(e)),
                }
            }
            _ => AppError::Internal(Box::new(e)),
        }
    }
}

impl From<audit::AuditError> for AppError {
    fn from(e: audit::AuditError) -> Self {
        AppError::Internal(Box::new(e))
    }
}

impl From<auth::secrets::SealError> for AppError {
    fn from(e: auth::secrets::SealError) -> Self {
        AppError::Internal(Box::new(e))
    }
}

/// Errors of the tool-database connection itself (pool, begin, commit).
pub(crate) fn db(e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Internal(Box::new(e))
}
