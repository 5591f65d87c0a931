//! Closed sets of values stored as text in the tool database.
//!
//! The database has a CHECK constraint on each of these columns listing exactly the strings
//! below, so the spelling here is a contract: changing one needs a migration of the tool
//! database. Parsing is exact (no trimming or case folding) for the same reason.

use std::fmt;

use crate::checksum::ChecksumAlgorithm;
use crate::run::{RunItemStatus, RunStatus};

/// A string that is not one of the values of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownVariant {
    /// What the set is called, e.g. `"engine"`.
    pub kind: &'static str,
    /// The rejected text, as received.
    pub value: String,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)?;
        // The allowed values are looked up by kind rather than stored in the error, so the error
        // stays a plain two-field value that other crates can build for their own sets too.
        if let Some(names) = allowed_values(self.kind) {
            write!(f, "; expected one of: {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// Every closed set of this crate, by the name used in its errors.
const REGISTRY: &[(&str, &[&str])] = &[
    (Role::KIND, Role::NAMES),
    (Engine::KIND, Engine::NAMES),
    (TlsMode::KIND, TlsMode::NAMES),
    (TransactionMode::KIND, TransactionMode::NAMES),
    (Direction::KIND, Direction::NAMES),
    (FailurePolicy::KIND, FailurePolicy::NAMES),
    (ApprovalDecision::KIND, ApprovalDecision::NAMES),
    (LogLevel::KIND, LogLevel::NAMES),
    (TokenScope::KIND, TokenScope::NAMES),
    (WorkerStatus::KIND, WorkerStatus::NAMES),
    (ActorKind::KIND, ActorKind::NAMES),
    (RunStatus::KIND, RunStatus::NAMES),
    (crate::waves::Advance::KIND, crate::waves::Advance::NAMES),
    (crate::drift::Change::KIND, crate::drift::Change::NAMES),
    (crate::webhooks::WebhookEvent::KIND, crate::webhooks::WebhookEvent::NAMES),
    (crate::webhooks::WebhookFormat::KIND, crate::webhooks::WebhookFormat::NAMES),
    (RunItemStatus::KIND, RunItemStatus::NAMES),
    (ChecksumAlgorithm::KIND, ChecksumAlgorithm::NAMES),
    (RunKind::KIND, RunKind::NAMES),
    (ForeignTool::KIND, ForeignTool::NAMES),
    (Resolution::KIND, Resolution::NAMES),
    (Risk::KIND, Risk::NAMES),
    (LintBlock::KIND, LintBlock::NAMES),
];

/// The allowed values of the closed set called `kind`, if it is one of this crate's.
pub fn allowed_values(kind: &str) -> Option<&'static [&'static str]> {
    REGISTRY.iter().find(|(k, _)| *k == kind).map(|(_, names)| *names)
}

closed_enum! {
    /// What a user may do. Ordered by privilege: `User < Manager < Admin`.
    // Declaration order is privilege order, which the derived `Ord` relies on.
    #[derive(PartialOrd, Ord)]
    pub enum Role as "role" {
        /// May request runs, and cancel their own.
        User = "user",
        /// May also approve, deny and cancel others' runs.
        Manager = "manager",
        /// May also administer environments, targets, users and tokens.
        Admin = "admin",
    }
}

closed_enum! {
    /// The database engine of a target.
    pub enum Engine as "engine" {
        /// PostgreSQL.
        Postgres = "postgres",
        /// MySQL or MariaDB.
        Mysql = "mysql",
    }
}

closed_enum! {
    /// How the connection to a target uses TLS; same meaning as libpq's `sslmode`.
    pub enum TlsMode as "TLS mode" {
        /// Never use TLS.
        Disable = "disable",
        /// Use TLS when the server offers it.
        Prefer = "prefer",
        /// Require TLS, without checking the certificate.
        Require = "require",
        /// Require TLS and a certificate signed by a trusted CA.
        VerifyCa = "verify-ca",
        /// Require TLS, a trusted certificate and a matching host name.
        VerifyFull = "verify-full",
    }
}

closed_enum! {
    /// Whether a migration runs inside a transaction.
    pub enum TransactionMode as "transaction mode" {
        /// Wrapped in one transaction (the default, and only atomic on Postgres).
        Transaction = "transaction",
        /// Run statement by statement, e.g. for `CREATE INDEX CONCURRENTLY`.
        None = "none",
    }
}

closed_enum! {
    /// Whether a run applies migrations or reverts them.
    pub enum Direction as "direction" {
        /// Apply.
        Up = "up",
        /// Revert.
        Down = "down",
    }
}

closed_enum! {
    /// What a run does with the remaining targets when one fails.
    pub enum FailurePolicy as "failure policy" {
        /// Cancel what has not started yet.
        StopOnFirstFailure = "stop_on_first_failure",
        /// Keep going on the other targets.
        Continue = "continue",
    }
}

impl Default for FailurePolicy {
    /// Stopping is the safe default: a migration that fails on one target is likely to fail on
    /// the others too.
    fn default() -> Self {
        Self::StopOnFirstFailure
    }
}

closed_enum! {
    /// A reviewer's decision on a run.
    pub enum ApprovalDecision as "approval decision" {
        /// Let the run go ahead.
        Approve = "approve",
        /// Stop the run for good.
        Deny = "deny",
    }
}

closed_enum! {
    /// Severity of a run log line.
    pub enum LogLevel as "log level" {
        /// Detail for troubleshooting.
        Debug = "debug",
        /// Normal progress.
        Info = "info",
        /// Something unexpected that did not stop the work.
        Warn = "warn",
        /// Something failed.
        Error = "error",
    }
}

closed_enum! {
    /// What an API token may do.
    pub enum TokenScope as "token scope" {
        /// Read only.
        Read = "read",
        /// Read and act, within the owner's role.
        Write = "write",
    }
}

closed_enum! {
    /// Whether a worker process is running.
    pub enum WorkerStatus as "worker status" {
        /// Heartbeating.
        Running = "running",
        /// Shut down.
        Stopped = "stopped",
    }
}

closed_enum! {
    /// Who did something recorded in the audit log.
    pub enum ActorKind as "actor kind" {
        /// A signed-in person.
        User = "user",
        /// An API token.
        Token = "token",
        /// The hub itself, e.g. a scheduled cleanup.
        System = "system",
        /// A worker process.
        Worker = "worker",
    }
}

closed_enum! {
    /// What a run does on each of its targets. Every kind is requested, approved (pinning its content
    /// checksum, which covers the kind and its parameters) and executed by the workers under the target's
    /// lock in the same way.
    pub enum RunKind as "run kind" {
        /// Apply (or revert) the pinned versions.
        Release = "release",
        /// Record the pinned versions as applied without running them (a database brought up to date by
        /// other means).
        Baseline = "baseline",
        /// Record as applied the pinned versions another tool applied, read from that tool's history.
        Adopt = "adopt",
        /// Get one dirty history row out of its state.
        Recovery = "recovery",
    }
}

closed_enum! {
    /// A migration tool whose history can be adopted.
    pub enum ForeignTool as "tool" {
        /// pressly/goose.
        Goose = "goose",
        /// golang-migrate/migrate.
        GolangMigrate = "golang-migrate",
        /// Flyway.
        Flyway = "flyway",
        /// sqlx-cli.
        Sqlx = "sqlx",
        /// diesel_cli.
        Diesel = "diesel",
        /// dbmate.
        Dbmate = "dbmate",
        /// refinery.
        Refinery = "refinery",
        /// rubenv/sql-migrate.
        SqlMigrate = "sql-migrate",
    }
}

impl ForeignTool {
    /// The history table the tool creates by default.
    pub fn default_table(self) -> &'static str {
        match self {
            ForeignTool::Goose => "goose_db_version",
            ForeignTool::GolangMigrate | ForeignTool::Dbmate => "schema_migrations",
            ForeignTool::Flyway => "flyway_schema_history",
            ForeignTool::Sqlx => "_sqlx_migrations",
            ForeignTool::Diesel => "__diesel_schema_migrations",
            ForeignTool::Refinery => "refinery_schema_history",
            ForeignTool::SqlMigrate => "gorp_migrations",
        }
    }
}

closed_enum! {
    /// How a dirty history row (a migration that stopped part-way) is got out of its state.
    pub enum Resolution as "resolution" {
        /// Someone finished the migration by hand: the row becomes applied.
        MarkApplied = "mark_applied",
        /// Someone undid what ran by hand: the row goes and the version is pending again.
        MarkRolledBack = "mark_rolled_back",
        /// Run the statements after the recorded index (an up without a transaction, or MySQL).
        Resume = "resume",
    }
}

closed_enum! {
    /// How risky a migration version or a release is, from its SQL review: `High` when a destructive or
    /// long-locking rule fires (or the SQL does not parse), `Medium` for any other warning, `Low` otherwise.
    /// Ordered: a release's risk is the highest of its versions'.
    #[derive(PartialOrd, Ord)]
    pub enum Risk as "risk" {
        /// No warning left after ignore comments and the project's switched-off rules.
        Low = "low",
        /// Warnings, none of them destructive or long-locking.
        Medium = "medium",
        /// A destructive or long-locking statement, or one that does not parse.
        High = "high",
    }
}

closed_enum! {
    /// Which SQL review findings refuse a release at request (environment policy).
    pub enum LintBlock as "lint_block" {
        /// Errors (a statement that does not parse) refuse it.
        Error = "error",
        /// Errors and warnings refuse it.
        Warning = "warning",
        /// Nothing is refused; the findings are shown to the approver.
        Never = "never",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::str::FromStr;

    use super::*;
    use crate::test_support::{from_str, to_json};

    /// Checks one enum against the exact strings of the database CHECK constraint.
    fn check<T>(expected: &[(T, &str)])
    where
        T: Copy + Eq + fmt::Debug + fmt::Display + FromStr<Err = UnknownVariant>,
        T: serde::Serialize + for<'de> serde::Deserialize<'de>,
    {
        for &(value, text) in expected {
            assert_eq!(value.to_string(), text);
            assert_eq!(text.parse::<T>().unwrap(), value);
            assert_eq!(to_json(&value), format!("\"{text}\""));
            assert_eq!(from_str::<T>(text).unwrap(), value);
            // Exact match only: the database would reject anything else.
            assert!(text.to_uppercase().parse::<T>().is_err());
            assert!(format!(" {text}").parse::<T>().is_err());
        }
        assert!("".parse::<T>().is_err());
        assert!(from_str::<T>("nonsense").is_err());
    }

    #[test]
    fn role_strings() {
        check(&[(Role::User, "user"), (Role::Manager, "manager"), (Role::Admin, "admin")]);
        assert_eq!(Role::ALL, &[Role::User, Role::Manager, Role::Admin]);
    }

    #[test]
    fn role_orders_by_privilege() {
        assert!(Role::User < Role::Manager);
        assert!(Role::Manager < Role::Admin);
        assert!(Role::User < Role::Admin);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Admin));
    }

    #[test]
    fn engine_strings() {
        check(&[(Engine::Postgres, "postgres"), (Engine::Mysql, "mysql")]);
        assert_eq!(Engine::ALL.len(), 2);
    }

    #[test]
    fn tls_mode_strings() {
        check(&[
            (TlsMode::Disable, "disable"),
            (TlsMode::Prefer, "prefer"),
            (TlsMode::Require, "require"),
            (TlsMode::VerifyCa, "verify-ca"),
            (TlsMode::VerifyFull, "verify-full"),
        ]);
        assert_eq!(TlsMode::ALL.len(), 5);
    }

    #[test]
    fn transaction_mode_strings() {
        check(&[(TransactionMode::Transaction, "transaction"), (TransactionMode::None, "none")]);
        assert_eq!(TransactionMode::ALL.len(), 2);
    }

    #[test]
    fn direction_strings() {
        check(&[(Direction::Up, "up"), (Direction::Down, "down")]);
        assert_eq!(Direction::ALL.len(), 2);
    }

    #[test]
    fn failure_policy_strings_and_default() {
        check(&[(FailurePolicy::StopOnFirstFailure, "stop_on_first_failure"), (FailurePolicy::Continue, "continue")]);
        assert_eq!(FailurePolicy::ALL.len(), 2);
        assert_eq!(FailurePolicy::default(), FailurePolicy::StopOnFirstFailure);
    }

    #[test]
    fn approval_decision_strings() {
        check(&[(ApprovalDecision::Approve, "approve"), (ApprovalDecision::Deny, "deny")]);
        assert_eq!(ApprovalDecision::ALL.len(), 2);
    }

    #[test]
    fn log_level_strings() {
        check(&[
            (LogLevel::Debug, "debug"),
            (LogLevel::Info, "info"),
            (LogLevel::Warn, "warn"),
            (LogLevel::Error, "error"),
        ]);
        assert_eq!(LogLevel::ALL.len(), 4);
    }

    #[test]
    fn token_scope_strings() {
        check(&[(TokenScope::Read, "read"), (TokenScope::Write, "write")]);
        assert_eq!(TokenScope::ALL.len(), 2);
    }

    #[test]
    fn worker_status_strings() {
        check(&[(WorkerStatus::Running, "running"), (WorkerStatus::Stopped, "stopped")]);
        assert_eq!(WorkerStatus::ALL.len(), 2);
    }

    #[test]
    fn actor_kind_strings() {
        check(&[
            (ActorKind::User, "user"),
            (ActorKind::Token, "token"),
            (ActorKind::System, "system"),
            (ActorKind::Worker, "worker"),
        ]);
        assert_eq!(ActorKind::ALL.len(), 4);
    }

    #[test]
    fn names_follow_all() {
        for &(kind, names) in REGISTRY {
            assert!(!names.is_empty(), "{kind}");
        }
        let from_all: Vec<&str> = TlsMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(from_all, TlsMode::NAMES);
    }

    #[test]
    fn unknown_variant_lists_the_allowed_values() {
        let err = "oracle".parse::<Engine>().unwrap_err();
        assert_eq!(err, UnknownVariant { kind: "engine", value: "oracle".to_owned() });
        assert_eq!(err.to_string(), r#"unknown engine "oracle"; expected one of: postgres, mysql"#);
        let err = "verify_full".parse::<TlsMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown TLS mode "verify_full"; expected one of: disable, prefer, require, verify-ca, verify-full"#
        );
    }

    #[test]
    fn every_registered_kind_is_unique_and_listed_in_errors() {
        for (i, &(kind, names)) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY[i + 1..].iter().all(|(k, _)| *k != kind), "{kind}");
            let shown = UnknownVariant { kind, value: "x".to_owned() }.to_string();
            for name in names {
                assert!(shown.contains(name), "{shown}");
            }
        }
    }

    #[test]
    fn unknown_variant_of_a_foreign_kind_has_no_list() {
        let err = UnknownVariant { kind: "audit event", value: "boom".to_owned() };
        assert_eq!(err.to_string(), r#"unknown audit event "boom""#);
    }
}
