//! The worker loop: claims run items from the tool database, applies each to its target with the engine,
//! persists every statement's log line and the item's result, and ends runs.
//!
//! Safety comes from three layers, each enough on its own for what it guards:
//! - **Leases with fencing tokens** (`storage::queue`): every write about an item names the token of its
//!   claim, so a worker whose lease was taken over (it stalled, or was thought dead) changes nothing. The
//!   lease is renewed every lease/3 and re-checked before each statement.
//! - **The target's session lock**: a worker that takes over an item waits for the old owner's session
//!   lock on the target, which dies with the old owner's connection.
//! - **The target's history row**: applied → skipped, half-applied → "needs recovery", never re-run.
//!
//! Idle workers wake on `LISTEN migrate_hub_queue` and also poll, so lost notifications only cost latency.
//! On shutdown a worker stops claiming, hands back items that have not started a statement, and lets the
//! others finish.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::checksum::Checksum;
use domain::enums::{ActorKind, Direction, Engine, LogLevel, TransactionMode};
use domain::ids::{RunId, RunItemId, WorkerId};
use domain::model::{
    AuditActor, Environment, Migration as MigrationRecord, MigrationVersion, NewLogLine, Project, Run, SealedSecret,
    SecretSource, Target,
};
use domain::placeholder::{self, Syntax};
use domain::policy::{ApprovalFacts, ApprovalState, PinnedChecksums, RunFacts, approval_state};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::VersionKey;
use secrecy::SecretString;
use storage::queue::{Claim, Ended, Ending};
use storage::{PageRequest, PgPool, StorageError};
use tokio::task::JoinSet;

use crate::apply::{self, ApplyError, ApplyOptions, Migration, Observer, Outcome};
use crate::history::HistoryTable;
use crate::target::{ConnectSettings, SessionLimits, TargetConnection};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a claim is valid without renewal.
    pub lease: Duration,
    /// Items one worker applies at once.
    pub slots: usize,
    /// Most items taken per claim.
    pub batch: u32,
    /// Polling interval when idle (the fallback for lost notifications).
    pub poll_interval: Duration,
    /// Whether to `LISTEN` for new work.
    pub listen: bool,
    /// First retry delay after a connection or lock-timeout error; doubles per attempt.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Time allowed to connect to a target.
    pub connect_timeout: Duration,
    /// Seconds between worker heartbeats (the `workers` row).
    pub heartbeat: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            slots: 4,
            batch: 4,
            poll_interval: Duration::from_secs(2),
            listen: true,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
        }
    }
}

/// Opens sealed target secrets. The worker holds the only implementation that can (with the master key);
/// the password exists in memory only while connecting.
pub trait SecretOpener: Send + Sync + 'static {
    fn open(&self, target: &Target, sealed: &SealedSecret) -> Result<SecretString, String>;
}

/// A worker without the master key: targets with sealed secrets fail with a clear message.
#[derive(Debug, Default)]
pub struct NoMasterKey;

impl SecretOpener for NoMasterKey {
    fn open(&self, _target: &Target, _sealed: &SealedSecret) -> Result<SecretString, String> {
        Err("the target's password is sealed and this worker has no master key configured".into())
    }
}

/// A worker with the master keys opens what they sealed, for the target it was sealed for.
impl SecretOpener for auth::secrets::KeyRing {
    fn open(&self, target: &Target, sealed: &SealedSecret) -> Result<SecretString, String> {
        auth::secrets::KeyRing::open(self, target.id, sealed).map_err(|e| e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("tool database error while {action}")]
    Storage {
        action: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("cannot listen for queue notifications")]
    Listen(#[source] sqlx::Error),
}

/// Everything about a run that its items share (loaded once per run and worker).
#[derive(Debug)]
struct RunContext {
    run: Run,
    version: MigrationVersion,
    migration: MigrationRecord,
    project: Project,
    environment: Environment,
    earlier_versions: Vec<VersionKey>,
    /// `Err(reason)` when the stored SQL no longer matches its checksums or the approvals.
    verified: Result<(), String>,
}

/// A lease this worker holds.
#[derive(Debug, Clone)]
struct Held {
    token: i64,
    lost: Arc<AtomicBool>,
}

struct Shared {
    pool: PgPool,
    worker: WorkerId,
    label: String,
    settings: Settings,
    opener: Arc<dyn SecretOpener>,
    held: Mutex<HashMap<RunItemId, Held>>,
    runs: Mutex<HashMap<RunId, Arc<RunContext>>>,
    draining: AtomicBool,
}

/// A worker executing the queue.
pub struct QueueWorker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for QueueWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWorker").field("worker", &self.shared.worker).finish_non_exhaustive()
    }
}

impl QueueWorker {
    /// `label` names the worker in logs and audit events (e.g. `host/pid`).
    pub fn new(
        pool: PgPool,
        worker: WorkerId,
        label: String,
        settings: Settings,
        opener: Arc<dyn SecretOpener>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                worker,
                label,
                settings,
                opener,
                held: Mutex::new(HashMap::new()),
                runs: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// Works until `shutdown` resolves, then stops claiming, hands back items that have not started and
    /// waits for the others to finish.
    #[tracing::instrument(skip_all, fields(worker.id = %self.shared.worker))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), QueueError> {
        let shared = self.shared;
        let settings = shared.settings.clone();
        let mut listener = if settings.listen {
            let mut listener =
                sqlx::postgres::PgListener::connect_with(&shared.pool).await.map_err(QueueError::Listen)?;
            listener.listen(storage::queue::CHANNEL).await.map_err(QueueError::Listen)?;
            Some(listener)
        } else {
            None
        };
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut renew = tokio::time::interval((settings.lease / 3).max(Duration::from_millis(100)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut claim_now = true;
        loop {
            let draining = shared.draining.load(Ordering::SeqCst);
            if draining && tasks.is_empty() {
                break;
            }
            if claim_now && !draining && tasks.len() < settings.slots {
                let wanted = u32::try_from(settings.slots - tasks.len()).unwrap_or(u32::MAX).min(settings.batch);
                let claimed = claim(&shared, wanted).await;
                let got = claimed.len();
                for claim in claimed {
                    let lost = Arc::new(AtomicBool::new(false));
                    lock(&shared.held).insert(claim.item, Held { token: claim.token, lost: lost.clone() });
                    metrics::gauge!("migrate_hub_items_in_flight").increment(1.0);
                    tasks.spawn(process(shared.clone(), claim, lost));
                }
                // A full batch means there may be more: claim again at once if there is room.
                if got > 0 && got == wanted as usize && tasks.len() < settings.slots {
                    continue;
                }
            }
            claim_now = false;
            tokio::select! {
                () = &mut shutdown, if !draining => {
                    tracing::info!(in_flight = tasks.len(), "stopping: no new claims; items not started are handed back");
                    shared.draining.store(true, Ordering::SeqCst);
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(error = %e, "an item task ended abnormally");
                    }
                    claim_now = true;
                }
                woken = wait_for_notification(&mut listener) => {
                    if let Err(e) = woken {
                        // sqlx reconnects on the next recv; polling covers what was missed meanwhile.
                        tracing::warn!(error = %e, "queue notifications interrupted; reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    claim_now = true;
                }
                () = tokio::time::sleep(settings.poll_interval) => claim_now = true,
                _ = renew.tick() => renew_leases(&shared).await,
                _ = heartbeat.tick() => beat(&shared).await,
            }
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps cannot leave it inconsistent (single inserts and removes).
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn wait_for_notification(listener: &mut Option<sqlx::postgres::PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

async fn claim(shared: &Shared, wanted: u32) -> Vec<Claim> {
    let started = Instant::now();
    let result = async {
        let mut conn = shared.pool.acquire().await?;
        storage::queue::claim(&mut conn, shared.worker, shared.settings.lease, wanted).await
    }
    .await;
    metrics::histogram!("migrate_hub_claim_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "claiming failed; retrying at the next wake-up");
            Vec::new()
        }
    }
}

async fn renew_leases(shared: &Shared) {
    let held: Vec<(RunItemId, i64)> = lock(&shared.held).iter().map(|(id, h)| (*id, h.token)).collect();
    if held.is_empty() {
        return;
    }
    let result = async {
        let mut conn = shared.pool.acquire().await?;
        storage::queue::renew(&mut conn, shared.worker, &held, shared.settings.lease).await
    }
    .await;
    match result {
        Ok(renewed) => {
            let map = lock(&shared.held);
            for (id, _) in &held {
                if !renewed.contains(id)
                    && let Some(h) = map.get(id)
                {
                    tracing::warn!(item.id = %id, "lease taken over; this worker stops touching the item");
                    h.lost.store(true, Ordering::SeqCst);
                }
            }
        }
        // The lease check before each statement still protects the items.
        Err(e) => tracing::warn!(error = %e, "renewing leases failed"),
    }
}

async fn beat(shared: &Shared) {
    let result = async {
        let mut conn = shared.pool.acquire().await?;
        storage::workers::heartbeat(&mut conn, shared.worker).await?;
        let depth = storage::queue::depth(&mut conn).await?;
        metrics::gauge!("migrate_hub_queue_depth").set(depth as f64);
        sweep(shared).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "heartbeat failed; retrying at the next tick");
    }
}

/// Ends runs left `running` with every item ended, because the worker that ended the last item died
/// before ending the run. Waits a heartbeat's length first, so the normal path always comes first.
async fn sweep(shared: &Shared) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    let swept = storage::queue::sweep_runs(&mut tx, shared.settings.heartbeat.max(Duration::from_secs(1))).await?;
    for (run, status) in &swept {
        tracing::warn!(run.id = %run, status = %status, "ended a run its last worker left running");
        audit_run(shared, &mut tx, *run, *status).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What applying an item came to, before it is recorded.
enum Verdict {
    Ended {
        status: RunItemStatus,
        code: Option<&'static str>,
        message: Option<String>,
    },
    /// Worth another attempt later (connection trouble, lock timeouts).
    Retry {
        code: &'static str,
        message: String,
    },
    /// Nothing was done and the worker is stopping: hand it back.
    HandBack,
    /// The lease is gone: record nothing.
    Lost,
}

impl Verdict {
    fn failed(code: &'static str, message: impl Into<String>) -> Self {
        Verdict::Ended { status: RunItemStatus::Failed, code: Some(code), message: Some(message.into()) }
    }
}

/// Time spent inside the target's statements, to tell the hub's own overhead apart.
#[derive(Debug, Default)]
struct Timings {
    statements: Duration,
    apply_started: Option<Instant>,
    first_statement: Option<Instant>,
}

#[tracing::instrument(skip_all, fields(run.id = %claim.run, item.id = %claim.item, target.id = %claim.target, attempt = claim.attempt))]
async fn process(shared: Arc<Shared>, claim: Claim, lost: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut timings = Timings::default();
    let verdict = execute(&shared, &claim, &lost, &mut timings).await;
    let (label, recorded) = record(&shared, &claim, verdict, started.elapsed()).await;
    lock(&shared.held).remove(&claim.item);
    metrics::gauge!("migrate_hub_items_in_flight").decrement(1.0);
    metrics::counter!("migrate_hub_items_total", "status" => label).increment(1);
    if let Some(apply_started) = timings.apply_started {
        metrics::histogram!("migrate_hub_item_apply_seconds").record(apply_started.elapsed().as_secs_f64());
        if let Some(first) = timings.first_statement {
            metrics::histogram!("migrate_hub_lock_wait_seconds").record((first - apply_started).as_secs_f64());
        }
    }
    let overhead = started.elapsed().saturating_sub(timings.statements);
    metrics::histogram!("migrate_hub_item_overhead_seconds").record(overhead.as_secs_f64());
    if let Err(e) = recorded {
        // The lease will expire and another worker takes the item over; the target's history decides.
        tracing::error!(error = %e, "cannot record the item's result; its lease will expire and it will be retried");
    }
}

async fn execute(shared: &Shared, claim: &Claim, lost: &Arc<AtomicBool>, timings: &mut Timings) -> Verdict {
    let storage_failed = |e: StorageError| Verdict::Retry { code: "tool_db", message: format!("tool database: {e}") };
    if claim.run_status == RunStatus::Queued
        && let Err(e) = mark_running(shared, claim.run).await
    {
        return storage_failed(e);
    }
    let context = match run_context(shared, claim.run).await {
        Ok(context) => context,
        Err(e) => return storage_failed(e),
    };
    if let Err(reason) = &context.verified {
        return Verdict::failed("checksum_mismatch", reason.clone());
    }
    let target = {
        let mut conn = match shared.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => return storage_failed(e.into()),
        };
        match storage::targets::get(&mut conn, claim.target).await {
            Ok(target) => target,
            Err(e) => return storage_failed(e),
        }
    };
    let direction = context.run.direction;
    let sql = match direction {
        Direction::Up => context.version.up_sql.as_str(),
        Direction::Down => match &context.version.down_sql {
            Some(down) => down.as_str(),
            None => return Verdict::failed("no_down", "this version has no down migration"),
        },
    };
    let statements = match statements_for(sql, &target) {
        Ok(statements) => statements,
        Err((code, message)) => return Verdict::failed(code, message),
    };
    let total = u32::try_from(statements.len()).unwrap_or(u32::MAX);
    let note = format!(
        "attempt {} of {} by {}: {} {} {} on {} ({} statements)",
        claim.attempt,
        claim.max_attempts,
        shared.label,
        direction,
        context.migration.version_key,
        context.migration.name,
        target.name,
        total
    );
    if log_line(shared, claim, None, Some(total), LogLevel::Info, note, None).await == Logged::Lost {
        return Verdict::Lost;
    }
    let password = match password(shared, &target).await {
        Ok(password) => password,
        Err(message) => return Verdict::failed("secret", message),
    };
    let settings = ConnectSettings::for_target(&target, password, shared.settings.connect_timeout);
    let mut conn = match TargetConnection::connect(&settings).await {
        Ok(conn) => conn,
        Err(e) => return Verdict::Retry { code: "connect", message: e.to_string() },
    };
    drop(settings);
    let policy = &context.environment.policy;
    let options = ApplyOptions {
        history: HistoryTable { schema: target.schema.clone(), table: context.project.history_table.clone() },
        lock_name: format!("target:{}", target.id),
        lock_wait: policy.target_lock_wait,
        limits: SessionLimits { lock_timeout: policy.lock_timeout, statement_timeout: policy.statement_timeout },
        allow_out_of_order: policy.allow_out_of_order,
        earlier_versions: context.earlier_versions.clone(),
        run_id: Some(claim.run.to_string()),
        worker: shared.label.chars().take(200).collect(),
    };
    let migration = Migration {
        version: &context.migration.version_key,
        name: context.migration.name.as_str(),
        up_checksum: Checksum::of(&context.version.up_sql),
        direction,
        statements,
        transaction_mode: context.version.transaction_mode,
    };
    timings.apply_started = Some(Instant::now());
    let mut observer =
        ItemObserver { shared, claim, lost: lost.clone(), timings, done: claim.statements_done, confirmed: None };
    let result = apply::apply(&mut conn, &migration, &options, &mut observer).await;
    conn.close().await;
    if lost.load(Ordering::SeqCst) {
        return Verdict::Lost;
    }
    verdict(result, context.version.transaction_mode, target.engine)
}

fn verdict(result: Result<Outcome, ApplyError>, mode: TransactionMode, engine: Engine) -> Verdict {
    // Only a Postgres transaction is rolled back as a whole when the apply stops partway.
    let atomic = mode == TransactionMode::Transaction && engine == Engine::Postgres;
    match result {
        Ok(Outcome::Applied { .. }) => Verdict::Ended { status: RunItemStatus::Succeeded, code: None, message: None },
        Ok(Outcome::Skipped { reason }) => {
            Verdict::Ended { status: RunItemStatus::Skipped, code: None, message: Some(reason.to_owned()) }
        }
        Err(ApplyError::Stopped { index, reason }) => match reason.as_str() {
            LEASE_LOST => Verdict::Lost,
            STOPPING if index == 0 => Verdict::HandBack,
            CANCELLED => Verdict::Ended {
                status: RunItemStatus::Cancelled,
                code: Some("cancelled"),
                message: Some(stopped_message(&reason, index, mode)),
            },
            // The tool database could not confirm the lease. Nothing of it stayed on the target (nothing ran
            // yet, or the transaction was rolled back), so try again later; otherwise the target's history
            // holds a partial apply, which needs recovery rather than a retry.
            _ if index == 0 || atomic => Verdict::Retry { code: "tool_db", message: reason },
            _ => Verdict::failed("stopped", stopped_message(&reason, index, mode)),
        },
        Err(e) if e.is_transient() => Verdict::Retry { code: error_code(&e), message: e.to_string() },
        Err(e) => Verdict::failed(error_code(&e), e.to_string()),
    }
}

fn stopped_message(reason: &str, index: usize, mode: TransactionMode) -> String {
    if index == 0 {
        format!("{reason} before the first statement; nothing was applied")
    } else if mode == TransactionMode::Transaction {
        format!("{reason} before statement {index}; on Postgres the transaction was rolled back")
    } else {
        format!("{reason} before statement {index}; statements before it were applied (see the target's history)")
    }
}

fn error_code(e: &ApplyError) -> &'static str {
    match e {
        ApplyError::LockTimeout(_) => "target_locked",
        ApplyError::Drift { .. } => "drift",
        ApplyError::NeedsRecovery { .. } => "needs_recovery",
        ApplyError::OutOfOrder(_) => "out_of_order",
        ApplyError::NeedsNoTransaction { .. } => "needs_no_transaction",
        ApplyError::Statement { source, .. } if source.is_transient() => "timeout",
        ApplyError::Statement { .. } => "sql_error",
        ApplyError::Stopped { .. } => "stopped",
        ApplyError::Target(_) => "target",
    }
}

const LEASE_LOST: &str = "lease lost";
const STOPPING: &str = "worker stopping";
const CANCELLED: &str = "run cancelled";

/// Records the verdict (fenced by the claim's token); returns a label for metrics.
async fn record(
    shared: &Shared,
    claim: &Claim,
    verdict: Verdict,
    elapsed: Duration,
) -> (&'static str, Result<(), StorageError>) {
    match verdict {
        Verdict::Lost => ("lost", Ok(())),
        Verdict::Ended { status, code, message } => {
            let level = if status == RunItemStatus::Failed { LogLevel::Error } else { LogLevel::Info };
            let line = match &message {
                Some(m) => format!("{status}: {m}"),
                None => status.to_string(),
            };
            log_line(shared, claim, None, None, level, line, None).await;
            let ending = Ending { status, duration: elapsed, error_code: code, error_message: message.as_deref() };
            (status.as_str(), end(shared, claim, &ending).await)
        }
        Verdict::Retry { code, message } if claim.attempt < claim.max_attempts => {
            let delay = backoff(&shared.settings, claim.attempt);
            let line = format!("attempt {} failed ({message}); retrying in {}s", claim.attempt, delay.as_secs());
            log_line(shared, claim, None, None, LogLevel::Warn, line, None).await;
            ("retried", release(shared, claim, delay, false, Some((code, &message))).await)
        }
        Verdict::Retry { code, message } => {
            let message = format!("{message} (gave up after {} attempts)", claim.attempt);
            log_line(shared, claim, None, None, LogLevel::Error, format!("failed: {message}"), None).await;
            let ending = Ending {
                status: RunItemStatus::Failed,
                duration: elapsed,
                error_code: Some(code),
                error_message: Some(&message),
            };
            ("failed", end(shared, claim, &ending).await)
        }
        Verdict::HandBack => {
            log_line(shared, claim, None, None, LogLevel::Info, "worker stopping: handed back".into(), None).await;
            ("handed_back", release(shared, claim, Duration::ZERO, true, None).await)
        }
    }
}

fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    settings.retry_base.saturating_mul(factor).min(settings.retry_max)
}

async fn end(shared: &Shared, claim: &Claim, ending: &Ending<'_>) -> Result<(), StorageError> {
    let mut conn = shared.pool.acquire().await?;
    match storage::queue::finish(&mut conn, claim.item, claim.token, ending).await? {
        Ended::Fenced => {
            tracing::warn!("the lease was taken over before the result could be recorded; discarded");
        }
        Ended::Done { run, still_held, cancelled_pending } => {
            if cancelled_pending > 0 {
                tracing::info!(
                    cancelled = cancelled_pending,
                    "run stops on its first failure: pending items cancelled"
                );
            }
            // While another item is held the run cannot end here: that item's ending will try.
            if still_held == 0 {
                end_run(shared, run).await?;
            }
        }
    }
    Ok(())
}

/// Ends `run` if nothing of it is left, with its audit event; a no-op when another worker did.
async fn end_run(shared: &Shared, run: RunId) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    match storage::queue::end_run(&mut tx, run).await? {
        Some(status) => {
            audit_run(shared, &mut tx, run, status).await?;
            tx.commit().await?;
        }
        None => tx.rollback().await?,
    }
    Ok(())
}

async fn release(
    shared: &Shared,
    claim: &Claim,
    after: Duration,
    give_back_attempt: bool,
    error: Option<(&str, &str)>,
) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    let released = storage::queue::release(&mut tx, claim.item, claim.token, after, give_back_attempt, error).await?;
    if let Some((_, Some(status))) = released {
        audit_run(shared, &mut tx, claim.run, status).await?;
    }
    if released.is_some() {
        storage::queue::notify(&mut tx, claim.run).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn audit_run(
    shared: &Shared,
    tx: &mut storage::PgTransaction<'_>,
    run: RunId,
    status: RunStatus,
) -> Result<(), StorageError> {
    tracing::info!(run.id = %run, status = %status, "run finished");
    let event = audit::Event {
        actor: AuditActor { kind: ActorKind::Worker, user_id: None, label: shared.label.clone() },
        action: format!("run.{status}"),
        object_type: "run".into(),
        object_id: Some(run.to_string()),
        details: serde_json::json!({ "status": status.as_str(), "worker": shared.worker.to_string() }),
        ip: None,
        user_agent: None,
    };
    audit::record(tx, &event).await.map_err(|audit::AuditError::Storage(e)| e)?;
    Ok(())
}

/// `queued` → `running` with its audit event, by whichever worker gets there first.
async fn mark_running(shared: &Shared, run: RunId) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    match storage::runs::set_status(&mut tx, run, RunStatus::Queued, RunStatus::Running, None).await {
        Ok(_) => {
            let event = audit::Event {
                actor: AuditActor { kind: ActorKind::Worker, user_id: None, label: shared.label.clone() },
                action: "run.running".into(),
                object_type: "run".into(),
                object_id: Some(run.to_string()),
                details: serde_json::json!({ "worker": shared.worker.to_string() }),
                ip: None,
                user_agent: None,
            };
            audit::record(&mut tx, &event).await.map_err(|audit::AuditError::Storage(e)| e)?;
            tx.commit().await?;
        }
        // Another worker did it first, or the run was cancelled meanwhile (its items will see that).
        Err(StorageError::Conflict { .. }) => tx.rollback().await?,
        Err(e) => return Err(e),
    }
    Ok(())
}

async fn run_context(shared: &Shared, run: RunId) -> Result<Arc<RunContext>, StorageError> {
    if let Some(context) = lock(&shared.runs).get(&run) {
        return Ok(context.clone());
    }
    let mut conn = shared.pool.acquire().await?;
    let run = storage::runs::get(&mut conn, run).await?;
    let version = storage::versions::get(&mut conn, run.version_id).await?;
    let migration = storage::migrations::get(&mut conn, version.migration_id).await?;
    let project = storage::projects::get(&mut conn, migration.project_id).await?;
    let environment = storage::environments::get(&mut conn, run.environment_id).await?;
    let approvals = storage::approvals::list_for_run(&mut conn, run.id).await?;
    let mut earlier_versions = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let found = storage::migrations::list(&mut conn, project.id, &page).await?;
        earlier_versions
            .extend(found.items.iter().map(|m| m.version_key.clone()).filter(|key| *key < migration.version_key));
        match found.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    let verified = verify(&run, &version, &environment, &approvals);
    let context = Arc::new(RunContext { run, version, migration, project, environment, earlier_versions, verified });
    let mut runs = lock(&shared.runs);
    // Finished runs are not claimed again; keep the cache small on long-lived workers.
    if runs.len() > 1000 {
        runs.clear();
    }
    runs.insert(context.run.id, context.clone());
    Ok(context)
}

/// The checksums recomputed from the stored SQL must equal the stored ones and, where the environment
/// needs approval, those the approvals pinned.
fn verify(
    run: &Run,
    version: &MigrationVersion,
    environment: &Environment,
    approvals: &[domain::model::Approval],
) -> Result<(), String> {
    let current =
        PinnedChecksums { up: Checksum::of(&version.up_sql), down: version.down_sql.as_deref().map(Checksum::of) };
    if current != version.checksums {
        return Err(format!(
            "the stored SQL of this version no longer matches its checksums (up {} recorded, {} now): refusing to apply",
            version.checksums.up.to_hex(),
            current.up.to_hex()
        ));
    }
    let facts = RunFacts { id: run.id, requested_by: run.requested_by, status: run.status, direction: run.direction };
    let decisions: Vec<ApprovalFacts> = approvals
        .iter()
        .map(|a| ApprovalFacts { approver: a.approver, decision: a.decision, direction: a.direction, pinned: a.pinned })
        .collect();
    match approval_state(&environment.policy, &facts, &decisions, &current) {
        ApprovalState::NotRequired | ApprovalState::Approved => Ok(()),
        ApprovalState::Denied => Err("the run was denied".into()),
        ApprovalState::Pending { have, need } => {
            Err(format!("only {have} of {need} approvals are for the content about to be applied: refusing to apply"))
        }
    }
}

/// The statements of `sql`, split by the target's dialect (a version may go to Postgres and MySQL
/// targets alike), with the target's variables substituted.
fn statements_for(sql: &str, target: &Target) -> Result<Vec<String>, (&'static str, String)> {
    const SYNTAXES: &[Syntax] = &[Syntax::DollarBraces, Syntax::RiverTemplate];
    let split = domain::split::split(sql, target.engine.into())
        .map_err(|e| ("split", format!("cannot split the SQL for {}: {e}", target.engine)))?;
    let mut statements = Vec::with_capacity(split.len());
    for statement in &split {
        let text = statement.text(sql);
        let referenced = placeholder::referenced(text, SYNTAXES);
        if referenced.is_empty() {
            statements.push(text.to_owned());
            continue;
        }
        if let Some(missing) = referenced.iter().find(|name| !target.variables.contains_key(**name)) {
            return Err(("placeholder", format!("placeholder {missing:?} has no value on target {}", target.name)));
        }
        let substituted =
            placeholder::substitute(text, &target.variables, SYNTAXES).map_err(|e| ("placeholder", e.to_string()))?;
        statements.push(substituted.into_owned());
    }
    Ok(statements)
}

/// The target's password, held only until the connection is made.
async fn password(shared: &Shared, target: &Target) -> Result<Option<SecretString>, String> {
    resolve_password(&shared.pool, shared.opener.as_ref(), target).await
}

/// A target's password as this process finds it: none, a reference read from this process's environment
/// (`env:NAME`) or a file (`file:/path`), or the sealed one opened with `opener`. The error says what is
/// missing, never a value.
pub async fn resolve_password(
    pool: &PgPool,
    opener: &dyn SecretOpener,
    target: &Target,
) -> Result<Option<SecretString>, String> {
    match &target.secret {
        SecretSource::None => Ok(None),
        SecretSource::Reference { reference } => {
            if let Some(name) = reference.strip_prefix("env:") {
                std::env::var(name)
                    .map(|v| Some(SecretString::from(v)))
                    .map_err(|_| format!("the worker has no environment variable {name} for this target's password"))
            } else if let Some(path) = reference.strip_prefix("file:") {
                tokio::fs::read_to_string(path)
                    .await
                    .map(|v| Some(SecretString::from(v.trim_end_matches(['\r', '\n']).to_owned())))
                    .map_err(|e| format!("cannot read the password file {path}: {}", e.kind()))
            } else {
                Err(format!("unknown secret reference {reference:?} (expected env:NAME or file:/path)"))
            }
        }
        SecretSource::Sealed { .. } => {
            let mut conn = pool.acquire().await.map_err(|e| format!("tool database: {e}"))?;
            let sealed = storage::targets::sealed_secret(&mut conn, target.id)
                .await
                .map_err(|e| format!("tool database: {e}"))?
                .ok_or_else(|| "the target's sealed password is missing".to_owned())?;
            opener.open(target, &sealed).map(Some)
        }
    }
}

/// What writing a log line told about the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    /// Written while the lease was held; the run's status at that moment.
    Held(RunStatus),
    /// The lease is gone: nothing was written.
    Lost,
    /// The tool database did not answer; the line is lost, the lease unknown.
    Unknown,
}

/// Appends a line to the item's log, fenced by the claim's token.
async fn log_line(
    shared: &Shared,
    claim: &Claim,
    done: Option<u32>,
    total: Option<u32>,
    level: LogLevel,
    message: String,
    statement: Option<(usize, Duration, u64)>,
) -> Logged {
    let line = NewLogLine {
        level,
        message,
        statement_index: statement.map(|(i, _, _)| u32::try_from(i).unwrap_or(u32::MAX)),
        duration_ms: statement.map(|(_, d, _)| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        rows_affected: statement.map(|(_, _, rows)| rows),
    };
    let result = async {
        let mut conn = shared.pool.acquire().await?;
        storage::queue::log(&mut conn, claim.item, claim.token, done, total, &line).await
    }
    .await;
    match result {
        Ok(Some(status)) => Logged::Held(status),
        Ok(None) => Logged::Lost,
        Err(e) => {
            // A log line is not worth failing a migration over; the lease check decides about going on.
            tracing::warn!(error = %e, "cannot write a log line");
            Logged::Unknown
        }
    }
}

/// Checks the lease and the run before each statement, and logs each statement after it ran.
///
/// The log line written right after statement `i` is fenced by the lease (token and expiry) and returns
/// the run's status, so it is the check before statement `i + 1`: one tool-database round trip per
/// statement instead of two. The first statement (after the target lock, which may take long) and any
/// statement whose preceding line could not be written get an explicit check.
struct ItemObserver<'a> {
    shared: &'a Shared,
    claim: &'a Claim,
    lost: Arc<AtomicBool>,
    timings: &'a mut Timings,
    done: u32,
    /// The run's status as confirmed by the lease-fenced log line of the previous statement.
    confirmed: Option<RunStatus>,
}

impl Observer for ItemObserver<'_> {
    async fn before_statement(&mut self, index: usize) -> Result<(), String> {
        if self.timings.first_statement.is_none() {
            self.timings.first_statement = Some(Instant::now());
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(LEASE_LOST.into());
        }
        if index == 0 && self.shared.draining.load(Ordering::SeqCst) {
            return Err(STOPPING.into());
        }
        if index > 0
            && let Some(status) = self.confirmed.take()
        {
            return if status == RunStatus::Cancelled { Err(CANCELLED.into()) } else { Ok(()) };
        }
        let checked = async {
            let mut conn = self.shared.pool.acquire().await?;
            storage::queue::check(&mut conn, self.claim.item, self.claim.token).await
        }
        .await;
        match checked {
            Ok(Some(RunStatus::Cancelled)) => Err(CANCELLED.into()),
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(LEASE_LOST.into())
            }
            // Without the tool database the lease cannot be proven: stop rather than risk a takeover.
            Err(e) => Err(format!("cannot check the lease ({e})")),
        }
    }

    async fn after_statement(&mut self, index: usize, statement: &str, elapsed: Duration, rows: u64) {
        self.timings.statements += elapsed;
        self.done = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let first = statement.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        let first: String = first.chars().take(200).collect();
        let message = format!("statement {index}: {first}");
        let logged = log_line(
            self.shared,
            self.claim,
            Some(self.done),
            None,
            LogLevel::Info,
            message,
            Some((index, elapsed, rows)),
        )
        .await;
        self.confirmed = None;
        match logged {
            Logged::Held(status) => self.confirmed = Some(status),
            Logged::Lost => self.lost.store(true, Ordering::SeqCst),
            Logged::Unknown => {}
        }
    }
}
