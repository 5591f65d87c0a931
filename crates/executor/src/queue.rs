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

use domain::enums::{ActorKind, Direction, Engine, LogLevel, Resolution, TransactionMode};
use domain::ids::{RunId, RunItemId, TargetId, WorkerId};
use domain::model::{AuditActor, Environment, NewLogLine, Project, ReleaseVersion, Run, RunAction, Target};
use domain::placeholder;
use domain::release::{self, TARGET_SYNTAXES};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::VersionKey;
use secrecy::SecretString;
use storage::queue::{Claim, Ended, Ending, Progress};
use storage::{PageRequest, PgPool, StorageError};
use tokio::task::JoinSet;

use crate::adopt;
use domain::webhooks::WebhookEvent;

use crate::apply::{
    self, ApplyError, ApplyOptions, Clock, LockRetries, Migration, Observer, Outcome, ReleaseFailed, StopAt,
};
use crate::history::{HistoryStatus, HistoryTable};
use crate::recovery::{self, Recovered, RecoveryError, SeenRow};
pub use crate::secrets::{NoMasterKey, SecretOpener, resolve_password};
use crate::target::{ConnectSettings, LockSession, SessionLimits, TargetConnection, TargetError};

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
    /// The key of the audit chain the worker's run events extend (`None`: unkeyed, refused once it is keyed).
    pub audit_key: Option<audit::ChainKey>,
    /// The clock maintenance windows, run schedules and webhook signatures are read on (tests inject one).
    pub clock: Clock,
    /// The hub's address, for the links in webhook events (`None`: events carry no link).
    pub hub_url: Option<String>,
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
            audit_key: None,
            clock: Clock::system(),
            hub_url: None,
        }
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
    /// The release, in apply order.
    versions: Vec<ReleaseVersion>,
    project: Project,
    environment: Environment,
    /// Every version key of the project, for the out-of-order check.
    project_versions: Vec<VersionKey>,
    /// `Err(reason)` when the stored SQL no longer matches the pinned content or its approvals.
    verified: Result<(), String>,
    /// The environment's drift check interval (`None`: drift is not checked, and no baseline is taken).
    drift_every: Option<u32>,
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
    /// The tool database's identity, read once: every target is compared with it before an apply.
    tool_identity: tokio::sync::OnceCell<storage::targets::DatabaseIdentity>,
    /// The connection claims go through, kept out of the pool between them, with when it was last used:
    /// the claim's generic plan takes milliseconds to build, and every pooled connection built its own
    /// (see ARCHITECTURE.md, "claim connection").
    claimer: tokio::sync::Mutex<Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, Instant)>>,
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
                tool_identity: tokio::sync::OnceCell::new(),
                claimer: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Claims one item, if one is claimable, and applies it to the end, as the loop of [`run`](Self::run)
    /// does for each; `None` when nothing was claimable. Tests drive the queue step by step with it
    /// instead of running the loop and waiting.
    pub async fn try_execute_one(&self) -> Option<ItemOutcome> {
        let (sent, claimed) = claim(&self.shared, 1).await;
        let claim = claimed.into_iter().next()?;
        let lost = Arc::new(AtomicBool::new(false));
        lock(&self.shared.held).insert(claim.item, Held { token: claim.token, lost: lost.clone() });
        metrics::gauge!("migrate_hub_items_in_flight").increment(1.0);
        Some(process(self.shared.clone(), claim, sent, lost).await)
    }

    /// Runs the drift checks due now (the environments' schedules, on the worker's clock), as the worker's
    /// background task does. Tests drive drift checks with it.
    pub async fn try_check_drift(&self) -> Result<Vec<DriftChecked>, StorageError> {
        check_drift(&self.shared).await
    }

    /// Sends the webhook deliveries due now, once each, as the worker's delivery task does; what each
    /// attempt came to. Tests drive deliveries with it.
    pub async fn try_deliver_webhooks(&self) -> Result<Vec<crate::webhooks::Sent>, StorageError> {
        let shared = &self.shared;
        crate::webhooks::deliver_due(
            &shared.pool,
            shared.opener.as_ref(),
            &shared.settings.clock,
            &crate::webhooks::client(),
        )
        .await
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
        // Webhook deliveries and drift checks go on beside the items, until the worker stops.
        let stop_deliveries = Arc::new(AtomicBool::new(false));
        let deliveries = tokio::spawn(background(shared.clone(), stop_deliveries.clone()));
        let mut tasks: JoinSet<ItemOutcome> = JoinSet::new();
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
                let (sent, claimed) = claim(&shared, wanted).await;
                let got = claimed.len();
                for claim in claimed {
                    let lost = Arc::new(AtomicBool::new(false));
                    lock(&shared.held).insert(claim.item, Held { token: claim.token, lost: lost.clone() });
                    metrics::gauge!("migrate_hub_items_in_flight").increment(1.0);
                    tasks.spawn(process(shared.clone(), claim, sent, lost));
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
        stop_deliveries.store(true, Ordering::SeqCst);
        deliveries.abort();
        // Back to the pool, which its owner may close next.
        *shared.claimer.lock().await = None;
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

/// Claims up to `wanted` items; with them, when the claim was sent (no later than the leases were
/// confirmed, see [`Journal::new`]).
async fn claim(shared: &Shared, wanted: u32) -> (Instant, Vec<Claim>) {
    let started = Instant::now();
    let result = claim_through(shared, &mut *shared.claimer.lock().await, wanted).await;
    metrics::histogram!("migrate_hub_claim_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(claims) => (started, claims),
        Err(e) => {
            tracing::warn!(error = %e, "claiming failed; retrying at the next wake-up");
            (started, Vec::new())
        }
    }
}

/// Claims on the worker's claim connection (see `Shared::claimer`), kept between claims, pinged first
/// when it sat idle for over a second as the pool's are. A claim that failed on it is sent once more on a
/// connection from the pool, so that a connection the server ended since costs no wake-up; the items a
/// claim may have taken before its connection broke are taken back when their leases expire, as after
/// any failed claim. The connection is kept only in a pool of three or more (the listener holds one, and
/// the items and heartbeats need one).
async fn claim_through(
    shared: &Shared,
    claimer: &mut Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, Instant)>,
    wanted: u32,
) -> Result<Vec<Claim>, StorageError> {
    let (worker, lease) = (shared.worker, shared.settings.lease);
    if let Some((mut conn, used)) = claimer.take() {
        let alive = used.elapsed() <= Duration::from_secs(1) || sqlx::Connection::ping(&mut *conn).await.is_ok();
        let claimed = if alive {
            Some(storage::queue::claim_at(&mut conn, worker, lease, wanted, shared.settings.clock.now()).await)
        } else {
            None
        };
        match claimed {
            Some(Ok(claims)) => {
                *claimer = Some((conn, Instant::now()));
                return Ok(claims);
            }
            Some(Err(e)) => tracing::debug!(error = %e, "claiming on the kept connection failed; once more on another"),
            None => tracing::debug!("the kept claim connection does not answer; claiming on another"),
        }
        // Not back into the pool: another would get it and fail in turn.
        conn.close_on_drop();
    }
    let mut conn = shared.pool.acquire().await?;
    let claims = storage::queue::claim_at(&mut conn, worker, lease, wanted, shared.settings.clock.now()).await?;
    if shared.pool.options().get_max_connections() >= 3 {
        *claimer = Some((conn, Instant::now()));
    }
    Ok(claims)
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
        let depth = {
            let mut conn = shared.pool.acquire().await?;
            storage::workers::heartbeat(&mut conn, shared.worker).await?;
            storage::queue::depth(&mut conn).await?
        };
        metrics::gauge!("migrate_hub_queue_depth").set(depth as f64);
        // The connection above is back in the pool first: holding one while waiting for another deadlocks
        // a small pool (the listener holds one of its connections for good).
        sweep(shared).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "heartbeat failed; retrying at the next tick");
    }
}

/// Ends runs left `running` with every item ended, because the worker that ended the last item died
/// before ending the run, and takes the wave steps such a worker left undone (a halt, or a wave that
/// starts by itself). Waits a heartbeat's length first, so the normal path always comes first.
async fn sweep(shared: &Shared) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    let swept = storage::queue::sweep_runs(&mut tx, shared.settings.heartbeat.max(Duration::from_secs(1))).await?;
    for (run, status) in &swept {
        tracing::warn!(run.id = %run, status = %status, "ended a run its last worker left running");
        audit_run(shared, &mut tx, *run, *status).await?;
    }
    tx.commit().await?;
    let idle = shared.settings.heartbeat.max(Duration::from_secs(1));
    let stuck = {
        let mut conn = shared.pool.acquire().await?;
        storage::queue::sweep_waves(&mut conn, idle).await?
    };
    for run in stuck {
        tracing::warn!(run.id = %run, "moving on the waves of a run its last worker left");
        wave_step(shared, run).await?;
    }
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
    /// The maintenance window closed between two migrations: hand the rest back for the next window.
    Wait {
        message: String,
    },
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
    /// Inside the release's statements and, for a migration in a transaction, its `COMMIT` (the work of
    /// its DDL; sqlx and every other tool commit the same), as the server's clock measured them.
    sql: Duration,
    apply_started: Option<Instant>,
    first_statement: Option<Instant>,
    /// Before connecting to the target (run context, target, statements, secret).
    prepared: Option<Instant>,
    /// The target's session is open (before the check that it is not the tool database).
    opened: Option<Instant>,
    connected: Option<Instant>,
    applied: Option<Instant>,
    /// Time spent writing the journal before statements.
    journal: Duration,
    /// Whether the release is the project's first on the target (no history row of it there when the
    /// history was read under the lock); `None` when the history was not read.
    first_release: Option<bool>,
}

impl Timings {
    /// The `first_release` label of the item's overhead metrics: a first release usually creates the
    /// history table, a catalog write later releases no longer pay.
    fn first_release_label(&self) -> &'static str {
        match self.first_release {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        }
    }

    /// The item's phases outside its SQL, for an item that reached its target's statements: before
    /// connecting (run context, statements, secret), opening the target's session (with the tool-database
    /// check where it has a round trip of its own), from there to the first statement (lock, limits,
    /// history), what the release's messages cost beyond its SQL (marks, history rows, round trips; and the
    /// drift baseline, where the environment takes one), and the item's recording from then on.
    fn phases(&self, started: Instant) -> Vec<(&'static str, Duration)> {
        let (Some(prepared), Some(connected), Some(first), Some(applied)) =
            (self.prepared, self.connected, self.first_statement, self.applied)
        else {
            return Vec::new();
        };
        vec![
            ("prepare", prepared.saturating_duration_since(started)),
            ("connect", connected.saturating_duration_since(prepared)),
            ("lock_and_history", first.saturating_duration_since(connected)),
            ("release_beyond_sql", applied.saturating_duration_since(first).saturating_sub(self.sql)),
            ("record", applied.elapsed()),
        ]
    }
}

/// What became of one claimed item (see [`QueueWorker::try_execute_one`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub run: RunId,
    pub item: RunItemId,
    pub target: TargetId,
    /// `succeeded`, `skipped`, `failed`, `cancelled`, `retried`, `handed_back` or `lost`.
    pub result: &'static str,
}

#[tracing::instrument(skip_all, fields(run.id = %claim.run, item.id = %claim.item, target.id = %claim.target.id, attempt = claim.attempt))]
async fn process(shared: Arc<Shared>, claim: Claim, claimed: Instant, lost: Arc<AtomicBool>) -> ItemOutcome {
    let started = Instant::now();
    let mut timings = Timings::default();
    let mut journal = Journal::new(&claim, claimed);
    let verdict = execute(&shared, &claim, &lost, &mut timings, &mut journal).await;
    let (label, recorded) = record(&shared, &claim, verdict, started.elapsed(), &mut journal).await;
    lock(&shared.held).remove(&claim.item);
    metrics::gauge!("migrate_hub_items_in_flight").decrement(1.0);
    metrics::counter!("migrate_hub_items_total", "status" => label).increment(1);
    if let Some(apply_started) = timings.apply_started {
        metrics::histogram!("migrate_hub_item_apply_seconds").record(apply_started.elapsed().as_secs_f64());
        if let Some(first) = timings.first_statement {
            metrics::histogram!("migrate_hub_lock_wait_seconds").record((first - apply_started).as_secs_f64());
        }
    }
    let overhead = started.elapsed().saturating_sub(timings.sql);
    let first = timings.first_release_label();
    metrics::histogram!("migrate_hub_item_overhead_seconds", "first_release" => first).record(overhead.as_secs_f64());
    // Where that overhead goes, phase by phase (`bench fleet` prints their medians beside it).
    for (phase, took) in timings.phases(started) {
        metrics::histogram!("migrate_hub_item_phase_seconds", "phase" => phase, "first_release" => first)
            .record(took.as_secs_f64());
    }
    let since =
        |from: Instant, to: Option<Instant>| to.map(|t| t.saturating_duration_since(from).as_secs_f64() * 1000.0);
    tracing::debug!(
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        sql_ms = timings.sql.as_secs_f64() * 1000.0,
        prepare_ms = since(started, timings.prepared),
        connect_ms = timings.prepared.and_then(|p| since(p, timings.connected)),
        open_ms = timings.prepared.and_then(|p| since(p, timings.opened)),
        lock_and_history_ms = timings.connected.and_then(|c| since(c, timings.first_statement)),
        apply_ms = timings.connected.and_then(|c| since(c, timings.applied)),
        journal_ms = timings.journal.as_secs_f64() * 1000.0,
        record_ms = timings.applied.map(|a| a.elapsed().as_secs_f64() * 1000.0),
        first_release = first,
        result = label,
        "item timings"
    );
    if let Err(e) = recorded {
        // The lease will expire and another worker takes the item over; the target's history decides.
        tracing::error!(error = %e, "cannot record the item's result; its lease will expire and it will be retried");
    }
    ItemOutcome { run: claim.run, item: claim.item, target: claim.target.id, result: label }
}

/// Milliseconds, rounded.
fn rounded_ms(d: Duration) -> u64 {
    u64::try_from((d.as_micros() + 500) / 1000).unwrap_or(u64::MAX)
}

/// The name of the lock a worker takes on a target for the hub's items (see `target::TargetConnection::lock`).
pub fn target_lock_name(target: TargetId) -> String {
    format!("target:{target}")
}

/// A release's statements for one target: per version, split by the target's dialect with its variables
/// substituted.
fn release_statements(context: &RunContext, target: &Target) -> Result<Vec<Vec<String>>, (&'static str, String)> {
    context
        .versions
        .iter()
        .map(|v| {
            let sql = match context.run.direction {
                Direction::Up => v.version.up_sql.as_str(),
                Direction::Down => v
                    .version
                    .down_sql
                    .as_deref()
                    .ok_or_else(|| ("no_down", format!("{} has no down script", v.version_key)))?,
            };
            statements_for(sql, target).map_err(|(code, message)| (code, format!("{}: {message}", v.version_key)))
        })
        .collect()
}

async fn execute(
    shared: &Shared,
    claim: &Claim,
    lost: &Arc<AtomicBool>,
    timings: &mut Timings,
    journal: &mut Journal,
) -> Verdict {
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
    let target = &claim.target;
    let direction = context.run.direction;
    let statements = match (release_statements(&context, target), &context.run.action) {
        (Ok(statements), _) => statements,
        // Only the statement counts of a baseline or adoption are used (for the history rows), and a mark
        // runs nothing: a version this target cannot split or fill in is recorded with what it has.
        (Err(_), RunAction::Baseline | RunAction::Adopt { .. }) => {
            context.versions.iter().map(|_| Vec::new()).collect()
        }
        (Err(_), RunAction::Recovery { resolution: Resolution::MarkApplied | Resolution::MarkRolledBack, .. }) => {
            vec![Vec::new()]
        }
        (Err((code, message)), _) => return Verdict::failed(code, message),
    };
    let count = context.versions.len();
    let total: usize = statements.iter().map(Vec::len).sum();
    let span = match (context.versions.first(), context.versions.last()) {
        (Some(first), Some(last)) if count > 1 => format!("{} → {}", first.version_key, last.version_key),
        (Some(only), _) => format!("{} {}", only.version_key, only.name),
        _ => String::new(),
    };
    journal.line(
        LogLevel::Info,
        None,
        format!(
            "attempt {} of {} by {}: {} of {count} migration{} ({span}) on {}{}",
            claim.attempt,
            claim.max_attempts,
            shared.label,
            match &context.run.action {
                RunAction::Release => format!("{direction} release"),
                RunAction::Recovery { resolution, seen } => format!(
                    "recovery ({resolution}) of the row seen {} at statement {} of {}",
                    seen.status, seen.statements_done, seen.statements_total
                ),
                action => action.describe(),
            },
            plural(count),
            target.name,
            match &context.run.action {
                RunAction::Release => format!(" ({total} statements)"),
                _ => String::new(),
            },
        ),
        None,
    );
    journal.progress.migrations_total = Some(u32::try_from(count).unwrap_or(u32::MAX));
    let password = match password(shared, target).await {
        Ok(password) => password,
        Err(message) => return Verdict::failed("secret", message),
    };
    let settings = ConnectSettings::for_target(target, password, shared.settings.connect_timeout);
    timings.prepared = Some(Instant::now());
    let (lock_session, releasing) = LockSession::for_statements(statements.iter().flatten().map(String::as_str));
    if let Some(what) = releasing {
        journal.line(
            LogLevel::Info,
            None,
            format!("the release's SQL names {what}, so the target lock is held in a session of its own"),
            None,
        );
    }
    let mut conn = match TargetConnection::connect(&settings, lock_session).await {
        Ok(conn) => conn,
        Err(e) => return Verdict::Retry { code: "connect", message: e.to_string() },
    };
    timings.opened = Some(Instant::now());
    let tool = match shared.tool_identity.get_or_try_init(|| crate::secrets::tool_identity(&shared.pool)).await {
        Ok(tool) => tool,
        Err(refused) if refused.transient => return Verdict::Retry { code: "tool_db", message: refused.message },
        Err(refused) => return Verdict::failed("tool_database", refused.message),
    };
    if context.run.action == RunAction::Release {
        // Checked in the message that takes the target's lock, ahead of it: no round trip of its own.
        conn.forbid(crate::secrets::database_id(tool));
    } else if crate::secrets::is_database(tool, &mut conn).await {
        // A baseline or adoption reads the target before it locks: refused before anything is read.
        return Verdict::failed("tool_database", crate::secrets::TOOL_DATABASE);
    }
    drop(settings);
    timings.connected = Some(Instant::now());
    let policy = &context.environment.policy;
    let options = ApplyOptions {
        history: HistoryTable {
            schema: target.schema.clone(),
            table: context.project.history_table.clone(),
            project: context.project.id.to_string(),
        },
        lock_name: target_lock_name(target.id),
        lock_wait: policy.target_lock_wait,
        limits: SessionLimits { lock_timeout: policy.lock_timeout, statement_timeout: policy.statement_timeout },
        allow_out_of_order: policy.allow_out_of_order,
        earlier_versions: context.project_versions.clone(),
        run_id: Some(claim.run.to_string()),
        worker: shared.label.chars().take(200).collect(),
        lock_retries: LockRetries { attempts: u32::from(policy.lock_retries), max_delay: policy.lock_retry_max_delay },
        stop_at: claim.window_closes_at.map(|at| StopAt { at, clock: shared.settings.clock.clone() }),
    };
    let migrations: Vec<Migration<'_>> = context
        .versions
        .iter()
        .zip(statements)
        .map(|(v, statements)| Migration {
            version: &v.version_key,
            name: v.name.as_str(),
            up_checksum: v.version.checksums.up,
            direction,
            statements,
            transaction_mode: v.version.transaction_mode,
        })
        .collect();
    timings.apply_started = Some(Instant::now());
    let mut observer = ItemObserver {
        shared,
        claim,
        lost: lost.clone(),
        timings,
        journal,
        context: &context,
        current: 0,
        commit: None,
    };
    let result = match &context.run.action {
        RunAction::Release => Ok(apply::apply_release(&mut conn, &migrations, &options, &mut observer).await),
        action => Err(act(&mut conn, action, &migrations, &options, &mut observer).await),
    };
    // Where the environment checks for drift, the schema a successful release leaves is the baseline.
    if let (Ok(Ok(_)), Some(every)) = (&result, context.drift_every)
        && !lost.load(Ordering::SeqCst)
    {
        take_baseline(shared, &mut conn, target, claim.run, every).await;
    }
    // The lock is already let go of (or goes with the session): nothing here waits for the goodbye.
    tokio::spawn(conn.close());
    timings.applied = Some(Instant::now());
    if lost.load(Ordering::SeqCst) {
        return Verdict::Lost;
    }
    let result = match result {
        Ok(result) => result,
        Err(Acted { verdict, summary }) => {
            if let Some(summary) = summary {
                journal.line(LogLevel::Info, None, summary, None);
            }
            return verdict;
        }
    };
    match result {
        Ok(outcomes) => {
            let applied = outcomes.iter().filter(|o| matches!(o, Outcome::Applied { .. })).count();
            if applied == 0 {
                let reason = if direction == Direction::Up {
                    "every migration of the release was already applied with the same checksum"
                } else {
                    "no migration of the release was applied on this target"
                };
                Verdict::Ended { status: RunItemStatus::Skipped, code: None, message: Some(reason.to_owned()) }
            } else {
                // A summary for the log only: the item's error columns stay empty on success.
                let done = if direction == Direction::Up { "applied" } else { "reverted" };
                let summary = format!("{applied} of {count} migrations {done}, {} skipped", count - applied);
                journal.line(LogLevel::Info, None, summary, None);
                Verdict::Ended { status: RunItemStatus::Succeeded, code: None, message: None }
            }
        }
        Err(failed) => {
            let version = context.versions.get(failed.position);
            let mode = version.map_or(TransactionMode::Transaction, |v| v.version.transaction_mode);
            let key = version.map(|v| v.version_key.to_string()).unwrap_or_default();
            let ran_before = failed.completed.iter().any(|o| matches!(o, Outcome::Applied { .. }));
            verdict(failed, &key, mode, target.engine, ran_before)
        }
    }
}

/// What a baseline, adoption or recovery came to on one target, with a line for the item's log.
struct Acted {
    verdict: Verdict,
    summary: Option<String>,
}

/// Carries out a run that is not a release on one target, under the target's lock (`options`): records the
/// pinned versions as applied (baseline), those another tool applied (adoption, read from its history now
/// and planned against the pinned versions, which the request-time read chose), or gets the dirty row of
/// the one pinned version out of its state if it is still the row seen at request (recovery).
async fn act(
    conn: &mut TargetConnection,
    action: &RunAction,
    migrations: &[Migration<'_>],
    options: &ApplyOptions,
    observer: &mut ItemObserver<'_>,
) -> Acted {
    let ended = |status: RunItemStatus, summary: String| Acted {
        verdict: Verdict::Ended { status, code: None, message: None },
        summary: Some(summary),
    };
    let failed = |code: &'static str, message: String| Acted { verdict: Verdict::failed(code, message), summary: None };
    let retry =
        |code: &'static str, message: String| Acted { verdict: Verdict::Retry { code, message }, summary: None };
    let candidates: Vec<adopt::Candidate<'_>> = migrations
        .iter()
        .zip(&observer.context.versions)
        .map(|(m, v)| adopt::Candidate::of_version(v, m.statements.len()))
        .collect();
    let recorded = |written: usize, already: usize, what: &str| {
        let summary =
            format!("{written} version{} recorded as applied ({what}), {already} already were", plural(written));
        if written == 0 {
            Acted {
                verdict: Verdict::Ended {
                    status: RunItemStatus::Skipped,
                    code: None,
                    message: Some(format!("every version was already recorded as applied ({what})")),
                },
                summary: None,
            }
        } else {
            ended(RunItemStatus::Succeeded, summary)
        }
    };
    let adopt_failed = |e: adopt::AdoptError| match e {
        adopt::AdoptError::LockTimeout(waited) => retry(
            "target_locked",
            format!("the target lock is held by another session (waited {waited:?}); nothing was recorded"),
        ),
        adopt::AdoptError::Target(e) if e.is_transient() => retry("target", e.to_string()),
        adopt::AdoptError::Target(e) => failed("target", e.to_string()),
        e => failed("adopt_refused", e.to_string()),
    };
    match action {
        RunAction::Release => failed("internal", "a release is not carried out here".into()),
        RunAction::Baseline => {
            let chosen: Vec<usize> = (0..candidates.len()).collect();
            let options = ApplyOptions { worker: source("baseline", options), ..options.clone() };
            match adopt::record(conn, &options, &candidates, &chosen).await {
                Ok((written, already)) => recorded(written, already, "baseline"),
                Err(e) => adopt_failed(e),
            }
        }
        RunAction::Adopt { from, table } => {
            let foreign = match adopt::read_foreign(conn, *from, table.as_deref()).await {
                Ok(foreign) => foreign,
                Err(e) => return adopt_failed(e),
            };
            for note in &foreign.notes {
                observer.journal.line(LogLevel::Info, None, note.clone(), None);
            }
            let chosen = match adopt::plan(*from, &foreign, &candidates) {
                Ok(chosen) => chosen,
                Err(adopt::AdoptError::Unknown { versions, .. }) => {
                    return failed(
                        "adopt_refused",
                        format!(
                            "{from}'s history now holds {} that this adoption did not pin (it changed since the request, \
                             or the project lacks them); nothing was recorded: request the adoption again",
                            versions.join(", ")
                        ),
                    );
                }
                Err(e) => return adopt_failed(e),
            };
            let what = format!("adopted from {from}");
            let options = ApplyOptions { worker: source(&what, options), ..options.clone() };
            match adopt::record(conn, &options, &candidates, &chosen).await {
                Ok((written, already)) => recorded(written, already, &what),
                Err(e) => adopt_failed(e),
            }
        }
        RunAction::Recovery { resolution, seen } => {
            let Some(migration) = migrations.first() else {
                return failed("internal", "a recovery pins one version".into());
            };
            let Some(status) = HistoryStatus::parse(&seen.status) else {
                return failed("row_changed", format!("the row seen at request has status {:?}", seen.status));
            };
            let seen = SeenRow { status, statements_done: seen.statements_done, checksum: seen.checksum.clone() };
            match recovery::recover(conn, migration, *resolution, Some(&seen), options, observer).await {
                Ok(Recovered::MarkedApplied) => {
                    ended(RunItemStatus::Succeeded, format!("{} marked applied", migration.version))
                }
                Ok(Recovered::MarkedRolledBack) => ended(
                    RunItemStatus::Succeeded,
                    format!(
                        "{} marked rolled back: its history row is gone, the version is pending",
                        migration.version
                    ),
                ),
                Ok(Recovered::Resumed { statements }) => ended(
                    RunItemStatus::Succeeded,
                    format!(
                        "{} resumed: {statements} remaining statement{} ran",
                        migration.version,
                        plural(statements)
                    ),
                ),
                Err(e @ RecoveryError::LockTimeout { .. }) => retry("target_locked", e.to_string()),
                Err(e @ RecoveryError::Changed { .. }) => failed("row_changed", e.to_string()),
                Err(e @ (RecoveryError::NoRow(_) | RecoveryError::NotDirty(_))) => failed("not_dirty", e.to_string()),
                Err(e @ RecoveryError::CannotResume { .. }) => failed("cannot_resume", e.to_string()),
                Err(RecoveryError::Target(e)) if e.is_transient() => retry("target", e.to_string()),
                Err(RecoveryError::Target(e)) => failed("target", e.to_string()),
                Err(RecoveryError::Apply(e)) => failed(
                    error_code(&e),
                    format!("{}: {e} (the row records how far it got; see the target's history)", migration.version),
                ),
            }
        }
    }
}

/// What a recorded history row says about where it came from: `adopted from goose by <worker>`.
fn source(what: &str, options: &ApplyOptions) -> String {
    format!("{what} by {}", options.worker).chars().take(200).collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The verdict on a release that stopped at one of its migrations (`key`). `ran_before`: an earlier
/// migration of the release was applied on this target in this attempt.
fn verdict(failed: ReleaseFailed, key: &str, mode: TransactionMode, engine: Engine, ran_before: bool) -> Verdict {
    // Only a Postgres transaction is rolled back as a whole when the apply stops partway.
    let atomic = mode == TransactionMode::Transaction && engine == Engine::Postgres;
    let e = failed.error;
    match e {
        ApplyError::Target(TargetError::Forbidden) => Verdict::failed("tool_database", crate::secrets::TOOL_DATABASE),
        ApplyError::Stopped { index, reason } => match reason.as_str() {
            LEASE_LOST => Verdict::Lost,
            STOPPING if index == 0 && !ran_before => Verdict::HandBack,
            CANCELLED => Verdict::Ended {
                status: RunItemStatus::Cancelled,
                code: Some("cancelled"),
                message: Some(stopped_message(&reason, key, index, mode)),
            },
            // The tool database could not confirm the lease. Nothing of this migration stayed on the target
            // (nothing ran yet, or the transaction was rolled back), so try again later: the history skips what
            // was applied. Otherwise the target's history holds a partial apply, which needs recovery.
            _ if index == 0 || atomic => Verdict::Retry { code: "tool_db", message: format!("{key}: {reason}") },
            _ => Verdict::failed("stopped", stopped_message(&reason, key, index, mode)),
        },
        // The engine already tried again as the environment's policy says (`lock_retries`): a later attempt
        // of the item would only wait as long again, and outside a transaction it would find the row dirty.
        e @ ApplyError::Statement { .. } if matches!(&e, ApplyError::Statement { source, .. } if source.is_lock_timeout()) => {
            Verdict::failed(
                "lock_timeout",
                format!("{key}: {e} (still blocked after the environment's lock retries; see who holds the lock)"),
            )
        }
        e @ ApplyError::WindowClosed { .. } => Verdict::Wait { message: format!("before {key}: {e}") },
        e if e.is_transient() => Verdict::Retry { code: error_code(&e), message: format!("{key}: {e}") },
        e => Verdict::failed(error_code(&e), format!("{key}: {e}")),
    }
}

fn stopped_message(reason: &str, key: &str, index: usize, mode: TransactionMode) -> String {
    if index == 0 {
        format!("{reason} before the first statement of {key}; nothing of it was applied")
    } else if mode == TransactionMode::Transaction {
        format!("{reason} before statement {} of {key}; on Postgres its transaction was rolled back", index + 1)
    } else {
        format!(
            "{reason} before statement {} of {key}; statements before it were applied (see the target's history)",
            index + 1
        )
    }
}

fn error_code(e: &ApplyError) -> &'static str {
    match e {
        ApplyError::LockTimeout { .. } => "target_locked",
        ApplyError::Drift { .. } => "drift",
        ApplyError::NeedsRecovery { .. } => "needs_recovery",
        ApplyError::OutOfOrder(_) => "out_of_order",
        ApplyError::NeedsNoTransaction { .. } => "needs_no_transaction",
        ApplyError::Statement { source, .. } if source.is_lock_timeout() => "lock_timeout",
        ApplyError::Statement { source, .. } if source.is_transient() => "timeout",
        ApplyError::Statement { .. } => "sql_error",
        ApplyError::Stopped { .. } => "stopped",
        ApplyError::WindowClosed { .. } => "window_closed",
        ApplyError::Target(_) => "target",
    }
}

const LEASE_LOST: &str = "lease lost";
const STOPPING: &str = "worker stopping";
const CANCELLED: &str = "run cancelled";

/// Records the verdict (fenced by the claim's token) after the journal's last lines; returns a label for
/// metrics.
async fn record(
    shared: &Shared,
    claim: &Claim,
    verdict: Verdict,
    elapsed: Duration,
    journal: &mut Journal,
) -> (&'static str, Result<(), StorageError>) {
    match verdict {
        Verdict::Lost => ("lost", Ok(())),
        Verdict::Ended { status, code, message } => {
            let level = if status == RunItemStatus::Failed { LogLevel::Error } else { LogLevel::Info };
            let line = match &message {
                Some(m) => format!("{status}: {m}"),
                None => status.to_string(),
            };
            journal.line(level, None, line, None);
            let ending = Ending { status, duration: elapsed, error_code: code, error_message: message.as_deref() };
            (status.as_str(), end(shared, claim, &ending, journal).await)
        }
        Verdict::Retry { code, message } if claim.attempt < claim.max_attempts => {
            let delay = backoff(&shared.settings, claim.attempt);
            let line = format!("attempt {} failed ({message}); retrying in {}s", claim.attempt, delay.as_secs());
            journal.line(LogLevel::Warn, None, line, None);
            journal.flush(shared, claim).await;
            ("retried", release(shared, claim, delay, false, Some((code, &message))).await)
        }
        Verdict::Retry { code, message } => {
            let message = format!("{message} (gave up after {} attempts)", claim.attempt);
            journal.line(LogLevel::Error, None, format!("failed: {message}"), None);
            let ending = Ending {
                status: RunItemStatus::Failed,
                duration: elapsed,
                error_code: Some(code),
                error_message: Some(&message),
            };
            ("failed", end(shared, claim, &ending, journal).await)
        }
        Verdict::Wait { message } => {
            journal.line(LogLevel::Info, None, message.clone(), None);
            journal.flush(shared, claim).await;
            ("waiting", release(shared, claim, Duration::ZERO, true, Some(("window_closed", &message))).await)
        }
        Verdict::HandBack => {
            journal.line(LogLevel::Info, None, "worker stopping: handed back".into(), None);
            journal.flush(shared, claim).await;
            ("handed_back", release(shared, claim, Duration::ZERO, true, None).await)
        }
    }
}

fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    settings.retry_base.saturating_mul(factor).min(settings.retry_max)
}

/// Ends the item with the journal's last lines and progress, in one statement.
async fn end(shared: &Shared, claim: &Claim, ending: &Ending<'_>, journal: &mut Journal) -> Result<(), StorageError> {
    let finished = {
        let mut conn = shared.pool.acquire().await?;
        let (progress, lines) = (&journal.progress, &journal.pending);
        storage::queue::finish_logged(&mut conn, claim.item, claim.token, ending, progress, lines).await?
    };
    journal.pending.clear();
    // The connection is back in the pool before `end_run` takes one (see `beat`).
    match finished {
        Ended::Fenced => {
            tracing::warn!("the lease was taken over before the result could be recorded; discarded");
        }
        Ended::Done { run, pending_left, cancelled_pending, waves } => {
            if cancelled_pending > 0 {
                tracing::info!(
                    cancelled = cancelled_pending,
                    "run stops on its first failure: pending items cancelled"
                );
            }
            // While an item is pending the run cannot end here: the last one's ending will try. Without
            // one, this ending tries: `end_run` ends the run once no item is held either, and of endings
            // that race, the last to commit sees the others (the sweep ends a run whose last worker died
            // before).
            let ended = !pending_left && end_run(shared, run).await?;
            if !ended && waves.is_some_and(|w| w.needs_step()) {
                wave_step(shared, run).await?;
            }
        }
    }
    Ok(())
}

/// Ends `run` if nothing of it is left, with its audit event; whether this call ended it (`false` also when
/// another worker did).
async fn end_run(shared: &Shared, run: RunId) -> Result<bool, StorageError> {
    let mut tx = shared.pool.begin().await?;
    match storage::queue::end_run(&mut tx, run).await? {
        Some(status) => {
            audit_run(shared, &mut tx, run, status).await?;
            tx.commit().await?;
            Ok(true)
        }
        None => {
            tx.rollback().await?;
            Ok(false)
        }
    }
}

/// Moves `run`'s waves on: halts it when its current wave failed more targets than it tolerates, else
/// starts its next wave when that one starts by itself, each with its audit event. Exactly one caller
/// changes the run (the statements re-check under its row lock); the others change nothing.
async fn wave_step(shared: &Shared, run: RunId) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    if let Some((wave, failed)) = storage::queue::halt(&mut tx, run).await? {
        tracing::warn!(run.id = %run, wave = wave + 1, failed, "a wave failed more targets than it allows: run halted");
        let details = serde_json::json!({ "wave": wave + 1, "failed": failed });
        audit_worker(shared, &mut tx, audit::Action::RunHalted, run, details).await?;
        notify_webhooks(shared, &mut tx, run, WebhookEvent::RunHalted).await?;
        tx.commit().await?;
        return Ok(());
    }
    let mut started = None;
    // A wave whose items were all gone (none pending) ends as it starts; the next one follows.
    while let Some((wave, open)) = storage::queue::advance_wave(&mut tx, run, None).await? {
        started = Some(wave);
        let details = serde_json::json!({ "wave": wave + 1, "targets": open });
        audit_worker(shared, &mut tx, audit::Action::RunWaveStarted, run, details).await?;
        if open > 0 {
            break;
        }
    }
    match started {
        Some(wave) => {
            tracing::info!(run.id = %run, wave = wave + 1, "next wave started");
            // Delivered at commit: idle workers wake for the new wave's items.
            storage::queue::notify(&mut tx, run).await?;
            tx.commit().await?;
        }
        None => tx.rollback().await?,
    }
    Ok(())
}

async fn audit_worker(
    shared: &Shared,
    tx: &mut storage::PgTransaction<'_>,
    action: audit::Action,
    run: RunId,
    mut details: serde_json::Value,
) -> Result<(), StorageError> {
    details["worker"] = serde_json::json!(shared.worker.to_string());
    let event = audit::Event {
        actor: AuditActor { kind: ActorKind::Worker, user_id: None, label: shared.label.clone() },
        action,
        object_type: "run".into(),
        object_id: Some(run.to_string()),
        details,
        ip: None,
        user_agent: None,
    };
    audit::record(tx, shared.settings.audit_key.as_ref(), &event).await.map_err(|audit::AuditError::Storage(e)| e)?;
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
    let Some(action) = audit::Action::run_ended(status) else {
        tracing::error!(run.id = %run, status = %status, "a run ended in a status that is not an end; not audited");
        return Ok(());
    };
    audit_worker(shared, tx, action, run, serde_json::json!({ "status": status.as_str() })).await?;
    let event = match status {
        RunStatus::Succeeded => Some(WebhookEvent::RunSucceeded),
        RunStatus::Failed => Some(WebhookEvent::RunFailed),
        _ => None,
    };
    match event {
        Some(event) => notify_webhooks(shared, tx, run, event).await,
        None => Ok(()),
    }
}

/// Fingerprints the target's schema as this release left it and records it as the drift baseline. A
/// failure is logged, never the item's: the apply itself succeeded.
async fn take_baseline(shared: &Shared, conn: &mut TargetConnection, target: &Target, run: RunId, every: u32) {
    let taken = async {
        let exclude = {
            let mut tool = shared.pool.acquire().await.map_err(|e| e.to_string())?;
            storage::drift::history_tables(&mut tool).await.map_err(|e| e.to_string())?
        };
        let print = crate::drift::fingerprint(conn, target.schema.as_ref().map(|s| s.as_str()), &exclude)
            .await
            .map_err(|e| e.to_string())?;
        let mut tool = shared.pool.acquire().await.map_err(|e| e.to_string())?;
        storage::drift::baseline(&mut tool, target.id, &print, run, shared.settings.clock.now(), Some(every))
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = taken {
        tracing::warn!(target.id = %target.id, error = %e, "could not take the target's schema baseline");
    }
}

/// What a scheduled drift check found on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftChecked {
    pub target: TargetId,
    /// The objects that differ from the baseline (empty: none).
    pub differences: Vec<domain::drift::Difference>,
    /// The drift is new (it had not drifted at the check before).
    pub new: bool,
}

/// Checks the targets whose drift check is due (their environment's schedule): fingerprints each, compares
/// it with its baseline and records the result; a new drift is audited and sent to the environment's
/// webhooks in the same transaction. A target that cannot be reached is checked at its next time.
async fn check_drift(shared: &Shared) -> Result<Vec<DriftChecked>, StorageError> {
    let (due, exclude) = {
        let mut conn = shared.pool.acquire().await?;
        let due = storage::drift::claim_due(&mut conn, 4, shared.settings.clock.now()).await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        (due, storage::drift::history_tables(&mut conn).await?)
    };
    let mut checked = Vec::with_capacity(due.len());
    for check in due {
        let target = {
            let mut conn = shared.pool.acquire().await?;
            storage::targets::get(&mut conn, check.target).await?
        };
        let print = match fingerprint_target(shared, &target, &exclude).await {
            Ok(print) => print,
            Err(e) => {
                tracing::warn!(target.id = %target.id, error = %e, "drift check: cannot read the target's schema");
                continue;
            }
        };
        let differences = domain::drift::compare(&check.baseline, &print);
        let now = shared.settings.clock.now();
        let mut tx = shared.pool.begin().await?;
        let (drifted, was) = storage::drift::record_check(&mut tx, target.id, now, &print, &differences).await?;
        let new = drifted && !was;
        if new {
            let objects: Vec<serde_json::Value> = differences
                .iter()
                .map(|d| serde_json::json!({"object": d.object, "change": d.change.as_str()}))
                .collect();
            let details = serde_json::json!({ "objects": objects.len(), "differences": objects });
            let event = audit::Event {
                actor: AuditActor { kind: ActorKind::Worker, user_id: None, label: shared.label.clone() },
                action: audit::Action::TargetDriftDetected,
                object_type: "target".into(),
                object_id: Some(target.id.to_string()),
                details: details.clone(),
                ip: None,
                user_agent: None,
            };
            audit::record(&mut tx, shared.settings.audit_key.as_ref(), &event)
                .await
                .map_err(|audit::AuditError::Storage(e)| e)?;
            let hub_url = shared.settings.hub_url.as_deref();
            storage::webhooks::enqueue_target(&mut tx, target.id, WebhookEvent::DriftDetected, &details, hub_url)
                .await?;
            tracing::warn!(target.id = %target.id, objects = differences.len(), "schema drift detected");
        }
        tx.commit().await?;
        checked.push(DriftChecked { target: target.id, differences, new });
    }
    Ok(checked)
}

/// Connects to `target` alone (no lock: a check reads the catalog only) and fingerprints its schema.
async fn fingerprint_target(
    shared: &Shared,
    target: &Target,
    exclude: &[String],
) -> Result<domain::drift::Fingerprint, String> {
    let password = password(shared, target).await?;
    let settings = ConnectSettings::for_target(target, password, shared.settings.connect_timeout);
    let mut conn = TargetConnection::connect_single(&settings).await.map_err(|e| e.to_string())?;
    let tool = shared.tool_identity.get_or_try_init(|| crate::secrets::tool_identity(&shared.pool)).await;
    let refused = match tool {
        Ok(tool) => crate::secrets::is_database(tool, &mut conn).await,
        Err(_) => true,
    };
    let result = if refused {
        Err(crate::secrets::TOOL_DATABASE.to_owned())
    } else {
        crate::drift::fingerprint(&mut conn, target.schema.as_ref().map(|s| s.as_str()), exclude)
            .await
            .map_err(|e| e.to_string())
    };
    conn.close().await;
    result
}

/// Webhook deliveries and drift checks, beside the items, every `poll_interval` until `stop`.
async fn background(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let client = crate::webhooks::client();
    while !stop.load(Ordering::SeqCst) {
        let delivered =
            crate::webhooks::deliver_due(&shared.pool, shared.opener.as_ref(), &shared.settings.clock, &client).await;
        if let Err(e) = &delivered {
            tracing::warn!(error = %e, "webhook deliveries failed; trying again");
        }
        if let Err(e) = check_drift(&shared).await {
            tracing::warn!(error = %e, "drift checks failed; trying again");
        }
        if !matches!(delivered, Ok(sent) if sent.len() >= crate::webhooks::BATCH as usize) {
            tokio::time::sleep(shared.settings.poll_interval).await;
        }
    }
}

/// Queues `event` about `run` for the webhooks of its environment, in the transaction of the change.
async fn notify_webhooks(
    shared: &Shared,
    tx: &mut storage::PgTransaction<'_>,
    run: RunId,
    event: WebhookEvent,
) -> Result<(), StorageError> {
    storage::webhooks::enqueue_run(tx, run, event, shared.settings.hub_url.as_deref()).await?;
    Ok(())
}

/// `queued` → `running` with its audit event, by whichever worker gets there first.
async fn mark_running(shared: &Shared, run: RunId) -> Result<(), StorageError> {
    let mut tx = shared.pool.begin().await?;
    match storage::runs::set_status(&mut tx, run, RunStatus::Queued, RunStatus::Running, None).await {
        Ok(_) => {
            audit_worker(shared, &mut tx, audit::Action::RunRunning, run, serde_json::json!({})).await?;
            notify_webhooks(shared, &mut tx, run, WebhookEvent::RunStarted).await?;
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
    let versions = storage::versions::of_run(&mut conn, run.id).await?;
    let project = storage::projects::get(&mut conn, run.project_id).await?;
    let environment = storage::environments::get(&mut conn, run.environment_id).await?;
    let approvals = storage::approvals::list_for_run(&mut conn, run.id).await?;
    let mut project_versions = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let found = storage::migrations::list(&mut conn, project.id, &page).await?;
        project_versions.extend(found.items.iter().map(|m| m.version_key.clone()));
        match found.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    let verified = verify(&run, &versions, &environment, &approvals);
    let drift_every = storage::drift::every(&mut conn, environment.id).await?;
    let context = Arc::new(RunContext { run, versions, project, environment, project_versions, verified, drift_every });
    let mut runs = lock(&shared.runs);
    // Finished runs are not claimed again; keep the cache small on long-lived workers.
    if runs.len() > 1000 {
        runs.clear();
    }
    runs.insert(context.run.id, context.clone());
    Ok(context)
}

/// The content recomputed from the stored SQL must be the content the run pinned and, where the
/// environment needs approval, that its approvals were given for: `domain::policy::may_apply`, the rule
/// the execute action applies too.
fn verify(
    run: &Run,
    versions: &[ReleaseVersion],
    environment: &Environment,
    approvals: &[domain::model::Approval],
) -> Result<(), String> {
    let recomputed: Vec<_> = versions.iter().map(|v| (&v.version_key, v.version.checksums_of_text())).collect();
    let actual = release::run_content(&run.action, recomputed.iter().map(|(k, c)| (*k, c)));
    let decisions: Vec<_> = approvals.iter().map(domain::model::Approval::facts).collect();
    domain::policy::may_apply(&environment.policy, &run.facts(), &decisions, &actual).map_err(|denial| {
        if actual == run.content {
            format!("{denial}: refusing to apply")
        } else {
            format!(
                "the stored SQL of this run no longer matches its pinned content (content {} pinned, {} now): refusing to apply",
                run.content.to_hex(),
                actual.to_hex()
            )
        }
    })
}

/// The statements of `sql`, split by the target's dialect (a version may go to Postgres and MySQL
/// targets alike), with the target's variables substituted.
pub fn statements_for(sql: &str, target: &Target) -> Result<Vec<String>, (&'static str, String)> {
    let split = domain::split::split(sql, target.engine.into())
        .map_err(|e| ("split", format!("cannot split the SQL for {}: {e}", target.engine)))?;
    let mut statements = Vec::with_capacity(split.len());
    for statement in &split {
        let text = statement.text(sql);
        let referenced = placeholder::referenced(text, TARGET_SYNTAXES);
        if referenced.is_empty() {
            statements.push(text.to_owned());
            continue;
        }
        if let Some(missing) = referenced.iter().find(|name| !target.variables.contains_key(**name)) {
            return Err(("placeholder", format!("placeholder {missing:?} has no value on target {}", target.name)));
        }
        let substituted = placeholder::substitute(text, &target.variables, TARGET_SYNTAXES)
            .map_err(|e| ("placeholder", e.to_string()))?;
        statements.push(substituted.into_owned());
    }
    Ok(statements)
}

/// The target's password, held only until the connection is made.
async fn password(shared: &Shared, target: &Target) -> Result<Option<SecretString>, String> {
    resolve_password(&shared.pool, shared.opener.as_ref(), target).await
}

/// How long a confirmation of the lease (a fenced write that returned the run's status) stands in for the
/// check before a statement. Within it, statements run without a tool-database round trip each; a
/// cancelled run stops within this plus one statement. The target's session lock, not this check, is
/// what keeps a worker whose lease was taken over from racing the new owner (it cannot get the lock).
const CONFIRMATION: Duration = Duration::from_millis(250);
/// Log lines buffered before a write is due anyway.
const BATCH: usize = 64;

/// An item's log and progress, written in batches: each write is one fenced statement that also
/// confirms the lease and reads the run's status.
struct Journal {
    pending: Vec<NewLogLine>,
    progress: Progress,
    /// When the last write that confirmed the lease was sent, and the run's status it returned.
    confirmed: Option<(Instant, RunStatus)>,
    /// Statements the item ran in this attempt (any migration).
    ran: u32,
}

/// What writing the journal told about the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    /// Written while the lease was held; the run's status at that moment.
    Held(RunStatus),
    /// The lease is gone: nothing was written.
    Lost,
    /// The tool database did not answer; the lines are kept for the next write, the lease unknown.
    Unknown,
}

impl Journal {
    /// The claim itself confirmed the lease and read the run's status (when it was sent, at `claimed`), so
    /// the first statements within [`CONFIRMATION`] of it need no write before them.
    fn new(claim: &Claim, claimed: Instant) -> Self {
        let progress = Progress { statements_done: Some(claim.statements_done), ..Progress::default() };
        Journal { pending: Vec::new(), progress, confirmed: Some((claimed, claim.run_status)), ran: 0 }
    }

    fn line(
        &mut self,
        level: LogLevel,
        version: Option<&VersionKey>,
        message: String,
        statement: Option<(usize, Duration, u64)>,
    ) {
        self.pending.push(NewLogLine {
            level,
            message,
            version_key: version.map(|v| v.to_string()),
            statement_index: statement.map(|(i, _, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
            // Rounded, not truncated: a release's many sub-millisecond statements would otherwise add up to
            // tens of milliseconds that the item's log does not show.
            duration_ms: statement.map(|(_, d, _)| rounded_ms(d)),
            rows_affected: statement.map(|(_, _, rows)| rows),
        });
    }

    /// A line about a migration with the time its commit took (not a statement's: no index, no rows).
    fn timed_line(&mut self, version: Option<&VersionKey>, message: String, took: Duration) {
        self.line(LogLevel::Info, version, message, None);
        if let Some(line) = self.pending.last_mut() {
            line.duration_ms = Some(rounded_ms(took));
        }
    }

    /// Whether a write is due: the last confirmation is too old, or many lines are waiting.
    fn due(&self) -> bool {
        self.pending.len() >= BATCH || self.confirmed.is_none_or(|(at, _)| at.elapsed() >= CONFIRMATION)
    }

    /// Writes the pending lines and the progress, fenced by the claim's token.
    async fn flush(&mut self, shared: &Shared, claim: &Claim) -> Logged {
        let sent = Instant::now();
        let result = async {
            let mut conn = shared.pool.acquire().await?;
            storage::queue::log(&mut conn, claim.item, claim.token, &self.progress, &self.pending).await
        }
        .await;
        match result {
            Ok(Some(status)) => {
                self.pending.clear();
                self.confirmed = Some((sent, status));
                Logged::Held(status)
            }
            Ok(None) => {
                self.pending.clear();
                self.confirmed = None;
                Logged::Lost
            }
            Err(e) => {
                // A log line is not worth failing a migration over; the lease check decides about going on.
                tracing::warn!(error = %e, "cannot write the item's log");
                self.confirmed = None;
                if self.pending.len() > 4 * BATCH {
                    self.pending.drain(..self.pending.len() - BATCH);
                }
                Logged::Unknown
            }
        }
    }
}

/// Checks the lease and the run before each statement, and logs each statement after it ran, through
/// the item's [`Journal`]: a statement needs a tool-database round trip only when the last confirmation
/// of the lease is older than [`CONFIRMATION`] (or many lines wait), so a release's statements cost one
/// round trip or fewer each.
struct ItemObserver<'a> {
    shared: &'a Shared,
    claim: &'a Claim,
    lost: Arc<AtomicBool>,
    timings: &'a mut Timings,
    journal: &'a mut Journal,
    context: &'a RunContext,
    /// The migration of the release being applied.
    current: usize,
    /// How long the current migration's commit took, when the server timed it.
    commit: Option<Duration>,
}

impl ItemObserver<'_> {
    async fn timed_flush(&mut self) -> Logged {
        let started = Instant::now();
        let logged = self.journal.flush(self.shared, self.claim).await;
        self.timings.journal += started.elapsed();
        logged
    }

    fn key(&self) -> Option<&VersionKey> {
        self.context.versions.get(self.current).map(|v| &v.version_key)
    }
}

impl Observer for ItemObserver<'_> {
    fn history_read(&mut self, rows: usize) {
        self.timings.first_release = Some(rows == 0);
    }

    async fn migration_started(&mut self, position: usize, statements: usize) {
        self.current = position;
        let count = self.context.versions.len();
        self.journal.progress.migrations_done = Some(u32::try_from(position).unwrap_or(u32::MAX));
        self.journal.progress.statements_done = Some(0);
        self.journal.progress.statements_total = Some(u32::try_from(statements).unwrap_or(u32::MAX));
        if let Some(v) = self.context.versions.get(position) {
            let message = format!(
                "migration {} of {count}: {} {} ({statements} statements)",
                position + 1,
                v.version_key,
                v.name
            );
            self.journal.line(LogLevel::Info, Some(&v.version_key), message, None);
        }
    }

    async fn committed(&mut self, _position: usize, elapsed: Duration) {
        self.timings.sql += elapsed;
        self.commit = Some(elapsed);
    }

    async fn migration_ended(&mut self, position: usize, outcome: &Outcome) {
        self.journal.progress.migrations_done = Some(u32::try_from(position + 1).unwrap_or(u32::MAX));
        let commit = self.commit.take();
        let message = match outcome {
            Outcome::Applied { statements } => format!(
                "{} ({statements} statements{})",
                if self.context.run.direction == Direction::Up { "applied" } else { "reverted" },
                commit.map(|c| format!(", committed in {:.1} ms", c.as_secs_f64() * 1000.0)).unwrap_or_default()
            ),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        };
        let key = self.key().cloned();
        match commit {
            Some(took) => self.journal.timed_line(key.as_ref(), message, took),
            None => self.journal.line(LogLevel::Info, key.as_ref(), message, None),
        }
    }

    async fn before_statement(&mut self, index: usize) -> Result<(), String> {
        if self.timings.first_statement.is_none() {
            self.timings.first_statement = Some(Instant::now());
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(LEASE_LOST.into());
        }
        if index == 0 && self.journal.ran == 0 && self.shared.draining.load(Ordering::SeqCst) {
            return Err(STOPPING.into());
        }
        let status = match self.journal.confirmed {
            Some((_, status)) if !self.journal.due() => status,
            _ => match self.timed_flush().await {
                Logged::Held(status) => status,
                Logged::Lost => {
                    self.lost.store(true, Ordering::SeqCst);
                    return Err(LEASE_LOST.into());
                }
                // Without the tool database the lease cannot be proven: stop rather than risk a takeover.
                Logged::Unknown => return Err("cannot check the lease (tool database unreachable)".into()),
            },
        };
        if status == RunStatus::Cancelled { Err(CANCELLED.into()) } else { Ok(()) }
    }

    async fn after_statement(&mut self, index: usize, statement: &str, elapsed: Duration, rows: u64) {
        self.timings.sql += elapsed;
        self.journal.ran += 1;
        self.journal.progress.statements_done = Some(u32::try_from(index + 1).unwrap_or(u32::MAX));
        let first = statement.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        let first: String = first.chars().take(200).collect();
        let key = self.key().cloned();
        let message = match &key {
            Some(key) => format!("{key} statement {}: {first}", index + 1),
            None => format!("statement {}: {first}", index + 1),
        };
        self.journal.line(LogLevel::Info, key.as_ref(), message, Some((index, elapsed, rows)));
    }

    async fn retrying(&mut self, _position: usize, index: usize, attempt: u32, of: u32, delay: Duration, error: &str) {
        let key = self.key().cloned();
        let what = match &key {
            Some(key) => format!("{key} statement {}", index + 1),
            None => format!("statement {}", index + 1),
        };
        let message =
            format!("{what} gave up waiting for a lock ({error}); try {attempt} of {of} in {} ms", delay.as_millis());
        self.journal.line(LogLevel::Warn, key.as_ref(), message, None);
        metrics::counter!("migrate_hub_lock_retries_total").increment(1);
    }
}
