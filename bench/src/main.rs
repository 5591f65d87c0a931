//! `migrate-hub-bench` (run by `cargo xtask bench fleet|queue` and `cargo xtask chaos`, which build the
//! release worker first): performance figures, printed, measured against a peer in the same run; and
//! chaos trials.
//!
//! - `fleet --targets N --workers W [--engine postgres|mysql]`: N fresh databases get a migration set
//!   through the whole hub path (one release run queued in the tool database, W `migrate-hub-worker`
//!   processes claiming, locking, journaling and logging), then N other fresh databases get the same set
//!   from a sequential loop of sqlx's own `Migrator` (what `sqlx migrate run` does per database), and N
//!   more from a 4-way parallel loop of it (what a team that scripts its fleet does). Then day two: each
//!   side's databases, the set applied, get one more migration from the same side, as later releases do.
//!   Postgres uses River's migrations (`../shared/workloads`); MariaDB a small set written here.
//! - `chaos [--trials N --stops S --restarts R --seed X]`: fault injection against real worker processes
//!   (`migrate_hub_tests::chaos`); exits non-zero on any violation.
//! - `queue [--items N]`: the queue alone, with no-op items: claim + complete throughput with batched
//!   claims, and pickup latency (enqueue commit → claim) of an idle worker process with NOTIFY and with
//!   polling only.

// Printing the figures on stdout is what this program is for.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use domain::enums::{Direction, Engine, FailurePolicy, TlsMode, TransactionMode};
use domain::ids::WorkerId;
use domain::model::MigrationVersion;
use domain::policy::EnvironmentPolicy;
use domain::run::{RunItemStatus, RunStatus};
use migrate_hub_tests::fleet::Fleet;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::{Connection, PgPool};
use storage::queue::Ending;

use clap::{Parser, Subcommand};

mod scale;

/// The parallel loop of the peer: `xargs -P4 sqlx migrate run`, as a team that scripts its fleet runs it.
const PEER_LANES: usize = 4;

#[derive(Debug, Parser)]
#[command(name = "migrate-hub-bench", about = "migrate-hub performance figures")]
struct Cli {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// A migration set applied to N fresh databases through the hub (W worker processes) and by a
    /// sequential loop of sqlx's Migrator.
    Fleet {
        #[arg(long, default_value_t = 200)]
        targets: usize,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Items each worker process runs at once.
        #[arg(long, default_value_t = 4)]
        slots: usize,
        /// postgres (River's migrations) or mysql (MariaDB, a set of our own).
        #[arg(long, default_value = "postgres")]
        engine: String,
        /// The release run's concurrency limit (targets at once). Default: 4, the peer's lanes (or every
        /// slot, if fewer), so the hub and the 4-way loop run equally parallel. More than the server's cores
        /// can serve only slows both down: on this 2-core machine, 16 at once took 7.27 s for 200 targets
        /// where 4 took 5.01 s, with 64.5 against 42.2 ms of server CPU per target (more sessions catching
        /// up on each other's catalog invalidations).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Connect without TLS, hub and sqlx alike (default: TLS `prefer`, which on this server means TLS),
        /// to show what the handshake costs per target.
        #[arg(long)]
        no_tls: bool,
        /// Connect with TLS `verify-ca`, hub and sqlx alike: the server's certificate is checked against the
        /// system's trusted roots, as a production target's is (here the server's own certificate is one of
        /// them), to show what loading and checking them costs per target.
        #[arg(long, conflicts_with = "no_tls")]
        verify_tls: bool,
        /// Rounds of the hub against the 4-way sqlx loop (each on fresh databases, in alternating order);
        /// their medians make the `fleet:` line.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The Postgres server (URL without a database) that holds the hub's own database; default the
        /// targets' server. On the targets' server, the fleet's DDL overflows the server-wide cache
        /// invalidation queue and the hub's idle pool connections must reload their caches (measured in
        /// ARCHITECTURE.md); a deployment keeps the hub's database on a server of its own.
        #[arg(long)]
        tool_server: Option<String>,
    },
    /// A db set of many targets: the release request that makes one item per target, the pages and API of
    /// such a run and set (release server binary), and claim throughput (see `scale.rs`).
    Scale {
        #[arg(long, default_value_t = 10_000)]
        targets: usize,
        /// Connections claiming at once.
        #[arg(long, default_value_t = 4)]
        claimers: usize,
    },
    /// Fault injection (see `migrate_hub_tests::chaos`): `trials` SIGKILL trials per engine (Postgres
    /// and MariaDB), `stops` SIGSTOP-past-the-lease trials, `restarts` tool-database crash restarts.
    Chaos {
        #[arg(long, default_value_t = 100)]
        trials: u64,
        #[arg(long, default_value_t = 5)]
        stops: u64,
        #[arg(long, default_value_t = 3)]
        restarts: u64,
        /// Seed for the kill moments and victims (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The SQL review (`domain::lint`, as the hub runs it on each stored version) over every `.sql` file of
    /// the shared workloads and our own sets: files and statements per second, and what it found. With
    /// `--squawk PATH` (squawk's own CLI), the same files through it, side by side.
    Lint {
        /// Times over the whole set; the best is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        squawk: Option<PathBuf>,
    },
    /// Queue throughput with no-op items, and pickup latency with and without NOTIFY.
    Queue {
        #[arg(long, default_value_t = 20_000)]
        items: usize,
        /// Concurrent claimers for the throughput figure.
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.which {
        Which::Fleet { targets, workers, slots, engine, concurrency, no_tls, verify_tls, rounds, tool_server } => {
            let concurrency = concurrency.unwrap_or(PEER_LANES.min(workers * slots));
            let engine = engine.parse().map_err(|e| anyhow::anyhow!("--engine: {e}"))?;
            let tls = match (no_tls, verify_tls) {
                (true, _) => TlsMode::Disable,
                (false, true) => TlsMode::VerifyCa,
                (false, false) => TlsMode::Prefer,
            };
            let shape = Shape { targets, workers, slots, concurrency, rounds: rounds.max(1) };
            runtime.block_on(fleet(shape, engine, tls, tool_server.as_deref()))
        }
        Which::Queue { items, workers } => runtime.block_on(queue(items, workers)),
        Which::Scale { targets, claimers } => runtime.block_on(scale::scale(targets.max(1), claimers.max(1))),
        Which::Lint { rounds, squawk } => lint(rounds, squawk.as_deref()),
        Which::Chaos { trials, stops, restarts, seed } => runtime.block_on(chaos(trials, stops, restarts, seed)),
    }
}

/// Every `.sql` file under `dir`, sorted.
fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            sql_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

fn lint(rounds: usize, squawk: Option<&Path>) -> anyhow::Result<()> {
    let shared = std::env::var_os("MIGRATE_HUB_WORKLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/workloads"));
    let mut files = Vec::new();
    sql_files(&shared, &mut files)?;
    sql_files(&workspace_root().join("tests/corpus"), &mut files)?;
    files.sort();
    let texts: Vec<String> =
        files.iter().map(std::fs::read_to_string).collect::<Result<_, _>>().context("cannot read a workload file")?;
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut best = Duration::MAX;
    let (mut statements, mut errors, mut warnings, mut unsplit) = (0, 0, 0, 0);
    for _ in 0..rounds.max(1) {
        (statements, errors, warnings, unsplit) = (0, 0, 0, 0);
        let started = Instant::now();
        for text in &texts {
            // As the hub does: split as Postgres, then review (a file that does not split is not reviewed).
            let Ok(split) = domain::split::split(text, domain::split::Dialect::Postgres) else {
                unsplit += 1;
                continue;
            };
            statements += split.len();
            for finding in domain::lint::postgres(text, &split, true) {
                match finding.severity {
                    domain::model::Severity::Error => errors += 1,
                    domain::model::Severity::Warning => warnings += 1,
                    domain::model::Severity::Info => {}
                }
            }
        }
        best = best.min(started.elapsed());
    }
    let seconds = best.as_secs_f64();
    println!(
        "lint: files={} bytes={bytes} statements={statements} not_split_as_postgres={unsplit} best_of={rounds} \
         seconds={seconds:.3} files_per_s={:.0} statements_per_s={:.0}",
        files.len(),
        files.len() as f64 / seconds,
        statements as f64 / seconds
    );
    println!(
        "lint: findings errors={errors} warnings={warnings} (MySQL-only files parse as Postgres here: their syntax \
         errors count; the hub reviews a version for Postgres only where it splits as Postgres)"
    );
    lint_mysql(rounds, &shared, &files, &texts);
    if let Some(squawk) = squawk {
        let started = Instant::now();
        let out =
            Command::new(squawk).args(&files).output().with_context(|| format!("cannot run {}", squawk.display()))?;
        println!(
            "lint: peer squawk CLI ({}) on the same files: seconds={:.3} exit={:?}",
            squawk.display(),
            started.elapsed().as_secs_f64(),
            out.status.code()
        );
    } else {
        println!("lint: no peer run (give --squawk PATH to time squawk's own CLI on the same files)");
    }
    Ok(())
}

/// The MySQL review (`domain::lint::mysql`) over the same files, each that splits as MySQL: its own figures.
fn lint_mysql(rounds: usize, shared: &Path, files: &[PathBuf], texts: &[String]) {
    let mut best = Duration::MAX;
    let (mut statements, mut warnings, mut infos, mut unsplit) = (0, 0, 0, 0);
    // Per set (the first folder under the workloads, or our own corpus): unparsed statements in the files
    // written for MySQL (named so: `.mysql.`, `db/mysql/`) and in the others, which are Postgres SQL.
    let mut unparsed = BTreeMap::<String, (usize, usize)>::new();
    for round in 0..rounds.max(1) {
        (statements, warnings, infos, unsplit) = (0, 0, 0, 0);
        let started = Instant::now();
        for (path, text) in files.iter().zip(texts) {
            let Ok(split) = domain::split::split(text, domain::split::Dialect::Mysql) else {
                unsplit += 1;
                continue;
            };
            statements += split.len();
            let findings = domain::lint::mysql(text, &split, true);
            for finding in &findings {
                match finding.severity {
                    domain::model::Severity::Warning => warnings += 1,
                    domain::model::Severity::Info => infos += 1,
                    domain::model::Severity::Error => {}
                }
            }
            if round == 0 {
                let set = path
                    .strip_prefix(shared)
                    .ok()
                    .and_then(|p| p.components().next())
                    .map_or_else(|| "ours".to_owned(), |c| c.as_os_str().to_string_lossy().into_owned());
                let count = findings.iter().filter(|f| f.rule == "unparsed").count();
                let entry = unparsed.entry(set).or_default();
                if path.to_string_lossy().contains("mysql") { entry.0 += count } else { entry.1 += count }
            }
        }
        best = best.min(started.elapsed());
    }
    let seconds = best.as_secs_f64();
    let split = files.len() - unsplit;
    println!(
        "lint: mysql files={split} statements={statements} not_split_as_mysql={unsplit} best_of={rounds} \
         seconds={seconds:.3} files_per_s={:.0} statements_per_s={:.0} findings warnings={warnings} info={infos}",
        split as f64 / seconds,
        statements as f64 / seconds
    );
    let by_set: Vec<String> = unparsed.iter().map(|(set, (mysql, other))| format!("{set}={mysql}/{other}")).collect();
    println!("lint: mysql unparsed (in MySQL files/in the others, which are Postgres SQL) {}", by_set.join(" "));
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// A throwaway tool database with the hub's schema.
struct ToolDb {
    url: String,
    /// The database's name.
    name: String,
    pool: PgPool,
}

impl ToolDb {
    /// On `server`, else on the servers the tests use (TEST_PG_URL, the local default, or a container).
    async fn create(name: &str, server: Option<&str>) -> anyhow::Result<Self> {
        let server = match server {
            Some(server) => server.trim_end_matches('/').to_owned(),
            None => migrate_hub_tests::pg_server_url().await,
        };
        let url = format!("{server}/{name}");
        let _ = sqlx::Postgres::force_drop_database(&url).await;
        sqlx::Postgres::create_database(&url).await.with_context(|| format!("cannot create {name}"))?;
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(&url).await?;
        Migrator::new(workspace_root().join("migrations")).await?.run(&pool).await?;
        Ok(ToolDb { url, name: name.to_owned(), pool })
    }

    async fn drop(self) {
        self.pool.close().await;
        if let Err(e) = sqlx::Postgres::force_drop_database(&self.url).await {
            eprintln!("bench: could not drop the tool database: {e}");
        }
    }
}

/// Worker processes of the real binary, stopped with SIGTERM when dropped.
struct Workers(Vec<Child>);

impl Workers {
    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }

    fn start(tool_url: &str, count: usize, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let binary = target_dir().join("release/migrate-hub-worker");
        let mut children = Vec::new();
        for i in 0..count {
            let mut command = Command::new(&binary);
            // MIGRATE_HUB_BENCH_WORKER_LOG: the workers' RUST_LOG, to see where time goes.
            let log = std::env::var("MIGRATE_HUB_BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into());
            command.env("DATABASE_URL", tool_url).env("RUST_LOG", log).env("MIGRATE_HUB_LOG_FORMAT", "json");
            for (key, value) in extra {
                command.env(key, value.replace("{i}", &i.to_string()));
            }
            children.push(command.spawn().with_context(|| format!("cannot start {}", binary.display()))?);
        }
        Ok(Workers(children))
    }

    fn stop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn chaos(trials: u64, stops: u64, restarts: u64, seed: Option<u64>) -> anyhow::Result<()> {
    use migrate_hub_tests::chaos::{self, Report, Rng, WorkerSetup};
    let seed = seed
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    println!("chaos: seed={seed} (rerun with --seed {seed})");
    let setup = WorkerSetup::quick(target_dir().join("release/migrate-hub-worker"));
    let mut rng = Rng::new(seed);
    let print = |what: &str, r: &Report| {
        println!(
            "chaos: {what}: trials={} kills={} kills_in_flight={} items={} succeeded={} skipped={} \
             needs_recovery={} longest_settle_s={:.1} violations={}",
            r.trials,
            r.kills,
            r.kills_in_flight,
            r.items,
            r.succeeded,
            r.skipped,
            r.needs_recovery,
            r.longest_settle.as_secs_f64(),
            r.violations.len()
        );
        for v in &r.violations {
            println!("chaos: VIOLATION ({what}): {v}");
        }
    };
    let mut total = Report::default();
    for engine in [Engine::Postgres, Engine::Mysql] {
        let report = chaos::kill_trials(&setup, engine, trials, &mut rng).await;
        print(&format!("sigkill {engine}"), &report);
        total.merge(report);
    }
    let mut stopped = Report::default();
    for _ in 0..stops {
        stopped.merge(chaos::stop_trial(&setup).await);
    }
    print("sigstop past the lease", &stopped);
    total.merge(stopped);
    let mut restarted = Report::default();
    let dir = target_dir().join("chaos-postgres");
    for i in 0..restarts {
        // Alternately `pg_ctl restart -m immediate`, and a crash with the server down past the lease.
        let downtime = if i % 2 == 0 { Duration::ZERO } else { setup.lease + Duration::from_secs(1) };
        restarted.merge(chaos::restart_trial(&setup, &dir, 55433, downtime).await?);
    }
    print("tool database crash restart", &restarted);
    total.merge(restarted);
    print("all", &total);
    if !total.violations.is_empty() {
        bail!("{} violation(s)", total.violations.len());
    }
    Ok(())
}

async fn wait_for_end(pool: &PgPool, run: domain::ids::RunId, within: Duration) -> anyhow::Result<RunStatus> {
    let deadline = Instant::now() + within;
    loop {
        let mut conn = pool.acquire().await?;
        let status = storage::runs::get(&mut conn, run).await?.status;
        if status.is_terminal() {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("run {run} still {status} after {within:?}");
        }
        // Every 25 ms: the polls run on the measured server, so more often costs the hub's figure CPU; less
        // often adds up to this much to a phase of seconds.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A migration set as (key, name, up, down, transaction mode), with placeholders already as the hub
/// stores them (substituted per target by the worker).
struct Set {
    migrations: Vec<(String, String, String, Option<String>, TransactionMode)>,
}

fn river_set() -> anyhow::Result<Set> {
    let dir = std::env::var_os("MIGRATE_HUB_WORKLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/workloads"))
        .join("river/riverdriver/riverpgxv5/migration/main");
    let source = executor::local::load_dir(&dir, None, Engine::Postgres)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(Set {
        migrations: source
            .migrations
            .into_iter()
            .map(|m| (m.version.to_string(), m.name, m.up, m.down, m.transaction_mode))
            .collect(),
    })
}

/// Our own small MariaDB set: tables, an index, a column change, a view, a trigger.
fn mysql_set() -> Set {
    let m = |key: &str, name: &str, up: &str, down: &str| {
        (key.to_owned(), name.to_owned(), up.to_owned(), Some(down.to_owned()), TransactionMode::Transaction)
    };
    Set {
        migrations: vec![
            m(
                "001",
                "accounts",
                "CREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, email varchar(255) NOT NULL, created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP);",
                "DROP TABLE accounts;",
            ),
            m(
                "002",
                "accounts_email",
                "CREATE UNIQUE INDEX accounts_email ON accounts (email);",
                "DROP INDEX accounts_email ON accounts;",
            ),
            m(
                "003",
                "orders",
                "CREATE TABLE orders (id bigint PRIMARY KEY AUTO_INCREMENT, account_id bigint NOT NULL, total decimal(12,2) NOT NULL, CONSTRAINT orders_account FOREIGN KEY (account_id) REFERENCES accounts (id));",
                "DROP TABLE orders;",
            ),
            m(
                "004",
                "orders_status",
                "ALTER TABLE orders ADD COLUMN status varchar(16) NOT NULL DEFAULT 'new';",
                "ALTER TABLE orders DROP COLUMN status;",
            ),
            m(
                "005",
                "order_totals",
                "CREATE VIEW order_totals AS SELECT account_id, SUM(total) AS total FROM orders GROUP BY account_id;",
                "DROP VIEW order_totals;",
            ),
            m(
                "006",
                "audit",
                "CREATE TABLE order_audit (id bigint PRIMARY KEY AUTO_INCREMENT, order_id bigint NOT NULL, at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP);\nCREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW BEGIN INSERT INTO order_audit (order_id) VALUES (NEW.id); END;",
                "DROP TRIGGER orders_audit;\nDROP TABLE order_audit;",
            ),
            m(
                "007",
                "accounts_name",
                "ALTER TABLE accounts ADD COLUMN display_name varchar(100) NULL;",
                "ALTER TABLE accounts DROP COLUMN display_name;",
            ),
        ],
    }
}

/// The set as files sqlx's `Migrator` reads (`N_name.up.sql` / `.down.sql`), River's schema
/// placeholder replaced as sqlx-cli users have to do by hand.
fn write_sqlx_dir(set: &Set, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let vars = BTreeMap::from([("schema".to_owned(), "public".to_owned())]);
    let syntaxes = [domain::placeholder::Syntax::RiverTemplate];
    for (key, name, up, down, mode) in &set.migrations {
        let up = domain::placeholder::substitute(up, &vars, &syntaxes)?;
        let header = if *mode == TransactionMode::None { "-- no-transaction\n" } else { "" };
        std::fs::write(dir.join(format!("{key}_{name}.up.sql")), format!("{header}{up}"))?;
        let down = domain::placeholder::substitute(down.as_deref().unwrap_or(""), &vars, &syntaxes)?;
        std::fs::write(dir.join(format!("{key}_{name}.down.sql")), down.as_ref())?;
    }
    Ok(())
}

async fn create_databases(engine: Engine, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let server = match engine {
        Engine::Postgres => migrate_hub_tests::pg_server_url().await,
        Engine::Mysql => migrate_hub_tests::mysql_server_url().await,
    };
    let mut urls = Vec::with_capacity(count);
    for i in 0..count {
        let url = format!("{server}/{prefix}_{i:04}");
        match engine {
            Engine::Postgres => {
                let _ = sqlx::Postgres::force_drop_database(&url).await;
                sqlx::Postgres::create_database(&url).await?;
                // A database in use has been connected to before: Postgres builds a database's relation
                // cache file (`pg_internal.init`) at its first connection, 2-3 ms that no fleet pays at
                // rollout time. Every phase's databases get the same first connection here.
                sqlx::PgConnection::connect(&url).await?.close().await?;
            }
            Engine::Mysql => {
                let _ = sqlx::MySql::drop_database(&url).await;
                sqlx::MySql::create_database(&url).await?;
            }
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Drops the databases [`create_databases`] would have made with `prefix`, quietly.
async fn drop_leftovers(engine: Engine, prefix: &str, count: usize) -> anyhow::Result<()> {
    let server = match engine {
        Engine::Postgres => migrate_hub_tests::pg_server_url().await,
        Engine::Mysql => migrate_hub_tests::mysql_server_url().await,
    };
    for i in 0..count {
        let url = format!("{server}/{prefix}_{i:04}");
        let _ = match engine {
            Engine::Postgres => sqlx::Postgres::force_drop_database(&url).await,
            Engine::Mysql => sqlx::MySql::drop_database(&url).await,
        };
    }
    Ok(())
}

async fn drop_databases(engine: Engine, urls: &[String]) {
    for url in urls {
        let dropped = match engine {
            Engine::Postgres => sqlx::Postgres::force_drop_database(url).await,
            Engine::Mysql => sqlx::MySql::drop_database(url).await,
        };
        if let Err(e) = dropped {
            eprintln!("bench: could not drop {url}: {e}");
        }
    }
}

/// How the fleet bench runs: targets, worker processes, slots each, the run's concurrency limit, rounds.
struct Shape {
    targets: usize,
    workers: usize,
    slots: usize,
    concurrency: usize,
    rounds: usize,
}

async fn fleet(shape: Shape, engine: Engine, tls: TlsMode, tool_server: Option<&str>) -> anyhow::Result<()> {
    let Shape { targets, workers, slots, concurrency, rounds } = shape;
    let set = match engine {
        Engine::Postgres => river_set()?,
        Engine::Mysql => mysql_set(),
    };
    let pid = std::process::id();
    eprintln!(
        "bench fleet: {targets} {engine} databases each for a sequential sqlx loop, then {rounds} round(s) of the hub \
         and a 4-way sqlx loop, in alternating order"
    );
    // Each phase's databases exist only during that phase: with hundreds of idle databases beside it, the
    // autovacuum launcher visits one every naptime/N seconds, and that cost would land on whichever phase
    // runs alongside them.
    let keep = std::env::var_os("MIGRATE_HUB_BENCH_KEEP").is_some();
    let (hub_prefix, seq_prefix, par_prefix) =
        (format!("bench_hub_{pid}"), format!("bench_sqlx_{pid}"), format!("bench_sqlx4_{pid}"));
    let tool = ToolDb::create(&format!("bench_tool_{pid}"), tool_server).await?;
    let sqlx_url = |url: &str| match (tls, engine) {
        (TlsMode::Disable, Engine::Postgres) => format!("{url}?sslmode=disable"),
        (TlsMode::Disable, Engine::Mysql) => format!("{url}?ssl-mode=DISABLED"),
        (TlsMode::VerifyCa, Engine::Postgres) => format!("{url}?sslmode=verify-ca"),
        (TlsMode::VerifyCa, Engine::Mysql) => format!("{url}?ssl-mode=VERIFY_CA"),
        _ => url.to_owned(),
    };
    let result = async {
        let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
        fleet.tls_mode = tls;
        let vars = BTreeMap::from([("schema".to_owned(), "public".to_owned())]);
        // The hub's targets are the same database names every round, made afresh before it.
        let server = match engine {
            Engine::Postgres => migrate_hub_tests::pg_server_url().await,
            Engine::Mysql => migrate_hub_tests::mysql_server_url().await,
        };
        for i in 0..targets {
            fleet
                .add_target_with(&format!("t-{i:04}"), &format!("{server}/{hub_prefix}_{i:04}"), None, vars.clone())
                .await;
        }
        let mut versions: Vec<MigrationVersion> = Vec::new();
        for (key, _name, up, down, mode) in &set.migrations {
            versions.push(fleet.migration(key, up, down.as_deref(), *mode, engine).await);
        }
        // Day two: the same targets, the set applied, get one more migration (see `day_two`).
        let later = day_two(engine, &set);
        let mut later_versions = versions.clone();
        later_versions.push(fleet.migration(&later.0, &later.2, later.3.as_deref(), later.4, engine).await);
        let later_set = Set { migrations: set.migrations.iter().cloned().chain([later]).collect() };
        let dir = target_dir().join(format!("bench/sqlx-{engine}"));
        write_sqlx_dir(&set, &dir)?;
        let migrator = std::sync::Arc::new(Migrator::new(dir.as_path()).await?);
        let dir = target_dir().join(format!("bench/sqlx-{engine}-day-two"));
        write_sqlx_dir(&later_set, &dir)?;
        let later_migrator = std::sync::Arc::new(Migrator::new(dir.as_path()).await?);

        // The peer's sequential loop, once: the `ratio=` baseline.
        let seq_dbs = create_databases(engine, &seq_prefix, targets).await?;
        settle_io(&tool.pool).await?;
        let started = Instant::now();
        for url in &seq_dbs {
            sqlx_migrate(&migrator, engine, &sqlx_url(url)).await?;
        }
        let sequential = started.elapsed();
        let started = Instant::now();
        for url in &seq_dbs {
            sqlx_migrate(&later_migrator, engine, &sqlx_url(url)).await?;
        }
        let sequential_later = started.elapsed();
        if !keep {
            drop_databases(engine, &seq_dbs).await;
        }

        // Each worker serves its metrics, for the exact per-item overhead it measured.
        // Port `<prefix><i>`: worker i (of at most ten) listens on 1940i…5939i.
        let metrics_port = 1940 + pid % 4000;
        let mut procs = Workers::start(
            &tool.url,
            workers,
            &[
                ("MIGRATE_HUB_WORKER_SLOTS", slots.to_string()),
                ("MIGRATE_HUB_METRICS_ADDR", format!("127.0.0.1:{metrics_port}{{i}}")),
            ],
        )?;
        tokio::time::sleep(Duration::from_millis(500)).await; // let them connect and LISTEN
        let worker_pids = procs.pids();
        let mut hub_rounds = Vec::new();
        let mut measured = Vec::new();
        let mut par_rounds = Vec::new();
        // Day two, each round, after its first releases: (hub, 4-way sqlx) times and CPU, and what the workers
        // measured of the day-two items.
        let mut later_rounds: Vec<(Option<Timed>, Option<Timed>)> = Vec::with_capacity(rounds);
        let mut later_measured = Vec::new();
        let mut first_runs = Vec::new();
        for round in 0..rounds {
            let mut later_round: (Option<Timed>, Option<Timed>) = (None, None);
            // Alternating which goes first, so a drift of the machine's speed during the bench (seen here:
            // the same phase varies by a fifth between runs) weighs on both alike.
            for hub_now in if round % 2 == 0 { [true, false] } else { [false, true] } {
                if hub_now {
                    let dbs = create_databases(engine, &hub_prefix, targets).await?;
                    settle_io(&tool.pool).await?;
                    // The whole set as one release run: one request, one approval, one execute.
                    let limit = u32::try_from(concurrency).unwrap_or(1000).clamp(1, 1000);
                    let release = |versions, what| hub_release(&fleet, &tool, versions, limit, &worker_pids, what);
                    let (run, timed) = release(&versions, format!("round {round} hub phase")).await?;
                    first_runs.push(run);
                    hub_rounds.push(timed);
                    // Read now: a worker's summary covers only its last minute or so, and the next phase
                    // would leave it empty.
                    let workers_measured = |first_release: &str| {
                        (0..workers)
                            .filter_map(|i| worker_measured(&format!("127.0.0.1:{metrics_port}{i}"), first_release))
                            .collect::<Vec<Measured>>()
                    };
                    measured.push(workers_measured("true"));
                    // Day two: the whole project again (the set is skipped, one migration is new).
                    let (_, timed) = release(&later_versions, format!("round {round} hub day two")).await?;
                    later_round.0 = Some(timed);
                    later_measured.push(workers_measured("false"));
                    if !keep {
                        drop_databases(engine, &dbs).await;
                    }
                } else {
                    let dbs = create_databases(engine, &par_prefix, targets).await?;
                    settle_io(&tool.pool).await?;
                    let urls: Vec<String> = dbs.iter().map(|u| sqlx_url(u)).collect();
                    let lanes = |migrator: &std::sync::Arc<Migrator>, what: &str| {
                        sqlx_phase(&urls, migrator, engine, &tool.name, what)
                    };
                    par_rounds.push(lanes(&migrator, &format!("round {round} 4-way sqlx phase"))?);
                    later_round.1 = Some(lanes(&later_migrator, &format!("round {round} 4-way sqlx day two"))?);
                    if !keep {
                        drop_databases(engine, &dbs).await;
                    }
                }
            }
            later_rounds.push(later_round);
        }
        procs.stop();
        let overhead = overhead_p50(&tool.pool, &first_runs).await?;
        let later = Later { sequential: sequential_later, rounds: later_rounds, measured: later_measured };
        Ok::<_, anyhow::Error>((sequential, hub_rounds, par_rounds, overhead, measured, later))
    }
    .await;
    // MIGRATE_HUB_BENCH_KEEP=1 keeps the databases, e.g. to read pg_stat_statements per database after.
    if !keep {
        tool.drop().await;
    }
    if !keep && result.is_err() {
        // After a failure part-way, whatever is left (each phase drops its own databases when it succeeds).
        for prefix in [&hub_prefix, &seq_prefix, &par_prefix] {
            let _ = drop_leftovers(engine, prefix, targets).await;
        }
    }
    let (sequential, hub_rounds, par_rounds, (overhead, sql_ms), measured, later) = result?;
    println!(
        "fleet: engine={engine} migrations={} worker_slots={slots} concurrency={concurrency} tls={tls} rounds={rounds} \
         tool_db={} (one release run a round)",
        set.migrations.len(),
        if tool_server.is_some() { "own-server" } else { "targets-server" }
    );
    println!(
        "fleet: hub per-item overhead (claim, connect, lock, history, logs, ack; minus the SQL) p50_ms={overhead:.2} \
         (from the stored whole-millisecond durations)"
    );
    // The same measure for the peer: sqlx's time per target (sequential, so nothing overlaps) minus the
    // time of the same SQL as the hub's items measured it on the server (comparable only when the hub ran
    // one item at a time too).
    let sqlx_per_target = sequential.as_secs_f64() * 1000.0 / targets as f64;
    if concurrency == 1 {
        println!(
            "fleet: sqlx sequential per-target overhead (time per target {sqlx_per_target:.2} ms minus the set's \
             SQL, p50 {sql_ms:.2} ms as the hub measured it) ms={:.2}",
            sqlx_per_target - sql_ms
        );
    }
    for (round, measured) in measured.iter().enumerate() {
        print_measured(&format!("fleet: round {round}:"), measured);
    }
    // CPU per target, whatever else ran on the machine: where the hub's time goes, against the peer.
    let per_target = |cpu: Option<PhaseCpu>| match cpu {
        Some(PhaseCpu { server, tool, client, machine }) => format!(
            "server_ms={:.1} (of which tool_db_ms={:.1}) client_ms={:.1} total_ms={:.1} machine_ms={:.1}",
            server * 1000.0 / targets as f64,
            tool * 1000.0 / targets as f64,
            client * 1000.0 / targets as f64,
            (server + client) * 1000.0 / targets as f64,
            machine * 1000.0 / targets as f64
        ),
        None => "unavailable (no /proc)".to_owned(),
    };
    for (round, (hub, par)) in hub_rounds.iter().zip(&par_rounds).enumerate() {
        println!(
            "fleet: round {round}: hub_s={:.2} sqlx4_s={:.2} ratio_sqlx4={:.2}; cpu per target, hub (database server; \
             worker processes): {}; 4-way sqlx (database server; the sqlx lanes): {}",
            hub.0.as_secs_f64(),
            par.0.as_secs_f64(),
            par.0.as_secs_f64() / hub.0.as_secs_f64(),
            per_target(hub.1),
            per_target(par.1)
        );
    }
    let median = |phases: &[(Duration, Option<PhaseCpu>)]| {
        let mut seconds: Vec<f64> = phases.iter().map(|p| p.0.as_secs_f64()).collect();
        percentile(&mut seconds, 0.5)
    };
    // Day two: what every later release of the project pays, the history there already.
    let Later { sequential: sequential_later, rounds: later_rounds, measured: later_measured } = later;
    let later_migration = day_two(engine, &set).2;
    println!("fleet: day two: each round's targets, the set applied, get one more migration: {later_migration}");
    if concurrency == 1 {
        println!(
            "fleet: day two: sqlx sequential per-target time (its SQL included) ms={:.2}",
            sequential_later.as_secs_f64() * 1000.0 / targets as f64
        );
    }
    for (round, ((hub, par), measured)) in later_rounds.iter().zip(&later_measured).enumerate() {
        let (Some(hub), Some(par)) = (hub, par) else { continue };
        println!(
            "fleet: day two: round {round}: hub_s={:.2} sqlx4_s={:.2} ratio_sqlx4={:.2}; cpu per target, hub: {}; \
             4-way sqlx: {}",
            hub.0.as_secs_f64(),
            par.0.as_secs_f64(),
            par.0.as_secs_f64() / hub.0.as_secs_f64(),
            per_target(hub.1),
            per_target(par.1)
        );
        print_measured(&format!("fleet: day two: round {round}:"), measured);
    }
    let (later_hub, later_par): (Vec<Timed>, Vec<Timed>) =
        later_rounds.iter().filter_map(|(hub, par)| hub.zip(*par)).unzip();
    if let Some(sums) = sums("hub", &later_hub, "sqlx4", &later_par) {
        println!("fleet: day two: all rounds: {sums}");
    }
    let (hub, parallel, sequential) = (median(&hub_rounds), median(&par_rounds), sequential.as_secs_f64());
    // Over all the rounds: this machine's speed drifts by a tenth or more between phases minutes apart (the
    // same work, the same order), so a round's ratio is noisy; the sums weigh every round alike.
    println!(
        "fleet: all rounds: {}",
        sums("hub", &hub_rounds, "sqlx4", &par_rounds).unwrap_or_else(|| "no rounds".to_owned())
    );
    // Each round's two phases ran minutes apart at most, in alternating order: their ratio is the paired
    // measure, and its median the line's (the ratio of the two phases' own medians would pair a fast round's
    // phase with a slow one's).
    let mut paired: Vec<f64> =
        hub_rounds.iter().zip(&par_rounds).map(|(h, p)| p.0.as_secs_f64() / h.0.as_secs_f64()).collect();
    println!(
        "fleet: targets={targets} workers={workers} hub_s={hub:.2} baseline_s={sequential:.2} sqlx4_s={parallel:.2} \
         ratio={:.2} ratio_sqlx4={:.2} (hub_s, sqlx4_s: medians of the rounds; ratio_sqlx4: the median of the rounds' \
         own ratios)",
        sequential / hub,
        percentile(&mut paired, 0.5),
    );
    Ok(())
}

/// Two phases' times and machine CPU summed over the rounds, side by side, with the ratios of the sums
/// (`peer` over `ours`: above 1, ours took less); `None` without rounds.
fn sums(ours: &str, our_rounds: &[Timed], peer: &str, peer_rounds: &[Timed]) -> Option<String> {
    let seconds = |rounds: &[Timed]| rounds.iter().map(|r| r.0.as_secs_f64()).sum::<f64>();
    let machine = |rounds: &[Timed]| rounds.iter().map(|r| r.1.map(|c| c.machine)).sum::<Option<f64>>();
    let (our_s, peer_s) = (seconds(our_rounds), seconds(peer_rounds));
    if our_rounds.is_empty() || peer_rounds.is_empty() || our_s <= 0.0 {
        return None;
    }
    let cpu = match (machine(our_rounds), machine(peer_rounds)) {
        (Some(a), Some(b)) if a > 0.0 => {
            format!(" machine_cpu_{ours}_s={a:.2} machine_cpu_{peer}_s={b:.2} cpu_ratio_{peer}={:.2}", b / a)
        }
        _ => String::new(),
    };
    Some(format!(
        "rounds={} {ours}_s={our_s:.2} {peer}_s={peer_s:.2} ratio_{peer}_sum={:.2}{cpu}",
        our_rounds.len().min(peer_rounds.len()),
        peer_s / our_s
    ))
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Starts a measured phase with the same I/O state as the others: creating hundreds of databases leaves
/// WAL and dirty pages that a checkpoint would otherwise flush during whichever phase comes first.
async fn settle_io(pool: &PgPool) -> anyhow::Result<()> {
    if let Err(e) = sqlx::raw_sql("CHECKPOINT").execute(pool).await {
        eprintln!("bench: no CHECKPOINT before the phase (needs a superuser or pg_checkpoint): {e}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// The day-two migration of a set: a nullable column added to a table the set made (instant on both
/// engines), keyed after the set's last migration. A release of the project then finds the set applied
/// and the history there: what every release after a project's first on a target looks like.
fn day_two(engine: Engine, set: &Set) -> (String, String, String, Option<String>, TransactionMode) {
    let last = set.migrations.last().map_or("0", |m| m.0.as_str());
    let key = format!("{:0width$}", last.parse::<u64>().unwrap_or(0) + 1, width = last.len());
    let (table, column) = match engine {
        Engine::Postgres => ("river_job", "text"),
        Engine::Mysql => ("accounts", "varchar(32) NULL"),
    };
    (
        key,
        "day_two".to_owned(),
        format!("ALTER TABLE {table} ADD COLUMN bench_day_two {column};"),
        Some(format!("ALTER TABLE {table} DROP COLUMN bench_day_two;")),
        TransactionMode::Transaction,
    )
}

/// One release run of `versions` over the fleet's set (concurrency `limit`) through the workers `pids`, to its
/// success: its id, how long it took and the CPU it used. Its span is printed with `what` (for profiles of a
/// phase alone, e.g. `perf record -k CLOCK_REALTIME`, then `perf report --time`).
async fn hub_release(
    fleet: &Fleet,
    tool: &ToolDb,
    versions: &[MigrationVersion],
    limit: u32,
    pids: &[u32],
    what: String,
) -> anyhow::Result<(domain::ids::RunId, Timed)> {
    let (from, cpu, started) = (unix_now(), Cpu::read(Some(pids), &tool.name), Instant::now());
    let run = fleet.queue_release(versions, Direction::Up, FailurePolicy::StopOnFirstFailure, limit, None).await;
    let status = wait_for_end(&tool.pool, run.id, Duration::from_secs(1800)).await?;
    if status != RunStatus::Succeeded {
        bail!("the release run of {what} ended {status}");
    }
    let took = started.elapsed();
    let cpu = cpu.zip(Cpu::read(Some(pids), &tool.name)).map(|(a, b)| a.since(b));
    eprintln!("bench fleet: {what} from {from:.6} to {:.6} (unix seconds)", unix_now());
    Ok((run.id, (took, cpu)))
}

/// A measured phase: how long it took, and the CPU it used (where `/proc` tells).
type Timed = (Duration, Option<PhaseCpu>);

/// Day two of a fleet bench (see [`day_two`]): the sequential sqlx loop's time, each round's (hub, 4-way
/// sqlx) times, and what the workers measured of the day-two items, round by round.
struct Later {
    sequential: Duration,
    rounds: Vec<(Option<Timed>, Option<Timed>)>,
    measured: Vec<Vec<Measured>>,
}

/// One 4-way sqlx phase (see [`sqlx_lanes`]): how long it took and the CPU it used, its span printed with
/// `what` as [`hub_release`] prints the hub's.
fn sqlx_phase(
    urls: &[String],
    migrator: &std::sync::Arc<Migrator>,
    engine: Engine,
    tool_db: &str,
    what: &str,
) -> anyhow::Result<Timed> {
    let (from, cpu, started) = (unix_now(), Cpu::read(None, tool_db), Instant::now());
    sqlx_lanes(urls, migrator, engine)?;
    let took = started.elapsed();
    let cpu = cpu.zip(Cpu::read(None, tool_db)).map(|(a, b)| a.since(b));
    eprintln!("bench fleet: {what} from {from:.6} to {:.6} (unix seconds)", unix_now());
    Ok((took, cpu))
}

/// `urls` migrated by sqlx's `Migrator` in [`PEER_LANES`] lanes on their own threads (as `xargs -P4 sqlx
/// migrate run` would be four processes).
fn sqlx_lanes(urls: &[String], migrator: &std::sync::Arc<Migrator>, engine: Engine) -> anyhow::Result<()> {
    let queue = std::sync::Arc::new(std::sync::Mutex::new(urls.to_vec()));
    let lanes: Vec<_> = (0..PEER_LANES)
        .map(|_| {
            let (queue, migrator) = (queue.clone(), migrator.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                loop {
                    let next = queue.lock().map_err(|_| anyhow::anyhow!("a lane panicked"))?.pop();
                    let Some(url) = next else { return Ok(()) };
                    runtime.block_on(sqlx_migrate(&migrator, engine, &url))?;
                }
            })
        })
        .collect();
    for lane in lanes {
        lane.join().map_err(|_| anyhow::anyhow!("a sqlx lane panicked"))??;
    }
    Ok(())
}

/// Prints, after `prefix`, each worker's median per-item overhead and the median of each of its phases.
fn print_measured(prefix: &str, measured: &[Measured]) {
    let overheads: Vec<String> = measured.iter().map(|m| format!("{:.2}", m.overhead)).collect();
    println!(
        "{prefix} hub per-item overhead as each worker measured it (exact statement and commit times) p50_ms={}",
        if overheads.is_empty() { "unavailable".to_owned() } else { overheads.join(",") }
    );
    if measured.is_empty() {
        return;
    }
    // Each phase's own median: they need not add up to the whole's.
    let phases: Vec<String> = PHASES
        .iter()
        .enumerate()
        .map(|(i, phase)| {
            let each: Vec<String> =
                measured.iter().map(|m| m.phases[i].map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))).collect();
            format!("{phase}_ms={}", each.join(","))
        })
        .collect();
    println!("{prefix} its phases, p50 as each worker measured them: {}", phases.join(" "));
}

/// One database migrated by sqlx's `Migrator`, as `sqlx migrate run` does.
async fn sqlx_migrate(migrator: &Migrator, engine: Engine, url: &str) -> anyhow::Result<()> {
    match engine {
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            migrator.run(&mut conn).await?;
            conn.close().await?;
        }
        Engine::Mysql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await?;
            migrator.run(&mut conn).await?;
            conn.close().await?;
        }
    }
    Ok(())
}

/// The phases of an item's overhead a worker measures (`migrate_hub_item_phase_seconds{phase}`).
const PHASES: [&str; 5] = ["prepare", "connect", "lock_and_history", "release_beyond_sql", "record"];

/// A worker's figures for one round, in milliseconds: the median per-item overhead, and that of each of
/// its [`PHASES`].
struct Measured {
    overhead: f64,
    phases: Vec<Option<f64>>,
}

/// What a worker measured (see [`Measured`]) of the items whose `first_release` label is `first_release`,
/// read from its metrics endpoint at `addr`; `None` for a worker that ran no such item.
fn worker_measured(addr: &str, first_release: &str) -> Option<Measured> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let first = format!("first_release=\"{first_release}\"");
    // A worker that ran no such item (another took every slot the run allowed) has no figure, not a zero.
    let count = body
        .lines()
        .find(|l| l.starts_with("migrate_hub_item_overhead_seconds_count{") && l.contains(&first))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())?;
    if count == 0.0 {
        return None;
    }
    let overhead = median_ms(&body, "migrate_hub_item_overhead_seconds{", &[&first])?;
    let phases = PHASES
        .iter()
        .map(|p| median_ms(&body, "migrate_hub_item_phase_seconds{", &[&format!("phase=\"{p}\""), &first]))
        .collect();
    Some(Measured { overhead, phases })
}

/// The median of a summary's series (`prefix`, with every one of `labels` among its labels), in
/// milliseconds.
fn median_ms(body: &str, prefix: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .find(|l| {
            l.starts_with(prefix) && labels.iter().all(|label| l.contains(label)) && l.contains("quantile=\"0.5\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        // The count is the worker's whole life, the quantile its last minute or so: a worker that ran items
        // in an earlier round but none in this one answers NaN or 0, which is no figure either.
        .filter(|seconds| *seconds > 0.0)
        .map(|seconds| seconds * 1000.0)
}

/// The median, over the items of `runs`, of the time a worker spent on an item outside its SQL, from the
/// item's own timings (claim → end) and its timed log lines (statements, and the commits of migrations in
/// a transaction); and the median of the SQL time itself.
async fn overhead_p50(pool: &PgPool, runs: &[domain::ids::RunId]) -> anyhow::Result<(f64, f64)> {
    let runs: Vec<sqlx::types::Uuid> = runs.iter().map(|r| r.as_uuid()).collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT i.duration_ms, COALESCE(SUM(l.duration_ms), 0)::bigint \
         FROM run_items i LEFT JOIN run_item_logs l ON l.run_item_id = i.id AND l.duration_ms IS NOT NULL \
         WHERE i.duration_ms IS NOT NULL AND i.run_id = ANY($1) GROUP BY i.id, i.duration_ms",
    )
    .bind(runs)
    .fetch_all(pool)
    .await?;
    let mut overheads: Vec<f64> = rows.iter().map(|(total, sql)| (total - sql).max(0) as f64).collect();
    let mut sql: Vec<f64> = rows.iter().map(|(_, sql)| *sql as f64).collect();
    Ok((percentile(&mut overheads, 0.5), percentile(&mut sql, 0.5)))
}

/// CPU time (user + system) used so far, in clock ticks, read from `/proc` (Linux): by the database
/// server (every `postgres` process, plus the postmaster's reaped children: the backends that ended), of
/// that by the backends of the hub's own database (`tool_db`, told by the process title Postgres gives
/// each backend: `postgres: … user database host …`; its pool connections live through a phase, so their
/// own times cover it), and by the processes `pids` (with `None`, this process). Differences of two
/// readings tell what a phase cost whatever else the machine was doing meanwhile; `None` where `/proc` is
/// not readable.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server: u64,
    tool: u64,
    client: u64,
    /// The whole machine's busy time (`/proc/stat`: every CPU's time but idle and I/O wait), kernel threads
    /// (file systems, the network) included: what a phase cost the machine, whichever process paid it.
    machine: u64,
}

/// What a phase cost, in CPU seconds (see [`Cpu`]).
#[derive(Debug, Clone, Copy)]
struct PhaseCpu {
    server: f64,
    /// Part of `server`: the tool database's backends.
    tool: f64,
    client: f64,
    machine: f64,
}

impl Cpu {
    fn read(pids: Option<&[u32]>, tool_db: &str) -> Option<Cpu> {
        let (mut server, mut tool) = (0, 0);
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(stat) = proc_stat(&entry.path()) else { continue };
            if stat.comm == "postgres" {
                server += stat.own;
                let title = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&title).split_whitespace().any(|word| word == tool_db) {
                    tool += stat.own;
                }
                // The postmaster: its parent is not a postgres process.
                let parent = proc_stat(&PathBuf::from(format!("/proc/{}", stat.ppid)));
                if parent.is_none_or(|p| p.comm != "postgres") {
                    server += stat.children;
                }
            }
        }
        let client = match pids {
            Some(pids) => {
                pids.iter().filter_map(|p| proc_stat(&PathBuf::from(format!("/proc/{p}")))).map(|s| s.own).sum()
            }
            None => proc_stat(Path::new("/proc/self"))?.own,
        };
        // `cpu  user nice system idle iowait irq softirq steal …`, in the same clock ticks.
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> =
            stat.lines().next()?.split_whitespace().skip(1).take(8).filter_map(|t| t.parse().ok()).collect();
        let machine = ticks.iter().sum::<u64>().saturating_sub(ticks.get(3)? + ticks.get(4)?);
        Some(Cpu { server, tool, client, machine })
    }

    /// CPU between `self` (earlier) and `later`.
    fn since(self, later: Cpu) -> PhaseCpu {
        // Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0);
        PhaseCpu {
            server: later.server.saturating_sub(self.server) as f64 / ticks,
            // A tool backend that ended during the phase takes its ticks out of this sum (they move to
            // the postmaster's children); the pool keeps its connections, so that is rare.
            tool: later.tool.saturating_sub(self.tool) as f64 / ticks,
            client: later.client.saturating_sub(self.client) as f64 / ticks,
            machine: later.machine.saturating_sub(self.machine) as f64 / ticks,
        }
    }
}

struct ProcStat {
    comm: String,
    ppid: u32,
    /// utime + stime
    own: u64,
    /// cutime + cstime (reaped children)
    children: u64,
}

fn proc_stat(dir: &Path) -> Option<ProcStat> {
    let text = std::fs::read_to_string(dir.join("stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // After comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        comm,
        ppid: u32::try_from(number(1)?).ok()?,
        own: number(11)? + number(12)?,
        children: number(13)? + number(14)?,
    })
}

/// `claimers` connections, each registered as a worker, claiming batches of 32 items until none is left and
/// ending each one at once as succeeded (ending the run after its last item): how many items were ended,
/// and the time spent in the claims, summed over the connections.
async fn drain_claims(pool: &PgPool, claimers: usize) -> anyhow::Result<(usize, Duration)> {
    let mut tasks = Vec::new();
    for _ in 0..claimers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let worker = WorkerId::new();
            let mut conn = pool.acquire().await?;
            storage::workers::register(&mut conn, worker, "bench", 1, "bench").await?;
            let (mut done, mut claiming) = (0usize, Duration::ZERO);
            loop {
                let asked = Instant::now();
                let claims = storage::queue::claim(&mut conn, worker, Duration::from_secs(600), 32).await?;
                claiming += asked.elapsed();
                if claims.is_empty() {
                    break;
                }
                for claim in claims {
                    let ending = Ending {
                        status: RunItemStatus::Succeeded,
                        duration: Duration::ZERO,
                        error_code: None,
                        error_message: None,
                    };
                    let ended = storage::queue::finish(&mut conn, claim.item, claim.token, &ending).await?;
                    if matches!(ended, storage::queue::Ended::Done { pending_left: false, .. }) {
                        storage::queue::end_run(&mut conn, claim.run).await?;
                    }
                    done += 1;
                }
            }
            Ok::<(usize, Duration), anyhow::Error>((done, claiming))
        }));
    }
    let (mut done, mut claiming) = (0, Duration::ZERO);
    for task in tasks {
        let (n, t) = task.await??;
        done += n;
        claiming += t;
    }
    Ok((done, claiming))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[rank.min(values.len() - 1)]
}

async fn queue(items: usize, workers: usize) -> anyhow::Result<()> {
    let pid = std::process::id();

    // 1. Throughput: `workers` claimers taking batches of 32 no-op items and completing each.
    let tool = ToolDb::create(&format!("bench_queue_{pid}"), None).await?;
    let throughput = async {
        let fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
        sqlx::query(
            "WITH t AS ( \
               INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, username) \
               SELECT gen_random_uuid(), $1, 'q-' || g, 'postgres', '127.0.0.1', 1, 'none', 'none' \
               FROM generate_series(1, $3) g RETURNING id) \
             INSERT INTO db_set_members (db_set_id, db_target_id, environment_id) SELECT $2, id, $1 FROM t",
        )
        .bind(fleet.environment.id.as_uuid())
        .bind(fleet.set.id.as_uuid())
        .bind(i32::try_from(items)?)
        .execute(&tool.pool)
        .await?;
        let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
        let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1000).await;
        let started = Instant::now();
        let (done, _) = drain_claims(&tool.pool, workers).await?;
        let elapsed = started.elapsed();
        if done != items {
            bail!("completed {done} of {items} items");
        }
        let _ = run;
        Ok::<f64, anyhow::Error>(items as f64 / elapsed.as_secs_f64())
    }
    .await;
    tool.drop().await;
    let items_per_s = throughput?;
    println!(
        "queue: throughput: {items} no-op items, {workers} claimers, claim batches of 32: items_per_s={items_per_s:.0}"
    );

    // 2. Pickup latency of an idle worker process, with NOTIFY and with polling only.
    let target = create_databases(Engine::Postgres, &format!("bench_pickup_{pid}"), 1).await?;
    let with_notify = pickup(&target[0], true, 200).await;
    let polling = pickup(&target[0], false, 100).await;
    drop_databases(Engine::Postgres, &target).await;
    let (p50, p99) = with_notify?;
    let (poll50, poll99) = polling?;
    println!(
        "queue: pickup without NOTIFY (polling every 100 ms): pickup_p50_ms={poll50:.2} pickup_p99_ms={poll99:.2}"
    );
    println!("queue: items_per_s={items_per_s:.0} pickup_p50_ms={p50:.2} pickup_p99_ms={p99:.2}");
    Ok(())
}

/// Enqueues `samples` one-item runs one after another and measures, for each, from the enqueue
/// transaction's commit to the item's claim by an idle worker process (both on this machine's clock).
async fn pickup(target_url: &str, notify: bool, samples: usize) -> anyhow::Result<(f64, f64)> {
    let pid = std::process::id();
    let tool = ToolDb::create(&format!("bench_pickup_tool_{pid}"), None).await?;
    let result = async {
        let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
        fleet.add_target("pickup", target_url, None).await;
        let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
        let mut extra = vec![("MIGRATE_HUB_POLL_MS", "100".to_owned())];
        if !notify {
            extra.push(("MIGRATE_HUB_NO_LISTEN", "true".to_owned()));
        }
        let mut procs = Workers::start(&tool.url, 1, &extra)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut latencies = Vec::with_capacity(samples);
        for _ in 0..samples {
            let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
            let committed: DateTime<Utc> = SystemTime::now().into();
            wait_for_end(&tool.pool, run.id, Duration::from_secs(60)).await?;
            let claimed: DateTime<Utc> = sqlx::query_scalar("SELECT started_at FROM run_items WHERE run_id = $1")
                .bind(run.id.as_uuid())
                .fetch_one(&tool.pool)
                .await?;
            let ms = (claimed - committed).num_microseconds().unwrap_or(0) as f64 / 1000.0;
            latencies.push(ms.max(0.0));
            // Let the worker go idle again, as between real enqueues.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        procs.stop();
        Ok::<_, anyhow::Error>((percentile(&mut latencies, 0.5), percentile(&mut latencies, 0.99)))
    }
    .await;
    tool.drop().await;
    result
}
