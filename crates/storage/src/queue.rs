//! The run queue as workers see it: claiming items with a lease and a fencing token, renewing leases,
//! checking them before each statement, and every later write of an item fenced by its token, so a worker
//! whose lease was taken over can change nothing.
//!
//! Claims lock the run's row and count its running items, so a run's concurrency limit holds across any
//! number of workers; items themselves are taken with `FOR UPDATE SKIP LOCKED`. Ending an item is one
//! statement that commits on its own and locks the run's row only when it changes it (waves, or a failure
//! that stops the run); a worker whose ending saw nothing pending then tries to end the run ([`end_run`]),
//! which exactly one caller manages. A run whose last worker died in between is ended by [`sweep_runs`],
//! which every worker's heartbeat calls.

use std::time::Duration;

use domain::ids::{RunId, RunItemId, WorkerId};
use domain::model::{NewLogLine, Target};
use domain::run::{RunItemStatus, RunStatus};
use uuid::Uuid;

use crate::convert::{parse, to_i32, to_i64, unsigned};
use crate::logs::MAX_MESSAGE_CHARS;
use crate::{PgConnection, PgTransaction, StorageError, StorageResult};

/// The channel idle workers `LISTEN` on.
pub const CHANNEL: &str = "migrate_hub_queue";

/// A claimed item: the worker holds it until its lease expires, and proves it with the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub item: RunItemId,
    pub run: RunId,
    pub ordinal: u32,
    /// This claim's attempt number (1 for the first).
    pub attempt: u32,
    pub max_attempts: u32,
    pub token: i64,
    /// Statements an earlier owner recorded as done (a takeover after a crash).
    pub statements_done: u32,
    /// The run's status when claimed (`queued` until a worker marks it running).
    pub run_status: RunStatus,
    /// When the environment's open maintenance window closes (`None`: it has no windows).
    pub window_closes_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The item's target, its row as the claim read it: the worker connects with it and reads none itself.
    pub target: Target,
}

/// How an item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<'a> {
    pub status: RunItemStatus,
    pub duration: Duration,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

/// What ending an item did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The lease had been taken over (or the item had already ended): nothing changed.
    Fenced,
    /// The item ended. `pending_left`: some of the run's items are still to run (with none left, the caller
    /// tries [`end_run`], which ends the run once no other item is held either); `cancelled_pending`:
    /// pending items cancelled because this failure stops the run.
    Done { run: RunId, pending_left: bool, cancelled_pending: u64, waves: Option<WaveCounters> },
}

/// A run with waves, as an item's ending left its current wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveCounters {
    /// The wave's items not yet ended.
    pub open: i32,
    /// The wave failed more targets than it tolerates: the run is to halt.
    pub over_budget: bool,
}

impl WaveCounters {
    /// Whether the waves need a step ([`halt`] or [`advance_wave`]) now.
    pub fn needs_step(&self) -> bool {
        self.over_budget || self.open <= 0
    }
}

fn cut(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// Claims up to `max` items of one run for `worker`, each with a lease of `lease` and a new fencing
/// token, in one statement. Expired leases are taken back first. Empty when nothing is claimable.
pub async fn claim(conn: &mut PgConnection, worker: WorkerId, lease: Duration, max: u32) -> StorageResult<Vec<Claim>> {
    claim_at(conn, worker, lease, max, chrono::Utc::now()).await
}

/// [`claim`], with maintenance windows and run schedules read at `now` (the worker's clock).
#[tracing::instrument(skip_all, fields(worker.id = %worker, max))]
pub async fn claim_at(
    conn: &mut PgConnection,
    worker: WorkerId,
    lease: Duration,
    max: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> StorageResult<Vec<Claim>> {
    let rows = sqlx::query_file!(
        "../../sql/queue/claim.sql",
        worker.as_uuid(),
        lease.as_secs_f64(),
        i64::from(max.max(1)),
        now
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Claim {
                item: RunItemId::from_uuid(r.id),
                run: RunId::from_uuid(r.run_id),
                ordinal: unsigned("run_items.ordinal", r.ordinal)?,
                attempt: unsigned("run_items.attempts", r.attempts)?,
                max_attempts: unsigned("run_items.max_attempts", r.max_attempts)?,
                token: r.fencing_token,
                statements_done: unsigned("run_items.statements_done", r.statements_done)?,
                run_status: parse("runs.status", &r.run_status)?,
                window_closes_at: r.window_closes_at,
                target: Target::try_from(crate::targets::Row {
                    id: r.db_target_id,
                    environment_id: r.target_environment_id,
                    name: r.target_name,
                    engine: r.target_engine,
                    host: r.target_host,
                    port: r.target_port,
                    database_name: r.target_database_name,
                    schema_name: r.target_schema_name,
                    username: r.target_username,
                    secret_key_id: r.target_secret_key_id,
                    secret_ref: r.target_secret_ref,
                    tls_mode: r.target_tls_mode,
                    labels: r.target_labels,
                    variables: r.target_variables,
                    created_at: r.target_created_at,
                    updated_at: r.target_updated_at,
                })?,
            })
        })
        .collect()
}

/// Extends the leases `worker` holds on `held` (item, token); returns the items renewed. Any other item
/// of `held` was taken over or has ended.
#[tracing::instrument(skip_all, fields(worker.id = %worker, held = held.len()))]
pub async fn renew(
    conn: &mut PgConnection,
    worker: WorkerId,
    held: &[(RunItemId, i64)],
    lease: Duration,
) -> StorageResult<Vec<RunItemId>> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = held.iter().map(|(id, _)| id.as_uuid()).collect();
    let tokens: Vec<i64> = held.iter().map(|(_, token)| *token).collect();
    let rows = sqlx::query_file!("../../sql/queue/renew.sql", worker.as_uuid(), &ids, &tokens, lease.as_secs_f64())
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| RunItemId::from_uuid(r.id)).collect())
}

/// Where an item stands in its release; `None` fields are left as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub migrations_done: Option<u32>,
    pub migrations_total: Option<u32>,
    /// Statements done of the migration the item is at.
    pub statements_done: Option<u32>,
    pub statements_total: Option<u32>,
}

/// Appends `lines` to `item`'s log and records its progress, in one statement, only while the lease is
/// held and unexpired. Returns the run's status, so a write right after a statement is also the lease
/// check before the next (with no lines and no progress it is just that check); `None` when the lease is
/// gone (nothing written).
#[tracing::instrument(skip_all, fields(item.id = %item, lines = lines.len()))]
pub async fn log(
    conn: &mut PgConnection,
    item: RunItemId,
    token: i64,
    progress: &Progress,
    lines: &[NewLogLine],
) -> StorageResult<Option<RunStatus>> {
    let columns = LogColumns::of(lines);
    let row = sqlx::query_file!(
        "../../sql/queue/log.sql",
        item.as_uuid(),
        token,
        progress.migrations_done.map(to_i32),
        progress.migrations_total.map(to_i32),
        progress.statements_done.map(to_i32),
        progress.statements_total.map(to_i32),
        &columns.levels as &[&str],
        &columns.messages,
        &columns.keys as &[Option<&str>],
        &columns.indexes as _,
        &columns.durations as _,
        &columns.rows as _,
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| parse("runs.status", &r.run_status)).transpose()
}

/// Log lines as the column arrays the log statements unnest.
struct LogColumns<'a> {
    levels: Vec<&'a str>,
    messages: Vec<String>,
    keys: Vec<Option<&'a str>>,
    indexes: Vec<Option<i32>>,
    durations: Vec<Option<i64>>,
    rows: Vec<Option<i64>>,
}

impl<'a> LogColumns<'a> {
    fn of(lines: &'a [NewLogLine]) -> Self {
        LogColumns {
            levels: lines.iter().map(|l| l.level.as_str()).collect(),
            messages: lines.iter().map(|l| cut(&l.message)).collect(),
            keys: lines.iter().map(|l| l.version_key.as_deref()).collect(),
            indexes: lines.iter().map(|l| l.statement_index.map(to_i32)).collect(),
            durations: lines.iter().map(|l| l.duration_ms.map(to_i64)).collect(),
            rows: lines.iter().map(|l| l.rows_affected.map(to_i64)).collect(),
        }
    }
}

/// Ends `item` (a terminal status), gives its slot back and applies the run's failure policy (a failure
/// under `stop_on_first_failure` cancels the pending items), in one statement that commits on its own.
/// [`Ended::Fenced`] when the lease was no longer held. The run itself is ended by [`end_run`].
pub async fn finish(conn: &mut PgConnection, item: RunItemId, token: i64, ending: &Ending<'_>) -> StorageResult<Ended> {
    finish_logged(conn, item, token, ending, &Progress::default(), &[]).await
}

/// [`finish`], writing the item's last log `lines` and `progress` in the same statement (see [`log`]): an
/// item's end costs one round trip to the tool database, not two.
#[tracing::instrument(skip_all, fields(item.id = %item, status = %ending.status, lines = lines.len()))]
pub async fn finish_logged(
    conn: &mut PgConnection,
    item: RunItemId,
    token: i64,
    ending: &Ending<'_>,
    progress: &Progress,
    lines: &[NewLogLine],
) -> StorageResult<Ended> {
    if !ending.status.is_terminal() {
        return Err(StorageError::Invalid { constraint: format!("{} is not a final item status", ending.status) });
    }
    let columns = LogColumns::of(lines);
    let row = sqlx::query_file!(
        "../../sql/queue/finish.sql",
        item.as_uuid(),
        token,
        ending.status.as_str(),
        i64::try_from(ending.duration.as_millis()).unwrap_or(i64::MAX),
        ending.error_code,
        ending.error_message.map(cut),
        progress.migrations_done.map(to_i32),
        progress.migrations_total.map(to_i32),
        progress.statements_done.map(to_i32),
        progress.statements_total.map(to_i32),
        &columns.levels as &[&str],
        &columns.messages,
        &columns.keys as &[Option<&str>],
        &columns.indexes as _,
        &columns.durations as _,
        &columns.rows as _,
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(Ended::Fenced) };
    Ok(Ended::Done {
        run: RunId::from_uuid(row.id),
        pending_left: row.pending_left,
        cancelled_pending: unsigned("cancelled", row.cancelled)?,
        waves: row.waved.then_some(WaveCounters { open: row.wave_open, over_budget: row.over_budget }),
    })
}

/// Ends `run` if none of its items is pending or running any more (`failed` if one failed, else
/// `succeeded`); its final status when this call ended it. Call it in a new statement after an item's
/// ending committed; of concurrent callers exactly one gets `Some`.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn end_run(conn: &mut PgConnection, run: RunId) -> StorageResult<Option<RunStatus>> {
    let row = sqlx::query_file!("../../sql/queue/finish_run.sql", run.as_uuid()).fetch_optional(conn).await?;
    row.map(|r| parse("runs.status", &r.status)).transpose()
}

/// Ends runs whose items have all ended but that stayed `running` for `idle` (their last worker died
/// before ending them); returns them with their final status.
#[tracing::instrument(skip_all)]
pub async fn sweep_runs(conn: &mut PgConnection, idle: Duration) -> StorageResult<Vec<(RunId, RunStatus)>> {
    let rows = sqlx::query_file!("../../sql/queue/sweep_runs.sql", idle.as_secs_f64()).fetch_all(conn).await?;
    rows.into_iter().map(|r| Ok((RunId::from_uuid(r.id), parse("runs.status", &r.status)?))).collect()
}

/// Halts `run` if its current wave failed more targets than it tolerates; the wave and its failures
/// when this call halted it.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn halt(tx: &mut PgTransaction<'_>, run: RunId) -> StorageResult<Option<(u32, u32)>> {
    let row = sqlx::query_file!("../../sql/queue/halt.sql", run.as_uuid()).fetch_optional(&mut **tx).await?;
    row.map(|r| Ok((unsigned("runs.current_wave", r.current_wave)?, unsigned("runs.wave_failed", r.wave_failed)?)))
        .transpose()
}

/// Starts `run`'s next wave if its current one has no item open, stayed within its budget and has a
/// successor (`by`: the person who continued it; `None` when it starts by itself). The new wave and its
/// open items; `None`: no change.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn advance_wave(
    tx: &mut PgTransaction<'_>,
    run: RunId,
    by: Option<domain::ids::UserId>,
) -> StorageResult<Option<(u32, u32)>> {
    let row = sqlx::query_file!("../../sql/queue/advance_wave.sql", run.as_uuid(), by.map(|u| u.as_uuid()))
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| Ok((unsigned("runs.current_wave", r.current_wave)?, unsigned("runs.wave_open", r.wave_open.max(0))?)))
        .transpose()
}

/// Runs with waves whose next step (halting, or starting a wave that starts by itself) was left undone
/// for `idle` (the worker that should have taken it died).
#[tracing::instrument(skip_all)]
pub async fn sweep_waves(conn: &mut PgConnection, idle: Duration) -> StorageResult<Vec<RunId>> {
    let rows = sqlx::query_file!("../../sql/queue/sweep_waves.sql", idle.as_secs_f64()).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| RunId::from_uuid(r.id)).collect())
}

/// Hands `item` back to the queue, claimable after `after` (a retry's backoff), only while the lease is
/// held. `give_back_attempt` when the worker is stopping rather than retrying. If the run was cancelled or
/// is stopping after a failure the item is cancelled instead, and the run ends if this was its last item.
/// Returns the item's new status (`None`: fenced, nothing changed) and the run's final status if it ended.
#[tracing::instrument(skip_all, fields(item.id = %item))]
pub async fn release(
    tx: &mut PgTransaction<'_>,
    item: RunItemId,
    token: i64,
    after: Duration,
    give_back_attempt: bool,
    error: Option<(&str, &str)>,
) -> StorageResult<Option<(RunItemStatus, Option<RunStatus>)>> {
    let row = sqlx::query_file!(
        "../../sql/queue/release.sql",
        item.as_uuid(),
        token,
        after.as_secs_f64(),
        i32::from(give_back_attempt),
        error.map(|(code, _)| code),
        error.map(|(_, message)| cut(message)),
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: RunItemStatus = parse("run_items.status", &row.item_status)?;
    let run_finished = end_run(&mut *tx, RunId::from_uuid(row.id)).await?;
    Ok(Some((status, run_finished)))
}

/// Wakes idle workers for `run` (delivered when the caller's transaction commits; Postgres sends one per
/// transaction however often it is called).
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn notify(conn: &mut PgConnection, run: RunId) -> StorageResult<()> {
    sqlx::query_file!("../../sql/queue/notify.sql", run.as_uuid().to_string()).execute(conn).await?;
    Ok(())
}

/// Items waiting to be claimed, over all queued and running runs.
#[tracing::instrument(skip_all)]
pub async fn depth(conn: &mut PgConnection) -> StorageResult<u64> {
    let row = sqlx::query_file!("../../sql/queue/depth.sql").fetch_one(conn).await?;
    unsigned("depth", row.depth)
}
