//! Chaos trials with real worker processes, shared by `cargo xtask chaos` (hundreds of trials) and the
//! test suite (a few):
//!
//! - [`kill_trials`]: a run over ten targets while a random worker process is SIGKILLed at a random
//!   moment (a new one takes its place). Every statement of a trial's migration also inserts a row into
//!   `chaos_audit` on its target, so a statement applied twice shows as two rows. Checked per trial: no
//!   statement applied twice, every item ended (and a succeeded item's statements all there, once), the
//!   run ended within lease + sweep + a margin, and no target lock held afterwards.
//! - [`stop_trial`]: a worker SIGSTOPped past its lease while applying, another takes the item over, the
//!   first is SIGCONTed: a trigger on the tool database records who writes item rows, and no write of the
//!   stopped worker may land after the takeover.
//! - [`restart_trial`]: the tool database (a throwaway cluster) restarted with `-m immediate` mid-run:
//!   the run still ends `succeeded`, every statement applied exactly once.
//!
//! Targets that a kill left with a partial apply (MySQL, where DDL commits statement by statement) are
//! "needs recovery" by design; the harness then resolves them as an admin would (deleting the dirty
//! history row) so the next trial starts clean.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain::enums::{Direction, Engine, FailurePolicy, TransactionMode};
use domain::ids::{RunId, TargetId};
use domain::policy::EnvironmentPolicy;
use sqlx::{Connection, PgPool};

use crate::fleet::Fleet;
use crate::{MySqlDatabase, PgDatabase};

/// How the worker processes of a trial are set up.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// The `migrate-hub-worker` binary.
    pub binary: PathBuf,
    pub lease: Duration,
    /// Heartbeat (and sweep) interval.
    pub heartbeat: Duration,
    pub slots: u32,
}

impl WorkerSetup {
    /// Short leases so trials settle fast.
    pub fn quick(binary: PathBuf) -> Self {
        WorkerSetup { binary, lease: Duration::from_secs(2), heartbeat: Duration::from_secs(1), slots: 2 }
    }

    /// The longest a run may take to end after a fault: the lease must expire, a poll must find the item,
    /// a sweep may be needed, and the item must be applied again (plus a margin for a loaded machine).
    fn settle_bound(&self) -> Duration {
        self.lease + self.heartbeat * 2 + Duration::from_secs(15)
    }
}

/// Worker processes of the real binary; SIGKILLed when dropped.
#[derive(Debug)]
pub struct Workers {
    setup: WorkerSetup,
    tool_url: String,
    children: Vec<(Child, String)>,
    started: usize,
}

impl Workers {
    pub fn new(setup: &WorkerSetup, tool_url: &str) -> Self {
        Workers { setup: setup.clone(), tool_url: tool_url.to_owned(), children: Vec::new(), started: 0 }
    }

    /// Starts one more worker, named `name` in the tool database's `application_name`; returns its pid.
    pub fn spawn(&mut self, name: &str) -> u32 {
        let separator = if self.tool_url.contains('?') { '&' } else { '?' };
        let child = Command::new(&self.setup.binary)
            .env("DATABASE_URL", format!("{}{separator}application_name={name}", self.tool_url))
            .env("MIGRATE_HUB_LEASE_SECS", self.setup.lease.as_secs().max(1).to_string())
            .env("MIGRATE_HUB_HEARTBEAT_SECS", self.setup.heartbeat.as_secs().max(1).to_string())
            .env("MIGRATE_HUB_WORKER_SLOTS", self.setup.slots.to_string())
            .env("MIGRATE_HUB_POLL_MS", "200")
            .env("MIGRATE_HUB_RETRY_BASE_MS", "200")
            .env("MIGRATE_HUB_LOG_FORMAT", "json")
            .env("RUST_LOG", std::env::var("CHAOS_WORKER_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.setup.binary.display()));
        let pid = child.id();
        self.children.push((child, name.to_owned()));
        self.started += 1;
        pid
    }

    /// Starts `count` workers named `chaos-<n>`.
    pub fn spawn_many(&mut self, count: usize) {
        for _ in 0..count {
            let name = format!("chaos-{}", self.started);
            self.spawn(&name);
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(child, _)| child.id()).collect()
    }

    /// SIGKILLs the worker `pid` and reaps it.
    pub fn kill(&mut self, pid: u32) {
        if let Some(at) = self.children.iter().position(|(child, _)| child.id() == pid) {
            let (mut child, _) = self.children.remove(at);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`, `TERM`) to `pid`.
    pub fn signal(pid: u32, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pid} failed");
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A small deterministic generator (xorshift64*), seeded and printed so a failing series can be rerun.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What a series of trials found. Any violation makes `cargo xtask chaos` exit non-zero.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub trials: u64,
    pub kills: u64,
    /// Kills that hit a worker while it held an item.
    pub kills_in_flight: u64,
    pub items: u64,
    pub succeeded: u64,
    pub skipped: u64,
    /// Items failed as "needs recovery" after a kill left a partial apply (MySQL).
    pub needs_recovery: u64,
    pub longest_settle: Duration,
    /// Violations, each a sentence.
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.trials += other.trials;
        self.kills += other.kills;
        self.kills_in_flight += other.kills_in_flight;
        self.items += other.items;
        self.succeeded += other.succeeded;
        self.skipped += other.skipped;
        self.needs_recovery += other.needs_recovery;
        self.longest_settle = self.longest_settle.max(other.longest_settle);
        self.violations.extend(other.violations);
    }
}

/// Ten targets of one engine, each with the `chaos_audit` table.
enum Targets {
    Postgres(Vec<PgDatabase>),
    Mysql(Vec<MySqlDatabase>),
}

impl Targets {
    async fn create(engine: Engine, count: usize) -> Self {
        match engine {
            Engine::Postgres => {
                let mut dbs = Vec::new();
                for _ in 0..count {
                    let db = PgDatabase::fresh().await;
                    sqlx::query(
                        "CREATE TABLE chaos_audit (trial integer NOT NULL, stmt integer NOT NULL, \
                         at timestamptz NOT NULL DEFAULT clock_timestamp())",
                    )
                    .execute(&db.pool)
                    .await
                    .unwrap();
                    dbs.push(db);
                }
                Targets::Postgres(dbs)
            }
            Engine::Mysql => {
                let mut dbs = Vec::new();
                for _ in 0..count {
                    let db = MySqlDatabase::fresh().await;
                    sqlx::query(
                        "CREATE TABLE chaos_audit (trial int NOT NULL, stmt int NOT NULL, \
                         at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))",
                    )
                    .execute(&db.pool)
                    .await
                    .unwrap();
                    dbs.push(db);
                }
                Targets::Mysql(dbs)
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        match self {
            Targets::Postgres(dbs) => dbs.iter().map(|d| d.url.clone()).collect(),
            Targets::Mysql(dbs) => dbs.iter().map(|d| d.url.clone()).collect(),
        }
    }

    /// How often each of the trial's statements ran on target `i`.
    async fn audit(&self, i: usize, trial: u64) -> Vec<(i32, i64)> {
        let trial = i32::try_from(trial).unwrap();
        match self {
            Targets::Postgres(dbs) => {
                sqlx::query_as("SELECT stmt, count(*) FROM chaos_audit WHERE trial = $1 GROUP BY stmt ORDER BY stmt")
                    .bind(trial)
                    .fetch_all(&dbs[i].pool)
                    .await
                    .unwrap()
            }
            Targets::Mysql(dbs) => {
                sqlx::query_as("SELECT stmt, count(*) FROM chaos_audit WHERE trial = ? GROUP BY stmt ORDER BY stmt")
                    .bind(trial)
                    .fetch_all(&dbs[i].pool)
                    .await
                    .unwrap()
            }
        }
    }

    /// Whether a session on Postgres target `i` is in a trial's pause.
    async fn sleeping(&self, i: usize) -> bool {
        match self {
            Targets::Postgres(dbs) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' \
                 AND wait_event = 'PgSleep'",
                )
                .fetch_one(&dbs[i].pool)
                .await
                .unwrap()
                    > 0
            }
            Targets::Mysql(_) => false,
        }
    }

    /// Whether any session holds target `id`'s lock on target `i`.
    async fn locked(&self, i: usize, id: TargetId) -> bool {
        let name = format!("target:{id}");
        match self {
            Targets::Postgres(dbs) => {
                let (hi, lo) = split_key(executor::target::pg_lock_key(&name));
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid::bigint = $1 AND objid::bigint = $2",
                )
                .bind(hi)
                .bind(lo)
                .fetch_one(&dbs[i].pool)
                .await
                .unwrap()
                    > 0
            }
            Targets::Mysql(dbs) => sqlx::query_scalar::<_, Option<i64>>("SELECT IS_USED_LOCK(?)")
                .bind(executor::target::mysql_lock_name(&name))
                .fetch_one(&dbs[i].pool)
                .await
                .unwrap()
                .is_some(),
        }
    }

    /// Resolves a partial apply left by a kill, as an admin would: the dirty history row goes, and the
    /// table of that migration with it.
    async fn resolve(&self, i: usize) {
        let dirty = "SELECT version FROM migrate_hub_history WHERE status <> 'applied'";
        let versions: Vec<String> = match self {
            Targets::Postgres(dbs) => sqlx::query_scalar(dirty).fetch_all(&dbs[i].pool).await.unwrap(),
            Targets::Mysql(dbs) => sqlx::query_scalar(dirty).fetch_all(&dbs[i].pool).await.unwrap(),
        };
        let mut sqls = vec!["DELETE FROM migrate_hub_history WHERE status <> 'applied'".to_owned()];
        sqls.extend(versions.iter().map(|v| format!("DROP TABLE IF EXISTS {}", trial_table(v))));
        for sql in sqls {
            match self {
                Targets::Postgres(dbs) => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&dbs[i].pool).await.unwrap();
                }
                Targets::Mysql(dbs) => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&dbs[i].pool).await.unwrap();
                }
            }
        }
    }
}

/// The table a trial migration (`key`, e.g. `000007.2`) creates.
fn trial_table(key: &str) -> String {
    format!("chaos_t{}", key.replace('.', "_"))
}

/// Postgres shows a bigint advisory key as (classid, objid): its high and low 32 bits.
fn split_key(key: i64) -> (i64, i64) {
    let bits = key as u64;
    ((bits >> 32) as i64, (bits & 0xffff_ffff) as i64)
}

/// The trial's migration: a table, then two audited statements around a pause that kills land in.
fn trial_sql(engine: Engine, trial: u64, pause_ms: u64) -> String {
    trial_part_sql(engine, trial, &format!("{trial:06}"), 1, pause_ms)
}

/// Part `part` (from 1) of a trial's release, migration `key`: a table, then audited statements
/// `2 * part - 1` and `2 * part` around a pause that kills land in.
fn trial_part_sql(engine: Engine, trial: u64, key: &str, part: u32, pause_ms: u64) -> String {
    let pause = match engine {
        Engine::Postgres => format!("SELECT pg_sleep({pause_ms} / 1000.0);"),
        Engine::Mysql => format!("DO SLEEP({pause_ms} / 1000);"),
    };
    let (first, second) = (2 * part - 1, 2 * part);
    format!(
        "CREATE TABLE {} (id integer);\n\
         INSERT INTO chaos_audit (trial, stmt) VALUES ({trial}, {first});\n\
         {pause}\n\
         INSERT INTO chaos_audit (trial, stmt) VALUES ({trial}, {second});\n",
        trial_table(key)
    )
}

async fn run_status(pool: &PgPool, run: RunId) -> domain::run::RunStatus {
    let mut conn = pool.acquire().await.unwrap();
    storage::runs::get(&mut conn, run).await.unwrap().status
}

/// Waits until `run` ends or `within` passes; how long it took, `None` if it did not end.
async fn settle(pool: &PgPool, run: RunId, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if run_status(pool, run).await.is_terminal() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// Checks a finished trial's items and targets; resolves partial applies for the next trial.
/// `parts`: the migrations of the trial's release (each audits two statements).
async fn check_trial(fleet: &Fleet, targets: &Targets, run: RunId, trial: u64, parts: u32, report: &mut Report) {
    let mut conn = fleet.pool.acquire().await.unwrap();
    let items =
        storage::run_items::list_for_run(&mut conn, run, None, &storage::PageRequest::first(100)).await.unwrap().items;
    drop(conn);
    if items.len() != fleet.targets.len() {
        report.violations.push(format!("trial {trial}: {} items for {} targets", items.len(), fleet.targets.len()));
    }
    for item in items {
        report.items += 1;
        let i = fleet.targets.iter().position(|t| *t == item.target_id).unwrap();
        let audit = targets.audit(i, trial).await;
        if audit.iter().any(|(_, count)| *count > 1) {
            report.violations.push(format!("trial {trial}: a statement applied twice on target {i}: {audit:?}"));
        }
        use domain::run::RunItemStatus as S;
        match item.status {
            S::Succeeded | S::Skipped => {
                if item.status == S::Succeeded {
                    report.succeeded += 1;
                } else {
                    report.skipped += 1;
                }
                let expected: Vec<(i32, i64)> = (1..=i32::try_from(2 * parts).unwrap()).map(|s| (s, 1)).collect();
                if audit != expected {
                    report
                        .violations
                        .push(format!("trial {trial}: target {i} is {} but its statements ran {audit:?}", item.status));
                }
            }
            S::Failed if item.error_code.as_deref() == Some("needs_recovery") => {
                report.needs_recovery += 1;
                targets.resolve(i).await;
            }
            other => report.violations.push(format!(
                "trial {trial}: target {i} ended {other} ({:?}: {:?})",
                item.error_code, item.error_message
            )),
        }
        if targets.locked(i, item.target_id).await {
            report.violations.push(format!("trial {trial}: target {i}'s lock is still held after the run"));
        }
    }
}

/// Migrations in each kill trial's release.
const RELEASE_PARTS: u32 = 2;

/// `trials` release runs over ten `engine` targets, each with one worker SIGKILLed at a random moment.
pub async fn kill_trials(setup: &WorkerSetup, engine: Engine, trials: u64, rng: &mut Rng) -> Report {
    let tool = PgDatabase::migrated().await;
    let targets = Targets::create(engine, 10).await;
    // A target whose partial apply was resolved lacks that trial's version; later trials go on.
    let policy = EnvironmentPolicy { allow_out_of_order: true, ..EnvironmentPolicy::permissive_default() };
    let mut fleet = Fleet::new(&tool.pool, policy).await;
    for (i, url) in targets.urls().iter().enumerate() {
        fleet.add_target(&format!("chaos-{i:02}"), url, None).await;
    }
    let mut workers = Workers::new(setup, &tool.url);
    workers.spawn_many(3);
    let mut report = Report::default();
    for trial in 1..=trials {
        let pause_ms = 100 + rng.below(200);
        // A release of two migrations: kills land before, inside and between them.
        let mut versions = Vec::new();
        for part in 1..=RELEASE_PARTS {
            let key = format!("{trial:06}.{part}");
            let sql = trial_part_sql(engine, trial, &key, part, pause_ms);
            versions.push(fleet.migration(&key, &sql, None, TransactionMode::Transaction, engine).await);
        }
        let run = fleet.queue_release(&versions, Direction::Up, FailurePolicy::Continue, 10, None).await;
        // Ten items on six slots take two waves of two migrations of a few hundred ms: kill in there.
        tokio::time::sleep(Duration::from_millis(rng.below(4 * pause_ms + 400))).await;
        let pids = workers.pids();
        let victim = pids[usize::try_from(rng.below(pids.len() as u64)).unwrap()];
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM run_items i JOIN workers w ON w.id = i.lease_owner \
             WHERE w.pid = $1 AND w.stopped_at IS NULL AND i.status = 'running'",
        )
        .bind(i32::try_from(victim).unwrap())
        .fetch_one(&tool.pool)
        .await
        .unwrap();
        workers.kill(victim);
        report.kills += 1;
        if held > 0 {
            report.kills_in_flight += 1;
        }
        workers.spawn_many(1);
        report.trials += 1;
        match settle(&tool.pool, run.id, setup.settle_bound()).await {
            Some(took) => report.longest_settle = report.longest_settle.max(took),
            None => {
                report.violations.push(format!(
                    "trial {trial}: run still {} {:?} after the kill",
                    run_status(&tool.pool, run.id).await,
                    setup.settle_bound()
                ));
                continue;
            }
        }
        check_trial(&fleet, &targets, run.id, trial, RELEASE_PARTS, &mut report).await;
    }
    report
}

/// Records who (by `application_name`) writes item rows and log lines, with the database's clock.
async fn install_write_log(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE chaos_writes (at timestamptz NOT NULL DEFAULT clock_timestamp(), app text NOT NULL, \
           item uuid NOT NULL);
         CREATE FUNCTION chaos_note() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_TABLE_NAME = 'run_items' THEN
             INSERT INTO chaos_writes (app, item) VALUES (current_setting('application_name'), NEW.id);
           ELSE
             INSERT INTO chaos_writes (app, item) VALUES (current_setting('application_name'), NEW.run_item_id);
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER chaos_items AFTER INSERT OR UPDATE ON run_items FOR EACH ROW EXECUTE FUNCTION chaos_note();
         CREATE TRIGGER chaos_logs AFTER INSERT ON run_item_logs FOR EACH ROW EXECUTE FUNCTION chaos_note();",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// A worker SIGSTOPped mid-apply past its lease; another takes the item over; the first is SIGCONTed.
/// Violations: a write of the stopped worker landing after the takeover, a statement applied twice, or
/// the run not ending `succeeded`.
pub async fn stop_trial(setup: &WorkerSetup) -> Report {
    let tool = PgDatabase::migrated().await;
    install_write_log(&tool.pool).await;
    let targets = Targets::create(Engine::Postgres, 1).await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("stopped", &targets.urls()[0], None).await;
    let mut workers = Workers::new(setup, &tool.url);
    let first = workers.spawn("chaos-stopped");
    let mut report = Report { trials: 1, ..Report::default() };
    // Long enough a pause that the stop lands inside the apply, with the lease expiring during it.
    let pause_ms = u64::try_from(setup.lease.as_millis()).unwrap() + 1500;
    let version = fleet
        .migration(
            "000001",
            &trial_sql(Engine::Postgres, 1, pause_ms),
            None,
            TransactionMode::Transaction,
            Engine::Postgres,
        )
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let item_state = || async {
        sqlx::query_as::<_, (String, i64, i32)>(
            "SELECT status, fencing_token, statements_done FROM run_items WHERE run_id = $1",
        )
        .bind(run.id.as_uuid())
        .fetch_one(&tool.pool)
        .await
        .unwrap()
    };
    // Stop it once it is in the pause, after the first audited statement: seen on the target itself (the
    // tool database hears of progress in batches).
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let (status, token, done) = item_state().await;
        if status == "running" && targets.sleeping(0).await {
            break token;
        }
        assert!(Instant::now() < deadline, "the first worker never got into the apply ({status}, {done})");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Workers::signal(first, "STOP");
    // The harness must see what it checks: the stopped worker's writes so far, and its target lock.
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM chaos_writes WHERE app = 'chaos-stopped'")
        .fetch_one(&tool.pool)
        .await
        .unwrap();
    if seen == 0 {
        report.violations.push("the write log saw no write of the stopped worker: the check is blind".into());
    }
    if !targets.locked(0, fleet.targets[0]).await {
        report.violations.push("the stopped worker's target lock is not visible: the lock check is blind".into());
    }
    tokio::time::sleep(setup.lease + Duration::from_millis(500)).await;
    workers.spawn("chaos-taker");
    let deadline = Instant::now() + setup.settle_bound();
    // The database's clock at the takeover, as text (the kit has no date-time crate).
    let taken_at: String = loop {
        let (_, now_token, _) = item_state().await;
        if now_token > token {
            break sqlx::query_scalar("SELECT clock_timestamp()::text").fetch_one(&tool.pool).await.unwrap();
        }
        if Instant::now() > deadline {
            report.violations.push("the item was never taken over from the stopped worker".into());
            Workers::signal(first, "CONT");
            return report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    report.kills += 1;
    report.kills_in_flight += 1;
    Workers::signal(first, "CONT");
    match settle(&tool.pool, run.id, setup.settle_bound() + Duration::from_millis(pause_ms)).await {
        Some(took) => report.longest_settle = took,
        None => report.violations.push("the run did not end after the stopped worker resumed".into()),
    }
    // Give the resumed worker time to try whatever it still meant to write.
    tokio::time::sleep(setup.lease).await;
    let stale: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chaos_writes WHERE app = 'chaos-stopped' AND at > $1::timestamptz")
            .bind(&taken_at)
            .fetch_one(&tool.pool)
            .await
            .unwrap();
    if stale > 0 {
        report.violations.push(format!("{stale} writes of the stopped worker were accepted after the takeover"));
    }
    if run_status(&tool.pool, run.id).await != domain::run::RunStatus::Succeeded {
        report.violations.push(format!("the run ended {}", run_status(&tool.pool, run.id).await));
    }
    check_trial(&fleet, &targets, run.id, 1, 1, &mut report).await;
    report
}

/// A throwaway Postgres cluster (initdb/pg_ctl from the system), for faults a shared server must not
/// suffer: restarting it.
#[derive(Debug)]
pub struct Cluster {
    data: PathBuf,
    log: PathBuf,
    /// The server's options (`pg_ctl -o`): port, socket directory, listen address.
    options: String,
    pg_ctl: PathBuf,
    as_user: Option<String>,
    pub url: String,
}

impl Cluster {
    /// Creates and starts a cluster in `dir` (emptied first) on `port`.
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        use anyhow::Context;
        let bin = pg_bin_dir().context("no initdb/pg_ctl under /usr/lib/postgresql or on PATH")?;
        let as_user = is_root().then(|| "postgres".to_owned());
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        if let Some(user) = &as_user {
            checked(Command::new("chown").args(["-R", user]).arg(dir))?;
        }
        let cluster = Cluster {
            data: dir.join("data"),
            log: dir.join("postgres.log"),
            options: format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display()),
            pg_ctl: bin.join("pg_ctl"),
            as_user,
            url: format!("postgres://postgres@127.0.0.1:{port}"),
        };
        checked(cluster.command(&bin.join("initdb")).arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]))?;
        checked(
            cluster
                .command(&cluster.pg_ctl)
                .arg("-D")
                .arg(&cluster.data)
                .arg("-o")
                .arg(&cluster.options)
                .arg("-l")
                .arg(&cluster.log)
                .args(["-w", "start"]),
        )?;
        Ok(cluster)
    }

    fn command(&self, binary: &Path) -> Command {
        match &self.as_user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(binary);
                command
            }
            None => Command::new(binary),
        }
    }

    /// Crashes the server (`-m immediate`: no shutdown checkpoint, every connection cut) and starts it
    /// again after `downtime` (crash recovery on start). Zero: `pg_ctl restart -m immediate`.
    pub fn crash_restart(&self, downtime: Duration) -> anyhow::Result<()> {
        // The server's output goes to the log file: were it to inherit ours, waiting for this command's
        // output would wait for the server to exit.
        let pg_ctl = || {
            let mut command = self.command(&self.pg_ctl);
            command.arg("-D").arg(&self.data).arg("-l").arg(&self.log).arg("-o").arg(&self.options);
            command
        };
        if downtime.is_zero() {
            return checked(pg_ctl().args(["-m", "immediate", "-w", "restart"]));
        }
        checked(pg_ctl().args(["-m", "immediate", "-w", "stop"]))?;
        std::thread::sleep(downtime);
        checked(pg_ctl().args(["-w", "start"]))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command(&self.pg_ctl).arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn checked(command: &mut Command) -> anyhow::Result<()> {
    let out = command.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        command.get_program(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| dir.join("initdb").is_file()))
}

/// A run over ten Postgres targets with the tool database on a throwaway cluster that is crashed and
/// restarted (after `downtime`; longer than the lease, every lease expires meanwhile) while items are
/// being applied. Violations: the run not ending `succeeded`, a statement applied twice or missing.
pub async fn restart_trial(
    setup: &WorkerSetup,
    cluster_dir: &Path,
    port: u16,
    downtime: Duration,
) -> anyhow::Result<Report> {
    let cluster = Cluster::start(cluster_dir, port)?;
    let tool_url = format!("{}/chaos_tool", cluster.url);
    {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", cluster.url)).await?;
        sqlx::raw_sql("CREATE DATABASE chaos_tool").execute(&mut admin).await?;
        admin.close().await?;
    }
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&tool_url).await?;
    storage::schema::migrate(&pool).await?;
    let targets = Targets::create(Engine::Postgres, 10).await;
    let mut fleet = Fleet::new(&pool, EnvironmentPolicy::permissive_default()).await;
    for (i, url) in targets.urls().iter().enumerate() {
        fleet.add_target(&format!("chaos-{i:02}"), url, None).await;
    }
    let mut workers = Workers::new(setup, &tool_url);
    workers.spawn_many(3);
    let version = fleet
        .migration("000001", &trial_sql(Engine::Postgres, 1, 400), None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 10).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running: i64 =
            sqlx::query_scalar("SELECT count(*) FROM run_items WHERE run_id = $1 AND status = 'running'")
                .bind(run.id.as_uuid())
                .fetch_one(&pool)
                .await?;
        if running > 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no item started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    pool.close().await;
    cluster.crash_restart(downtime)?;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&tool_url).await?;
    let mut report = Report { trials: 1, kills: 1, kills_in_flight: 1, ..Report::default() };
    match settle(&pool, run.id, setup.settle_bound() * 2 + downtime).await {
        Some(took) => report.longest_settle = took,
        None => report
            .violations
            .push(format!("the run was still {} after the tool database restarted", run_status(&pool, run.id).await)),
    }
    if run_status(&pool, run.id).await != domain::run::RunStatus::Succeeded {
        report.violations.push(format!("the run ended {}", run_status(&pool, run.id).await));
    }
    let fleet = Fleet { pool: pool.clone(), ..fleet };
    check_trial(&fleet, &targets, run.id, 1, 1, &mut report).await;
    drop(workers);
    pool.close().await;
    drop(cluster);
    Ok(report)
}
