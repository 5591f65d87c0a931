//! Applying one migration to one target, by the rules of SPEC §5.
//!
//! 1. Take the session-level lock for the target (retried until the policy's wait runs out). It lives in
//!    the work session unless the release's SQL may release session locks (`pg_advisory_unlock_all()`,
//!    `DISCARD ALL`, `RELEASE_ALL_LOCKS()`…); then in a second session of its own that no migration SQL runs
//!    in, confirmed alive before statements (at most 250 ms apart), whose loss stops the apply. Either way
//!    the lock is confirmed held before a migration is recorded as applied, so a release that lost it
//!    (say, through a function the textual check cannot see into) never records a migration as applied.
//! 2. Make sure the project's history table exists, and read the project's rows (never another project's:
//!    rows are keyed by project and version).
//! 3. Decide: already applied with the same checksum → skipped; with another checksum → drift; a `running`
//!    or `failed` row → the target needs recovery; an earlier version missing (or a later one applied) →
//!    out of order, unless the environment allows it.
//! 4. Apply. In `transaction` mode on Postgres, the statements and the history row commit together or not at
//!    all. Otherwise (and always on MySQL, whose DDL commits implicitly) a `running` row is written first,
//!    progress after every statement, and the row ends `applied` or `failed` with the statement index and
//!    the error: nothing is ever silently half-applied.
//! 5. Down: run the down statements, then delete the history row, by the same rules.
//!
//! [`apply_release`] applies several migrations (a release) in one session under one lock: the history is
//! read once and each migration is decided and applied in order, so a release of seven migrations costs
//! one connection and one lock, not seven. [`apply`] is the release of one.
//!
//! Before each statement the [`Observer`] may stop the work (a cancelled run, a lost lease); after each it
//! hears how long the statement took, for the item's log. Statement indexes given to the observer count
//! from 0; messages meant for people count from 1.

use std::future::Future;
use std::time::{Duration, Instant};

use domain::checksum::Checksum;
use domain::enums::{Direction, Engine, TransactionMode};
use domain::split;
use domain::values::VersionKey;

use crate::history::{self, HistoryRow, HistoryStatus, HistoryTable, NewHistoryRow};
use crate::target::{BatchFailed, BatchPart, Inline, Ran, SessionLimits, TargetConnection, TargetError};

/// The migration to apply, with its statements already split and substituted.
#[derive(Debug, Clone)]
pub struct Migration<'a> {
    pub version: &'a VersionKey,
    pub name: &'a str,
    /// Checksum of the version's up SQL (as stored in the history row, and compared on later runs).
    pub up_checksum: Checksum,
    pub direction: Direction,
    /// The statements of the direction being applied, in order.
    pub statements: Vec<String>,
    pub transaction_mode: TransactionMode,
}

/// How to apply: the project's history table and the environment's policy.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub history: HistoryTable,
    /// Name of the per-target lock (e.g. the target id).
    pub lock_name: String,
    pub lock_wait: Duration,
    pub limits: SessionLimits,
    pub allow_out_of_order: bool,
    /// The project's versions before this one; each must be applied on the target first.
    pub earlier_versions: Vec<VersionKey>,
    /// Recorded in the history row.
    pub run_id: Option<String>,
    pub worker: String,
    /// How often a statement that gave up waiting for a lock is tried again (see [`LockRetries`]).
    pub lock_retries: LockRetries,
    /// Start no migration of a release once this instant has passed (the environment's maintenance
    /// window closes): the one running finishes, the rest waits for the next window.
    pub stop_at: Option<StopAt>,
}

/// The clock a worker reads for maintenance windows and schedules (the system's, or one a test drives).
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(std::sync::Arc::new(chrono::Utc::now))
    }

    /// A clock that reads `now` (e.g. a test's).
    pub fn new(now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static) -> Clock {
        Clock(std::sync::Arc::new(now))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// When a release stops starting migrations, read on which clock.
#[derive(Debug, Clone)]
pub struct StopAt {
    pub at: chrono::DateTime<chrono::Utc>,
    pub clock: Clock,
}

/// Tries again after a lock timeout (pgroll's answer to a blocked `ALTER` stalling the application behind
/// it): a short `lock_timeout`, then exponential backoff with jitter. In a Postgres transaction the whole
/// migration was rolled back and runs again; elsewhere the statement that timed out did not run and runs
/// again (never a `CREATE INDEX CONCURRENTLY`, which leaves an invalid index behind). Nothing else is
/// retried here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRetries {
    /// Further tries after the first (0: none).
    pub attempts: u32,
    /// The longest wait between two tries.
    pub max_delay: Duration,
}

impl LockRetries {
    /// No retry: a lock timeout fails the migration.
    pub const NONE: LockRetries = LockRetries { attempts: 0, max_delay: Duration::ZERO };
    /// The first wait, doubled for each further try.
    const BASE: Duration = Duration::from_millis(200);

    /// The wait before try `attempt` + 2 (`attempt` from 0): `BASE · 2^attempt`, at most `max_delay`, and a
    /// random part of it (full jitter between half and all of it), so that several workers blocked by the
    /// same lock do not come back at once.
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = Self::BASE.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let mut byte = [0u8; 1];
        let random =
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte).map_or(255, |()| byte[0]);
        full / 2 + (full / 2).mul_f64(f64::from(random) / 255.0)
    }
}

/// Told about each statement; may stop the apply between statements.
pub trait Observer {
    /// Called before statement `index` runs. An error stops the apply there (the history row, if any, stays
    /// `failed` with this reason, so the target is marked as needing a look). A Postgres migration in a
    /// transaction is one message: it is asked once, for its first statement.
    fn before_statement(&mut self, index: usize) -> impl Future<Output = Result<(), String>> + Send;
    /// Called after statement `index` succeeded.
    fn after_statement(
        &mut self,
        index: usize,
        statement: &str,
        elapsed: Duration,
        rows: u64,
    ) -> impl Future<Output = ()> + Send;
    /// Called once per release, under the lock, when the target's history has been read: `rows` of this
    /// project's migrations it holds (none: the release is the project's first on this target, which is
    /// where the history table is usually created).
    fn history_read(&mut self, _rows: usize) {}
    /// Called when migration `position` of a release is about to be decided (and applied unless it is
    /// skipped), under the lock.
    fn migration_started(&mut self, _position: usize, _statements: usize) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Called when migration `position`, applied in a transaction whose end the server timed, committed
    /// after `elapsed` (the lock check, the history row and the `COMMIT`).
    fn committed(&mut self, _position: usize, _elapsed: Duration) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Called when migration `position` of a release was applied or skipped.
    fn migration_ended(&mut self, _position: usize, _outcome: &Outcome) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Called when statement `index` of migration `position` gave up waiting for a lock (`error`) and is
    /// tried again (try `attempt` of `of`, counting the first) after `delay`.
    fn retrying(
        &mut self,
        _position: usize,
        _index: usize,
        _attempt: u32,
        _of: u32,
        _delay: Duration,
        _error: &str,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// An observer that lets everything run and hears nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    async fn before_statement(&mut self, _index: usize) -> Result<(), String> {
        Ok(())
    }
    async fn after_statement(&mut self, _index: usize, _statement: &str, _elapsed: Duration, _rows: u64) {}
}

/// What happened, when nothing went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        statements: usize,
    },
    /// Nothing to do: up already applied with the same checksum, or down of a version never applied.
    Skipped {
        reason: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "another session holds the migration lock on this target (waited {waited:?}){}",
        holder.as_deref().map(|h| format!("; it is {h}")).unwrap_or_default()
    )]
    LockTimeout {
        waited: Duration,
        /// Who holds it, as far as the server tells ([`TargetConnection::who_holds_lock`]).
        holder: Option<String>,
    },
    #[error("version {version} was applied with different content (checksum {applied}, now {expected}): drift")]
    Drift { version: String, applied: String, expected: String },
    #[error(
        "version {version} is {status} at statement {done} of {total}{}: the target needs recovery before anything else runs",
        error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NeedsRecovery { version: String, status: &'static str, done: u32, total: u32, error: Option<String> },
    #[error("out of order: {0}")]
    OutOfOrder(String),
    #[error(
        "statement {} ({what}) cannot run inside a transaction: mark the migration no-transaction \
         (nothing was run)", index + 1
    )]
    NeedsNoTransaction { index: usize, what: &'static str },
    #[error("statement {} failed: {source}", index + 1)]
    Statement {
        /// From 0.
        index: usize,
        #[source]
        source: TargetError,
    },
    #[error("stopped before statement {}: {reason}", index + 1)]
    Stopped { index: usize, reason: String },
    /// The maintenance window closed before this migration started; nothing of it ran.
    #[error("the maintenance window closed at {at}; the rest waits for the next window")]
    WindowClosed { at: chrono::DateTime<chrono::Utc> },
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl ApplyError {
    /// Whether the same apply may succeed if tried again later (lock busy, connection trouble, timeouts).
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::LockTimeout { .. } => true,
            ApplyError::Target(e) | ApplyError::Statement { source: e, .. } => e.is_transient(),
            _ => false,
        }
    }
}

/// Applies `migration` on `conn` (see the module doc): a release of one. The lock is released whatever
/// happens.
pub async fn apply(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    options: &ApplyOptions,
    observer: &mut impl Observer,
) -> Result<Outcome, ApplyError> {
    let mut outcomes =
        apply_release(conn, std::slice::from_ref(migration), options, observer).await.map_err(|failed| failed.error)?;
    Ok(outcomes.pop().unwrap_or(Outcome::Skipped { reason: "nothing to apply" }))
}

/// A release that stopped: which of its migrations failed (from 0), the outcomes of those before it, and
/// why.
#[derive(Debug)]
pub struct ReleaseFailed {
    pub position: usize,
    pub completed: Vec<Outcome>,
    pub error: ApplyError,
}

/// Applies `migrations` in order on `conn`, in one session under one lock (see the module doc). Each is
/// decided on the history as the previous ones left it. Stops at the first failure; the lock is released
/// whatever happens.
#[tracing::instrument(skip_all, fields(migrations = migrations.len()))]
pub async fn apply_release(
    conn: &mut TargetConnection,
    migrations: &[Migration<'_>],
    options: &ApplyOptions,
    observer: &mut impl Observer,
) -> Result<Vec<Outcome>, ReleaseFailed> {
    let failed =
        |position: usize, completed: Vec<Outcome>, error: ApplyError| ReleaseFailed { position, completed, error };
    if conn.engine() == Engine::Postgres {
        // Refused before anything runs: inside BEGIN these fail with 25001 half-way through the file.
        for (position, migration) in migrations.iter().enumerate() {
            if migration.transaction_mode != TransactionMode::Transaction {
                continue;
            }
            if let Some((index, what)) =
                migration.statements.iter().enumerate().find_map(|(i, s)| split::non_transactional(s).map(|w| (i, w)))
            {
                return Err(failed(position, Vec::new(), ApplyError::NeedsNoTransaction { index, what }));
            }
        }
    }
    // The history's creation and read travel with the lock where they can: one round trip fewer.
    let ensure = history::ensure_and_read_sql(&options.history);
    let read = match conn.limit_lock_and(options.limits, &options.lock_name, options.lock_wait, &ensure).await {
        Ok((true, read)) => read,
        Ok((false, _)) => {
            let holder = conn.who_holds_lock(&options.lock_name).await;
            return Err(failed(0, Vec::new(), ApplyError::LockTimeout { waited: options.lock_wait, holder }));
        }
        Err(e) => return Err(failed(0, Vec::new(), e.into())),
    };
    let mut completed = Vec::with_capacity(migrations.len());
    let result = locked_release(conn, read, migrations, options, observer, &mut completed).await;
    let unlocked = conn.unlock(&options.lock_name).await;
    if let Err((position, error)) = result {
        return Err(failed(position, completed, error));
    }
    if let Err(e) = unlocked {
        let position = migrations.len().saturating_sub(1);
        return Err(failed(position, completed, e.into()));
    }
    Ok(completed)
}

/// `read`: the rows of [`history::ensure_and_read_sql`], when they travelled with the lock.
async fn locked_release(
    conn: &mut TargetConnection,
    read: Option<Vec<sqlx::postgres::PgRow>>,
    migrations: &[Migration<'_>],
    options: &ApplyOptions,
    observer: &mut impl Observer,
    completed: &mut Vec<Outcome>,
) -> Result<(), (usize, ApplyError)> {
    let rows = match read {
        Some(read) => history::read_ensured(&read),
        None => history::ensure_and_read(conn, &options.history).await,
    }
    .map_err(|e| (0, e.into()))?;
    let mut rows = own_rows(conn, rows, migrations, options).await.map_err(|e| (0, e.into()))?;
    observer.history_read(rows.len());
    // Consecutive migrations in a Postgres transaction go in one message when the lock check can travel
    // with them (see `atomically`).
    // (Not while a maintenance window may close: then each migration is started on its own.)
    let grouped = conn.checks_lock_inline() && options.stop_at.is_none();
    let engine = conn.engine();
    let mut position = 0;
    // Tries of the migration at `position` that gave up waiting for a lock in its transaction.
    let mut lock_tries = (0, 0u32);
    while let Some(migration) = migrations.get(position) {
        if let Some(stop) = &options.stop_at
            && stop.clock.now() >= stop.at
        {
            return Err((position, ApplyError::WindowClosed { at: stop.at }));
        }
        let step = decide(engine, migration, options, &rows).map_err(|e| (position, e))?;
        let mut group = vec![migration];
        if step == Step::Atomic && grouped {
            // Each is decided on the history as the ones before it in the group will leave it.
            let mut after = rows.clone();
            record_effect(&mut after, migration);
            for next in &migrations[position + 1..] {
                if decide(engine, next, options, &after).ok() != Some(Step::Atomic) {
                    break;
                }
                record_effect(&mut after, next);
                group.push(next);
            }
        }
        let (outcomes, failure) = match step {
            Step::Atomic => {
                match atomically(conn, position, &group, options, observer, position + group.len() == migrations.len())
                    .await
                {
                    Ok(outcomes) => (outcomes, None),
                    Err((outcomes, offset, error)) => (outcomes, Some((position + offset, error))),
                }
            }
            Step::Skip(reason) => {
                observer.migration_started(position, migration.statements.len()).await;
                let outcome = Outcome::Skipped { reason };
                observer.migration_ended(position, &outcome).await;
                (vec![outcome], None)
            }
            Step::Stepwise => {
                observer.migration_started(position, migration.statements.len()).await;
                match stepwise(conn, migration, options, observer).await {
                    Ok(outcome) => {
                        observer.migration_ended(position, &outcome).await;
                        (vec![outcome], None)
                    }
                    Err(error) => (Vec::new(), Some((position, error))),
                }
            }
        };
        let done = outcomes.len();
        for (outcome, migration) in outcomes.into_iter().zip(&migrations[position..]) {
            if matches!(outcome, Outcome::Applied { .. }) {
                record_effect(&mut rows, migration);
            }
            completed.push(outcome);
        }
        if let Some((at, error)) = failure {
            // A Postgres transaction that gave up waiting for a lock was rolled back whole: run it again
            // after a wait, from the first migration of the group that did not commit.
            let retry = match (&error, step) {
                (ApplyError::Statement { index, source }, Step::Atomic) if source.is_lock_timeout() => {
                    let tried = if lock_tries.0 == at { lock_tries.1 } else { 0 };
                    (tried < options.lock_retries.attempts).then_some((*index, tried))
                }
                _ => None,
            };
            let Some((index, tried)) = retry else { return Err((at, error)) };
            let delay = options.lock_retries.delay(tried);
            let of = options.lock_retries.attempts + 1;
            observer.retrying(at, index, tried + 2, of, delay, &error.to_string()).await;
            tokio::time::sleep(delay).await;
            lock_tries = (at, tried + 1);
            position += done;
            continue;
        }
        position += group.len().max(1);
    }
    Ok(())
}

/// What a migration's apply will do to the history, for the decisions on the ones after it.
fn record_effect(rows: &mut Vec<HistoryRow>, migration: &Migration<'_>) {
    let version = migration.version.as_str();
    match migration.direction {
        // A repeatable's row is replaced when it runs again.
        Direction::Up => rows.retain(|r| r.version != version),
        Direction::Down => {}
    }
    match migration.direction {
        Direction::Up => rows.push(HistoryRow {
            version: version.to_owned(),
            name: migration.name.to_owned(),
            checksum: migration.up_checksum.digest().to_vec(),
            checksum_algorithm: migration.up_checksum.algorithm().as_str().to_owned(),
            status: HistoryStatus::Applied,
            statements_done: total(migration),
            statements_total: total(migration),
            error: None,
            legacy: false,
        }),
        Direction::Down => rows.retain(|r| r.version != version),
    }
}

/// The project's rows among those read: its own, plus empty-key rows written before the table had projects
/// whose version is one of the project's (those are handed to the project, so no other project sees them
/// again). Empty-key rows of versions the project does not have belong to another project and are ignored.
async fn own_rows(
    conn: &mut TargetConnection,
    rows: Vec<HistoryRow>,
    migrations: &[Migration<'_>],
    options: &ApplyOptions,
) -> Result<Vec<HistoryRow>, TargetError> {
    let known = |version: &str| {
        migrations.iter().any(|m| m.version.as_str() == version)
            || options.earlier_versions.iter().any(|v| v.as_str() == version)
    };
    let rows: Vec<HistoryRow> = rows.into_iter().filter(|r| !r.legacy || known(&r.version)).collect();
    let adopted: Vec<&str> = rows.iter().filter(|r| r.legacy).map(|r| r.version.as_str()).collect();
    history::claim(conn, &options.history, &adopted).await?;
    Ok(rows.into_iter().map(|r| HistoryRow { legacy: false, ..r }).collect())
}

/// What [`locked_release`] does with a migration, decided on the history as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Skip(&'static str),
    /// Statements and history change in one Postgres transaction.
    Atomic,
    /// Statement by statement, progress recorded between them.
    Stepwise,
}

fn decide(
    engine: Engine,
    migration: &Migration<'_>,
    options: &ApplyOptions,
    rows: &[HistoryRow],
) -> Result<Step, ApplyError> {
    let version = migration.version.as_str();
    let existing = rows.iter().find(|r| r.version == version);
    // A repeatable migration runs again whenever its content changed: not drift.
    let changed = existing.is_some_and(|row| row.checksum != migration.up_checksum.digest());
    let repeatable = migration.version.is_repeatable();
    if let Some(row) = existing {
        check_clean(row)?;
        if changed && !(repeatable && migration.direction == Direction::Up) {
            return Err(ApplyError::Drift {
                version: version.to_owned(),
                applied: hex(&row.checksum),
                expected: migration.up_checksum.to_hex(),
            });
        }
    }
    match (migration.direction, existing) {
        (Direction::Up, Some(_)) if repeatable && changed => {}
        (Direction::Up, Some(_)) => return Ok(Step::Skip("already applied with the same checksum")),
        (Direction::Down, None) => return Ok(Step::Skip("not applied on this target")),
        (Direction::Down, Some(_)) if repeatable => return Ok(Step::Skip("a repeatable migration is not reverted")),
        (Direction::Up, None) => check_order(migration.version, rows, options)?,
        (Direction::Down, Some(_)) => {}
    }
    let atomic = engine == Engine::Postgres && migration.transaction_mode == TransactionMode::Transaction;
    Ok(if atomic { Step::Atomic } else { Step::Stepwise })
}

/// Whether the first statement's error `e` leaves the target as it was: the apply stopped before it, or
/// the server answered that it failed where a statement is atomic: MySQL/MariaDB (DDL included), and
/// Postgres for a single command that runs as its own transaction (`split::atomic_alone`), not a failed
/// `CREATE INDEX CONCURRENTLY`, which leaves an invalid index. Never for a lost connection, after which
/// the statement may have run.
fn nothing_ran(e: &ApplyError, engine: Engine, statement: &str) -> bool {
    match e {
        ApplyError::Stopped { index: 0, .. } => true,
        ApplyError::Statement { index: 0, source: TargetError::Statement { .. } } => match engine {
            Engine::Mysql => true,
            Engine::Postgres => split::atomic_alone(statement),
        },
        _ => false,
    }
}

fn check_clean(row: &HistoryRow) -> Result<(), ApplyError> {
    if row.status == HistoryStatus::Applied {
        return Ok(());
    }
    Err(ApplyError::NeedsRecovery {
        version: row.version.clone(),
        status: row.status.as_str(),
        done: row.statements_done,
        total: row.statements_total,
        error: row.error.clone(),
    })
}

fn check_order(version: &VersionKey, rows: &[HistoryRow], options: &ApplyOptions) -> Result<(), ApplyError> {
    if options.allow_out_of_order {
        return Ok(());
    }
    // Any dirty row blocks the whole project on this target, not just its own version.
    for row in rows {
        check_clean(row)?;
    }
    let missing: Vec<&str> = options
        .earlier_versions
        .iter()
        .filter(|v| *v < version && !rows.iter().any(|r| r.version == v.as_str()))
        .map(VersionKey::as_str)
        .collect();
    if let Some(first) = missing.first() {
        return Err(ApplyError::OutOfOrder(format!(
            "{} earlier version(s) not applied on this target, first {first}",
            missing.len()
        )));
    }
    let later = rows
        .iter()
        .filter_map(|r| VersionKey::parse(r.version.as_str()).ok())
        .filter(|applied| applied > version && !applied.is_repeatable())
        .min();
    if let Some(later) = later {
        return Err(ApplyError::OutOfOrder(format!("a later version ({later}) is already applied on this target")));
    }
    Ok(())
}

fn total(migration: &Migration<'_>) -> u32 {
    u32::try_from(migration.statements.len()).unwrap_or(u32::MAX)
}

fn new_row<'a>(
    migration: &'a Migration<'_>,
    options: &'a ApplyOptions,
    status: HistoryStatus,
    checksum: &'a [u8],
) -> NewHistoryRow<'a> {
    NewHistoryRow {
        version: migration.version.as_str(),
        name: migration.name,
        checksum,
        checksum_algorithm: migration.up_checksum.algorithm().as_str(),
        status,
        statements_done: if status == HistoryStatus::Applied { total(migration) } else { 0 },
        statements_total: total(migration),
        run_id: options.run_id.clone(),
        worker: &options.worker,
    }
}

async fn run_statement(
    conn: &mut TargetConnection,
    index: usize,
    statement: &str,
    observer: &mut impl Observer,
) -> Result<(), ApplyError> {
    run_prefixed(conn, index, "", statement, observer).await
}

/// Runs `statement` with `prefix` sent in the same message (e.g. `BEGIN;`); the observer sees the statement
/// as written.
async fn run_prefixed(
    conn: &mut TargetConnection,
    index: usize,
    prefix: &str,
    statement: &str,
    observer: &mut impl Observer,
) -> Result<(), ApplyError> {
    observer.before_statement(index).await.map_err(|reason| ApplyError::Stopped { index, reason })?;
    conn.check_lock(false).await?;
    let started = Instant::now();
    let sent =
        if prefix.is_empty() { std::borrow::Cow::Borrowed(statement) } else { format!("{prefix}{statement}").into() };
    let rows = conn.execute(&sent).await.map_err(|source| ApplyError::Statement { index, source })?;
    observer.after_statement(index, statement, started.elapsed(), rows).await;
    Ok(())
}

/// Postgres, transaction mode: a group of consecutive migrations (the release's from `first`), each one
/// transaction of its statements and its history change, all sent as one message (see
/// [`TargetConnection::execute_batch`]): per migration BEGIN, the statements, the lock check, the history
/// change and COMMIT. Nothing of a migration is visible before its COMMIT, and nothing after a failure
/// runs, so the observer is asked once, before the message, and told about each migration and statement
/// after it, with the times the server measured. On failure: the outcomes of the migrations that
/// committed, the failing one's offset in the group, and why. `last`: the group ends the release, so the
/// target's lock is released in the same message (see [`TargetConnection::execute_batch`]).
async fn atomically(
    conn: &mut TargetConnection,
    first: usize,
    group: &[&Migration<'_>],
    options: &ApplyOptions,
    observer: &mut impl Observer,
    last: bool,
) -> Result<Vec<Outcome>, (Vec<Outcome>, usize, ApplyError)> {
    let records: Vec<String> = group
        .iter()
        .map(|migration| match migration.direction {
            Direction::Up => {
                let row = new_row(migration, options, HistoryStatus::Applied, migration.up_checksum.digest());
                if migration.version.is_repeatable() {
                    history::replace_and_commit_sql(&options.history, &row)
                } else {
                    history::insert_and_commit_sql(&options.history, &row)
                }
            }
            Direction::Down => history::delete_and_commit_sql(&options.history, migration.version.as_str()),
        })
        .collect();
    let parts: Vec<BatchPart<'_>> = group
        .iter()
        .zip(&records)
        .map(|(migration, record)| BatchPart { statements: &migration.statements, record })
        .collect();
    let statements = |offset: usize| group.get(offset).map_or(0, |m| m.statements.len());
    observer.migration_started(first, statements(0)).await;
    let stopped = |error: ApplyError| (Vec::new(), 0, error);
    observer.before_statement(0).await.map_err(|reason| stopped(ApplyError::Stopped { index: 0, reason }))?;
    conn.check_lock(false).await.map_err(|e| stopped(e.into()))?;
    let (committed, failed) = match conn.execute_batch("BEGIN;\n", &parts, &options.lock_name, last).await {
        Ok(committed) => (committed, None),
        Err(BatchFailed { committed, ran, failure }) => (committed, Some((ran, failure))),
    };
    let mut outcomes = Vec::with_capacity(committed.len());
    for (offset, part) in committed.iter().enumerate() {
        if offset > 0 {
            observer.migration_started(first + offset, statements(offset)).await;
        }
        report(observer, group[offset], &part.statements).await;
        if let Some(commit) = part.commit {
            observer.committed(first + offset, commit).await;
        }
        let outcome = Outcome::Applied { statements: statements(offset) };
        observer.migration_ended(first + offset, &outcome).await;
        outcomes.push(outcome);
    }
    let Some((ran, failure)) = failed else {
        return Ok(outcomes);
    };
    let offset = committed.len();
    if offset > 0 {
        observer.migration_started(first + offset, statements(offset)).await;
    }
    if let Some(migration) = group.get(offset) {
        report(observer, migration, &ran).await;
    }
    // The error is what matters; a failed ROLLBACK means the session is gone, which rolls back too.
    let _ = conn.execute("ROLLBACK").await;
    let error = match failure {
        Inline::Statement(source) => ApplyError::Statement { index: ran.len(), source },
        Inline::Record(e) => e.into(),
    };
    Err((outcomes, offset, error))
}

/// Tells the observer about the statements of `migration` that ran.
async fn report(observer: &mut impl Observer, migration: &Migration<'_>, ran: &[Ran]) {
    for (index, done) in ran.iter().enumerate() {
        let statement = migration.statements.get(index).map_or("", String::as_str);
        observer.after_statement(index, statement, done.elapsed, done.rows).await;
    }
}

/// Statement by statement, with progress recorded after each.
async fn stepwise(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    options: &ApplyOptions,
    observer: &mut impl Observer,
) -> Result<Outcome, ApplyError> {
    let version = migration.version.as_str();
    let checksum = migration.up_checksum.digest();
    match migration.direction {
        Direction::Up => {
            if migration.version.is_repeatable() {
                // Run again: its row is replaced (a crash before the new one is written leaves it pending,
                // which runs it once more: repeatables are written to be run again).
                history::delete(conn, &options.history, version).await?;
            }
            history::insert(conn, &options.history, &new_row(migration, options, HistoryStatus::Running, checksum))
                .await?;
        }
        Direction::Down => {
            history::update(conn, &options.history, version, HistoryStatus::Running, 0, Some(DOWN_UNDER_WAY)).await?;
        }
    }
    run_from(conn, migration, options, observer, 0).await
}

/// In the `error` column of a row while its down runs: a down that stopped (its failure message starts
/// with `down` too) is told apart from an up that stopped, whose statements are not the down's.
pub const DOWN_UNDER_WAY: &str = "down under way";

/// Whether `row` is dirty because a down stopped, not an up.
pub fn stopped_down(row: &HistoryRow) -> bool {
    row.status != HistoryStatus::Applied && row.error.as_deref().is_some_and(|e| e.starts_with("down"))
}

/// Runs `migration`'s statements from index `from` on (the ones before it ran already, and its row says
/// so), recording progress after each, then ends its row: `applied` (up) or gone (down); `failed` with
/// the statement and error when one fails.
pub(crate) async fn run_from(
    conn: &mut TargetConnection,
    migration: &Migration<'_>,
    options: &ApplyOptions,
    observer: &mut impl Observer,
    from: usize,
) -> Result<Outcome, ApplyError> {
    let version = migration.version.as_str();
    let marker = (migration.direction == Direction::Down).then_some(DOWN_UNDER_WAY);
    // MySQL with the lock in this session: the last statement's progress, the lock's confirmation and the
    // row's end are one statement (two round trips fewer per migration). A stop between the last statement
    // and that write leaves the row as a stop before a separate progress write did.
    let fused = conn.mysql_lock_condition(&options.lock_name);
    let last = migration.statements.len();
    for (index, statement) in migration.statements.iter().enumerate().skip(from) {
        let done = u32::try_from(index).unwrap_or(u32::MAX);
        let mut result = run_statement(conn, index, statement, observer).await;
        let mut tried = 0;
        while let Err(ApplyError::Statement { source, .. }) = &result
            && tried < options.lock_retries.attempts
            && source.is_lock_timeout()
            && (conn.engine() == Engine::Mysql || split::atomic_alone(statement))
        {
            // The statement gave up waiting for a lock and did not run: run it again after a wait.
            let delay = options.lock_retries.delay(tried);
            let of = options.lock_retries.attempts + 1;
            let error = source.to_string();
            observer.retrying(0, index, tried + 2, of, delay, &error).await;
            tokio::time::sleep(delay).await;
            tried += 1;
            result = run_statement(conn, index, statement, observer).await;
        }
        if let Err(e) = result {
            if index == 0 && nothing_ran(&e, conn.engine(), statement) {
                // Stopped before anything ran (cancelled, lease lost, worker stopping), or the server
                // refused a first statement that is all or nothing: the target is as it was, so take the marker back rather
                // than leave it needing recovery.
                match migration.direction {
                    Direction::Up => history::delete(conn, &options.history, version).await?,
                    Direction::Down => {
                        history::update(
                            conn,
                            &options.history,
                            version,
                            HistoryStatus::Applied,
                            total(migration),
                            None,
                        )
                        .await?;
                    }
                }
                return Err(e);
            }
            let message = format!("{} failed at statement {}: {e}", migration.direction, index + 1);
            // Best effort: if the connection is gone the row stays `running`, which is just as dirty.
            let _ = history::update(conn, &options.history, version, HistoryStatus::Failed, done, Some(&message)).await;
            return Err(e);
        }
        if fused.is_some() && index + 1 == last {
            break;
        }
        history::update(conn, &options.history, version, HistoryStatus::Running, done + 1, marker).await?;
    }
    let up = migration.direction == Direction::Up;
    if let Some(condition) = &fused
        && history::end_if(conn, &options.history, version, up, total(migration), condition).await?
    {
        return Ok(Outcome::Applied { statements: migration.statements.len().saturating_sub(from) });
    }
    // Otherwise (no fused end, or it changed nothing: the lock is gone, said below, or the row is), as before.
    if let Err(e) = conn.confirm_lock(&options.lock_name).await {
        let message = format!("{} ran every statement but {e}", migration.direction);
        let _ =
            history::update(conn, &options.history, version, HistoryStatus::Failed, total(migration), Some(&message))
                .await;
        return Err(e.into());
    }
    match migration.direction {
        Direction::Up => {
            history::update(conn, &options.history, version, HistoryStatus::Applied, total(migration), None).await?;
        }
        Direction::Down => history::delete(conn, &options.history, version).await?,
    }
    Ok(Outcome::Applied { statements: migration.statements.len().saturating_sub(from) })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
