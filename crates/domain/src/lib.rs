//! Pure types and rules of migrate-hub.
//!
//! This crate holds what the rest of the workspace must agree on: typed identifiers, validated
//! values (emails, names, version keys, SQL identifiers), the closed sets stored as text in the
//! tool database, the run and run-item state machines, content checksums, and the approval and
//! role decisions as pure functions. Because the same rule must hold for the REST API, the web UI
//! and the workers, the rules live here once and the other crates only call them.
//!
//! Architecture invariant: this crate does no I/O and knows nothing about how it is used. It must
//! never import `sqlx`, `tokio`, `actix-web`, `maud`, or anything that touches the network, the file
//! system, the clock or the environment (the one exception is [`ids`], whose `new()` reads the clock
//! through `Uuid::now_v7`, as every id must be unique). That keeps every rule here unit-testable
//! exhaustively and fast.

// Declared first: `closed_enum!` is used by the modules below.
#[macro_use]
mod macros;

pub mod checksum;
pub mod drift;
pub mod enums;
pub mod error_code;
pub mod ids;
pub mod lint;
pub mod model;
#[cfg(feature = "openapi")]
mod openapi;
pub mod placeholder;
pub mod policy;
pub mod release;
pub mod run;
pub mod secret_ref;
pub mod source;
pub mod split;
pub mod values;
pub mod waves;
pub mod webhooks;
pub mod windows;

#[cfg(test)]
mod test_support;

// The most used types are also reachable from the crate root, so callers may write either
// `domain::RunStatus` or `domain::run::RunStatus`.
pub use checksum::{Checksum, ChecksumAlgorithm, ChecksumError};
pub use enums::{
    ActorKind, ApprovalDecision, Direction, Engine, FailurePolicy, LogLevel, Role, TlsMode, TokenScope,
    TransactionMode, UnknownVariant, WorkerStatus,
};
pub use error_code::ErrorCode;
pub use ids::{
    ApprovalId, DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, TargetId, TokenId, UserId, VersionId,
    WorkerId,
};
pub use policy::{
    Actor, ApprovalFacts, ApprovalState, Denial, EnvironmentPolicy, PinnedChecksums, PolicyError, RoleSet, RunFacts,
};
pub use run::{IllegalTransition, RunItemStatus, RunStatus};
pub use values::{DisplayName, Email, Identifier, MigrationName, Name, ValueError, VersionKey};
