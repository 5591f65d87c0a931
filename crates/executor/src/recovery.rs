//! Recovery of a dirty history row: the ways out of a migration that stopped part-way where its statements
//! could not be rolled back with it (Postgres without a transaction, MySQL/MariaDB, whose DDL commits on
//! its own). A Postgres migration in a transaction never leaves one: it commits whole or not at all.
//!
//! - `mark_applied`: someone finished the migration by hand; the row becomes `applied`.
//! - `mark_rolled_back`: someone undid what ran by hand; the row goes, and the version is pending again.
//! - `resume`: run the statements after the recorded index, with progress as in any apply, the same
//!   content only (the row's checksum), and for an up that stopped only (a stopped down is finished or
//!   undone by hand, then marked).
//!
//! Each runs under the target's lock, after reading the row again: if it is no longer the dirty row the
//! decision was taken on (another status, progress or content), nothing changes.

use crate::apply::{self, ApplyError, ApplyOptions, Migration, Observer, Outcome};
use crate::history::{self, HistoryRow, HistoryStatus, HistoryTable};
use crate::target::{TargetConnection, TargetError};
use domain::enums::{Direction, Engine, TransactionMode};

/// What to do with a dirty row (the closed set the hub stores too).
pub use domain::enums::Resolution;

/// The dirty row as the person deciding saw it. Recovery goes ahead only while the row is exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRow {
    pub status: HistoryStatus,
    pub statements_done: u32,
    pub checksum: Vec<u8>,
}

impl SeenRow {
    pub fn of(row: &HistoryRow) -> Self {
        SeenRow { status: row.status, statements_done: row.statements_done, checksum: row.checksum.clone() }
    }
}

/// What a recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    MarkedApplied,
    MarkedRolledBack,
    /// The remaining statements ran: how many.
    Resumed {
        statements: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("version {0} has no history row on this target: nothing to recover")]
    NoRow(String),
    #[error("version {0} is applied, not dirty: nothing to recover")]
    NotDirty(String),
    #[error("version {version} changed since it was seen ({now}): nothing was changed; look again and decide anew")]
    Changed { version: String, now: String },
    #[error("version {version} cannot be resumed: {reason}")]
    CannotResume { version: String, reason: String },
    #[error(
        "the target lock is held by another session (waited {waited:?}){}; nothing was changed",
        holder.as_deref().map(|h| format!("; it is {h}")).unwrap_or_default()
    )]
    LockTimeout { waited: std::time::Duration, holder: Option<String> },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// How a row reads in messages: `failed at statement 2 of 4: …`.
pub fn describe(row: &HistoryRow) -> String {
    let mut text = format!("{} at statement {} of {}", row.status.as_str(), row.statements_done, row.statements_total);
    if let Some(error) = &row.error {
        text.push_str(": ");
        text.push_str(error);
    }
    text
}

/// Recovers the dirty row of `migration.version` by `resolution`, under the lock of `options`, if the row
/// is still `seen` (when given). `migration` carries the statements and checksum a resume needs (its
/// direction must be up); the marks only use its version.
pub async fn recover(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    resolution: Resolution,
    seen: Option<&SeenRow>,
    options: &ApplyOptions,
    observer: &mut impl Observer,
) -> Result<Recovered, RecoveryError> {
    match conn.limit_and_lock(options.limits, &options.lock_name, options.lock_wait).await {
        Ok(true) => {}
        Ok(false) => {
            let holder = conn.who_holds_lock(&options.lock_name).await;
            return Err(RecoveryError::LockTimeout { waited: options.lock_wait, holder });
        }
        Err(e) => return Err(e.into()),
    }
    let result = locked(conn, migration, resolution, seen, options, observer).await;
    let unlocked = conn.unlock(&options.lock_name).await;
    let recovered = result?;
    unlocked?;
    Ok(recovered)
}

/// Reads the dirty row of `migration.version` in `table` and checks that `resolution` can be taken on it:
/// there is a row, it is not applied, it is still `seen` (when given), and a resume can work on it. Reads
/// only; the server calls it at request, so whoever approves decides on a row that was read, and
/// [`recover`] calls it again under the lock.
pub async fn inspect(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    resolution: Resolution,
    seen: Option<&SeenRow>,
    table: &HistoryTable,
) -> Result<HistoryRow, RecoveryError> {
    let version = migration.version.as_str();
    let rows = if history::exists(conn, table).await? { history::all(conn, table).await? } else { Vec::new() };
    let Some(row) = rows.into_iter().find(|r| r.version == version) else {
        return Err(RecoveryError::NoRow(version.to_owned()));
    };
    if row.status == HistoryStatus::Applied {
        return Err(RecoveryError::NotDirty(version.to_owned()));
    }
    if seen.is_some_and(|seen| *seen != SeenRow::of(&row)) {
        return Err(RecoveryError::Changed { version: version.to_owned(), now: describe(&row) });
    }
    if resolution == Resolution::Resume {
        check_resumable(conn.engine(), migration, &row)?;
    }
    Ok(row)
}

async fn locked(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    resolution: Resolution,
    seen: Option<&SeenRow>,
    options: &ApplyOptions,
    observer: &mut impl Observer,
) -> Result<Recovered, RecoveryError> {
    let version = migration.version.as_str();
    let table = &options.history;
    let row = inspect(conn, migration, resolution, seen, table).await?;
    if row.legacy {
        // Written before the table had projects: this project's from now on (see `apply::own_rows`).
        history::claim(conn, table, &[version]).await?;
    }
    match resolution {
        Resolution::MarkApplied => {
            history::update(conn, table, version, HistoryStatus::Applied, row.statements_total, None).await?;
            Ok(Recovered::MarkedApplied)
        }
        Resolution::MarkRolledBack => {
            history::delete(conn, table, version).await?;
            Ok(Recovered::MarkedRolledBack)
        }
        Resolution::Resume => {
            let from = usize::try_from(row.statements_done).unwrap_or(usize::MAX);
            history::update(conn, table, version, HistoryStatus::Running, row.statements_done, None).await?;
            observer.migration_started(0, migration.statements.len()).await;
            let outcome = apply::run_from(conn, migration, options, observer, from).await?;
            observer.migration_ended(0, &outcome).await;
            let Outcome::Applied { statements } = outcome else { return Ok(Recovered::Resumed { statements: 0 }) };
            Ok(Recovered::Resumed { statements })
        }
    }
}

fn check_resumable(engine: Engine, migration: &Migration<'_>, row: &HistoryRow) -> Result<(), RecoveryError> {
    let refuse = |reason: String| Err(RecoveryError::CannotResume { version: row.version.clone(), reason });
    if migration.direction != Direction::Up || apply::stopped_down(row) {
        return refuse(
            "it is a down that stopped; finish or undo it by hand, then mark it rolled back or applied".into(),
        );
    }
    if engine == Engine::Postgres && migration.transaction_mode == TransactionMode::Transaction {
        return refuse(
            "a Postgres migration in a transaction never stops part-way; its content here is in transaction mode, \
             not the mode it ran in"
                .into(),
        );
    }
    if row.checksum != migration.up_checksum.digest() {
        return refuse(format!(
            "its content differs from what ran (checksum {} on the target, {} here)",
            apply::hex(&row.checksum),
            migration.up_checksum.to_hex()
        ));
    }
    let total = migration.statements.len();
    if usize::try_from(row.statements_done).map_or(true, |done| done > total) {
        return refuse(format!("the row says {} statements ran, the migration has {total}", row.statements_done));
    }
    Ok(())
}
