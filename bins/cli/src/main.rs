//! `migrate-hub`: the command line tool. Local mode applies one directory of migrations to one database
//! (`apply`, `status`, `down`, `repair`, `adopt`, `baseline`) with the hub's engine: session lock, history table, checksums, drift and
//! dirty-target detection, statement-level progress. Client mode (`login`, `push`, `request`, `approve`,
//! `deny`, `execute`, `watch`, `runs`, `status --target`) works a hub through its REST API, e.g. from CI.

mod client;
mod lint;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::enums::TransactionMode;
use domain::placeholder::Syntax;
use domain::source::Layout;
use domain::values::{Identifier, VersionKey};
use executor::adopt::Tool;
use executor::apply::{ApplyError, LockRetries, Observer, Outcome};
use executor::history::HistoryTable;
use executor::local::{self, DownTo, LocalError, LocalOptions, Prepared, State};
use executor::recovery::{Recovered, Resolution};
use executor::target::{LockSession, SessionLimits, TargetConnection};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Parser)]
#[command(name = "migrate-hub", version, about = "Apply SQL migrations safely")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every pending migration of a directory, in order (`--dry-run`: only show what would run).
    Apply {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        dry_run: bool,
        /// Apply even when the SQL review finds an error (a statement Postgres would not parse).
        #[arg(long)]
        no_lint: bool,
    },
    /// Show each migration's state on the database: pending, applied, drifted or dirty. Changes nothing.
    /// With `--target T` (client mode): what a hub target's history tables hold, as the hub reads them now.
    Status(StatusArgs),
    /// Roll back applied migrations, newest first.
    Down {
        #[command(flatten)]
        target: Target,
        /// How many of the newest applied versions to roll back.
        #[arg(long, conflicts_with = "to", required_unless_present = "to")]
        steps: Option<usize>,
        /// Roll back every applied version newer than this one.
        #[arg(long)]
        to: Option<String>,
    },
    /// Review the directory's SQL before anything runs (the hub's review at version creation): on Postgres,
    /// squawk's rules, where a statement that does not parse is an error; on MySQL, the hub's own rules, where
    /// a statement the parser cannot read is a warning (`unparsed`). Risky statements are warnings, and
    /// `-- migrate-hub:ignore rule` on the line before a statement keeps its finding as ignored. Exits
    /// non-zero on an error.
    Lint {
        /// Directory of migration files.
        #[arg(long, short)]
        dir: PathBuf,
        /// The engine the files are written for: postgres or mysql (MySQL and MariaDB).
        #[arg(long, default_value = "postgres")]
        engine: String,
        /// Layout: auto, plain, sqlx, golang-migrate, goose, flyway, dbmate, diesel, refinery, sql-migrate.
        #[arg(long, default_value = "auto")]
        layout: String,
        /// Output: text, json, or github (workflow annotations).
        #[arg(long, value_enum, default_value = "text")]
        format: lint::Format,
    },
    /// Create the next migration file(s) in the directory's layout, with empty sections to fill in.
    New {
        /// Directory of migration files (made if missing).
        #[arg(long, default_value = "migrations")]
        dir: PathBuf,
        /// Layout: auto (the directory's; plain for an empty one), plain, sqlx, golang-migrate, goose, flyway,
        /// dbmate, diesel, refinery, sql-migrate.
        #[arg(long, default_value = "auto")]
        format: String,
        /// In an empty directory, number versions 0001, 0002… instead of by UTC timestamp.
        #[arg(long)]
        sequential: bool,
        /// What the migration does, e.g. `add_users_email`.
        name: String,
    },
    /// Record as applied, without running them, the versions another tool applied on the database, read
    /// from its history table (goose_db_version, schema_migrations, flyway_schema_history, _sqlx_migrations,
    /// __diesel_schema_migrations, refinery_schema_history, gorp_migrations). Refused, naming the versions, when its history
    /// is dirty, names versions the directory lacks, or stores checksums that differ from the files.
    Adopt {
        #[command(flatten)]
        target: Target,
        /// The tool: goose, golang-migrate, flyway, sqlx, diesel, dbmate, refinery or sql-migrate.
        #[arg(long)]
        from: String,
        /// Its history table, when not the tool's default (`schema.table` allowed).
        #[arg(long)]
        from_table: Option<String>,
        /// Only show what would be recorded.
        #[arg(long)]
        dry_run: bool,
    },
    /// Record every version up to and including `--to` as applied, without running it (for a database
    /// brought up to date by other means).
    Baseline {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        to: String,
        /// Only show what would be recorded.
        #[arg(long)]
        dry_run: bool,
    },
    /// Get a dirty version (a migration that stopped part-way outside a transaction) out of its state:
    /// `--mark-applied` (it was finished by hand), `--mark-rolled-back` (what ran was undone by hand; the
    /// version is pending again) or `--resume` (run its statements after the last one recorded).
    Repair {
        #[command(flatten)]
        target: Target,
        /// The dirty version.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        resolution: RepairResolution,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// A target of the hub (name, with --env, or id) instead of a local database.
    #[arg(long, conflicts_with_all = ["database_url", "dir"])]
    target: Option<String>,
    /// The target's environment (name or id).
    #[arg(long, requires = "target")]
    env: Option<String>,
    #[command(flatten)]
    connection: client::Connection,
    #[command(flatten)]
    local: Option<Target>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct RepairResolution {
    /// The migration was finished by hand: record it as applied.
    #[arg(long)]
    mark_applied: bool,
    /// What ran was undone by hand: remove the row, so the version is pending again.
    #[arg(long)]
    mark_rolled_back: bool,
    /// Run the statements after the last one recorded (same content only; not for a down that stopped).
    #[arg(long)]
    resume: bool,
}

impl RepairResolution {
    fn resolution(&self) -> Resolution {
        if self.mark_applied {
            Resolution::MarkApplied
        } else if self.mark_rolled_back {
            Resolution::MarkRolledBack
        } else {
            Resolution::Resume
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlaceholderSyntax {
    /// `${name}`
    Dollar,
    /// River's `/* TEMPLATE: name */`
    River,
    /// Go-template options as pop/fizz render them, `{{ index .Options "name" }}`
    Go,
}

#[derive(Debug, Args)]
struct Target {
    /// Database URL (postgres://… or mysql://…; `?sslmode=disable|prefer|require|verify-ca|verify-full`, and for
    /// MySQL `?sql_mode=MODE,…` to replace the server's default session sql_mode). Never printed.
    #[arg(long, env = "MIGRATE_HUB_DATABASE_URL", hide_env_values = true)]
    database_url: SecretString,
    /// Directory of migration files.
    #[arg(long, short)]
    dir: PathBuf,
    /// Layout of the directory: auto, plain, sqlx, golang-migrate, goose, flyway, dbmate, diesel, refinery,
    /// sql-migrate (also up-down, pop, morph).
    #[arg(long, default_value = "auto")]
    layout: String,
    /// Go on when the directory holds files or folders its layout does not read (they are listed either
    /// way; without this flag the command stops before touching the database).
    #[arg(long)]
    allow_unknown_files: bool,
    /// A placeholder value, `name=value` (repeatable).
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Placeholder syntaxes to substitute (repeatable; default: `dollar` when any --var is given).
    #[arg(long = "placeholders", value_enum)]
    placeholders: Vec<PlaceholderSyntax>,
    /// History table on the database.
    #[arg(long, default_value = "migrate_hub_history")]
    history_table: String,
    /// Postgres schema of the history table (default: the first schema of the search path).
    #[arg(long)]
    history_schema: Option<String>,
    /// Apply a version even when an earlier one is missing or a later one is applied.
    #[arg(long)]
    allow_out_of_order: bool,
    /// Run every migration without a wrapping transaction, each statement committing on its own as in
    /// `psql` (for sets written that way, e.g. with `COMMIT;` lines). Progress is journaled per statement.
    #[arg(long)]
    no_transaction: bool,
    /// Seconds to wait for another run's lock on the database.
    #[arg(long, default_value_t = 60)]
    lock_wait_secs: u64,
    /// Milliseconds a statement waits for a table lock.
    #[arg(long, default_value_t = 5000)]
    lock_timeout_ms: u64,
    /// Times a statement that gave up waiting for a lock runs again (a Postgres transaction: the whole
    /// migration), after waits doubling from 200 ms up to 10 s, with jitter; 0: a lock timeout fails.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=10))]
    lock_retries: u32,
    /// Milliseconds a statement may run (0: no limit).
    #[arg(long, default_value_t = 0)]
    statement_timeout_ms: u64,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| "expected name=value".to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let result = match cli.command {
        Command::Apply { target, dry_run, no_lint } => apply(&target, dry_run, no_lint).await,
        Command::Status(StatusArgs { target: Some(target), env, connection, local: _ }) => {
            return client::target_status(&connection, &target, env.as_deref()).await.into();
        }
        Command::Status(StatusArgs { local: Some(target), .. }) => status(&target).await,
        Command::Status(StatusArgs { .. }) => {
            eprintln!("error: status needs --database-url and --dir (a local database), or --target (a hub's)");
            return client::Exit::Refused.into();
        }
        Command::Client(command) => return client::run(command).await.into(),
        Command::Down { target, steps, to } => down(&target, steps, to).await,
        Command::New { dir, format, sequential, name } => new(&dir, &format, sequential, &name),
        Command::Lint { dir, engine, layout, format } => match engine.parse() {
            Ok(engine) => lint::run(&dir, engine, &layout, format),
            Err(e) => Err(Box::<dyn std::error::Error>::from(e)),
        },
        Command::Adopt { target, from, from_table, dry_run } => match from.parse::<Tool>() {
            Ok(tool) => adopt(&target, Record::From(tool, from_table.as_deref()), dry_run).await,
            Err(e) => Err(e.into()),
        },
        Command::Baseline { target, to, dry_run } => match VersionKey::parse(to) {
            Ok(to) => adopt(&target, Record::UpTo(to), dry_run).await,
            Err(e) => Err(e.into()),
        },
        Command::Repair { target, version, resolution } => repair(&target, &version, resolution.resolution()).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How to get `version` out of its dirty state.
fn repair_hint(version: &str) -> String {
    format!(
        "hint: finish or undo what ran by hand and record it with `migrate-hub repair --version {version} \
         --mark-applied` or `--mark-rolled-back`, or run the rest with `--resume` (same content only)"
    )
}

/// Counts for the final line: `<label>=<n> skipped=<n> failed=<n>`, the label saying what was done
/// (`applied`, `reverted`, `would_apply`).
#[derive(Debug)]
struct Tally {
    label: &'static str,
    applied: usize,
    skipped: usize,
    failed: usize,
}

impl Tally {
    fn new(label: &'static str) -> Self {
        Tally { label, applied: 0, skipped: 0, failed: 0 }
    }

    /// Counts and prints one migration's result; `false` when the run must stop.
    fn record(
        &mut self,
        out: &mut impl Write,
        verb: &str,
        p: &Prepared,
        started: Instant,
        result: Result<Outcome, LocalError>,
    ) -> std::io::Result<bool> {
        match result {
            Ok(Outcome::Applied { statements }) => {
                self.applied += 1;
                let ms = started.elapsed().as_millis();
                writeln!(out, "{verb} {} {} ({statements} statements, {ms} ms)", p.version, p.name)?;
            }
            Ok(Outcome::Skipped { .. }) => self.skipped += 1,
            Err(e) => {
                self.failed += 1;
                writeln!(out, "failed  {} {}", p.version, p.name)?;
                eprintln!("error: {e}");
                if let LocalError::Apply { source, .. } = &e
                    && let ApplyError::NeedsRecovery { version, .. } = source.as_ref()
                {
                    eprintln!("{}", repair_hint(version));
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn finish(&self, out: &mut impl Write) -> std::io::Result<ExitCode> {
        writeln!(out, "{}={} skipped={} failed={}", self.label, self.applied, self.skipped, self.failed)?;
        Ok(if self.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

struct Loaded {
    conn: TargetConnection,
    prepared: Vec<Prepared>,
    options: LocalOptions,
}

async fn load(target: &Target) -> Result<Loaded, Box<dyn std::error::Error>> {
    let settings = local::settings_from_url(target.database_url.expose_secret())?;
    let layout = match target.layout.as_str() {
        "auto" => None,
        other => Some(other.parse::<Layout>()?),
    };
    let source = local::load_dir(&target.dir, layout, settings.engine)?;
    for skipped in &source.skipped {
        eprintln!("skipping {}: {}", skipped.path, skipped.reason);
    }
    if !source.other_dialects.is_empty() {
        eprintln!("left out {} file(s) written for other dialects than this database's", source.other_dialects.len());
    }
    if source.migrations.is_empty() {
        return Err(format!(
            "no migration found in {} (read as the {} layout; {} file(s) skipped, listed above)",
            target.dir.display(),
            source.layout.as_str(),
            source.skipped.len()
        )
        .into());
    }
    if !source.skipped.is_empty() && !target.allow_unknown_files {
        return Err(format!(
            "{} file(s) in {} are not migrations of the {} layout (listed above); nothing was run. Move them, \
             choose the layout with --format, or pass --allow-unknown-files to go on without them",
            source.skipped.len(),
            target.dir.display(),
            source.layout.as_str()
        )
        .into());
    }
    let vars: BTreeMap<String, String> = target.vars.iter().cloned().collect();
    let mut syntaxes: Vec<Syntax> = target
        .placeholders
        .iter()
        .map(|p| match p {
            PlaceholderSyntax::Dollar => Syntax::DollarBraces,
            PlaceholderSyntax::River => Syntax::RiverTemplate,
            PlaceholderSyntax::Go => Syntax::GoTemplate,
        })
        .collect();
    if syntaxes.is_empty() && !vars.is_empty() {
        syntaxes.push(Syntax::DollarBraces);
    }
    let mut prepared = local::prepare(&source, settings.engine, &vars, &syntaxes)?;
    if target.no_transaction {
        for migration in &mut prepared {
            migration.transaction_mode = TransactionMode::None;
        }
    }
    let options = LocalOptions {
        history: HistoryTable {
            schema: target.history_schema.as_deref().map(Identifier::parse).transpose()?,
            table: Identifier::parse(target.history_table.as_str())?,
            // The plain CLI's rows carry the empty project key (a hub project adopts those of its versions).
            project: String::new(),
        },
        lock_wait: Duration::from_secs(target.lock_wait_secs),
        limits: SessionLimits {
            lock_timeout: Duration::from_millis(target.lock_timeout_ms.max(1)),
            statement_timeout: (target.statement_timeout_ms > 0)
                .then(|| Duration::from_millis(target.statement_timeout_ms)),
        },
        allow_out_of_order: target.allow_out_of_order,
        worker: format!("migrate-hub-cli/{}", env!("CARGO_PKG_VERSION")),
        lock_retries: LockRetries { attempts: target.lock_retries, max_delay: Duration::from_secs(10) },
    };
    // Down statements too: `migrate-hub down` runs them on this connection.
    let all = prepared.iter().flat_map(|p| p.statements.iter().chain(p.down_statements.iter().flatten()));
    let (lock_session, _) = LockSession::for_statements(all.map(String::as_str));
    let conn = TargetConnection::connect(&settings, lock_session).await?;
    Ok(Loaded { conn, prepared, options })
}

/// Prints each statement's progress on stderr.
struct Progress<'a> {
    version: &'a str,
}

/// Crash testing: `MIGRATE_HUB_FAILPOINT_ABORT_BEFORE_STATEMENT=i` aborts the process (no clean-up, the
/// connection just drops) right before statement `i` of a migration, after the previous ones and their
/// progress were recorded. The crash tests use it to prove what a killed process leaves behind.
fn abort_before(index: usize) {
    let wanted = std::env::var("MIGRATE_HUB_FAILPOINT_ABORT_BEFORE_STATEMENT").ok().and_then(|v| v.parse().ok());
    if wanted == Some(index) {
        eprintln!("failpoint: aborting before statement {index}");
        std::process::abort();
    }
}

impl Observer for Progress<'_> {
    async fn before_statement(&mut self, index: usize) -> Result<(), String> {
        abort_before(index);
        Ok(())
    }

    async fn after_statement(&mut self, index: usize, statement: &str, elapsed: Duration, rows: u64) {
        let first = statement.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let first: String = first.trim().chars().take(72).collect();
        eprintln!("  {} #{index} {:>6} ms {rows:>6} rows  {first}", self.version, elapsed.as_millis());
    }
}

async fn apply(target: &Target, dry_run: bool, no_lint: bool) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Loaded { mut conn, prepared, options } = load(target).await?;
    // The review first, so that a typo is found before anything runs rather than half-way through a target.
    if !no_lint {
        let errors = lint::errors(&target.dir, &prepared, conn.engine());
        if !errors.is_empty() {
            conn.close().await;
            for line in &errors {
                eprintln!("{line}");
            }
            eprintln!(
                "error: the SQL review found {} error{}: nothing was applied; fix them (`migrate-hub lint` shows \
                 the rest) or apply anyway with --no-lint",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::new(if dry_run { "would_apply" } else { "applied" });
    if dry_run {
        let (states, _) = local::inspect(&mut conn, &prepared, &options.history).await?;
        conn.close().await;
        for (state, p) in states {
            match state {
                State::Pending => {
                    tally.applied += 1;
                    writeln!(
                        out,
                        "would apply {} {} ({} statements, {})",
                        p.version,
                        p.name,
                        p.statements.len(),
                        p.transaction_mode
                    )?;
                }
                State::Applied => tally.skipped += 1,
                State::Drift | State::Dirty { .. } => {
                    tally.failed += 1;
                    writeln!(out, "would fail {} {}: {}", p.version, p.name, describe(&state))?;
                }
            }
        }
        return Ok(tally.finish(&mut out)?);
    }
    for index in 0..prepared.len() {
        let p = &prepared[index];
        let version = p.version.to_string();
        let started = Instant::now();
        let result = local::apply_one(&mut conn, &prepared, index, &options, &mut Progress { version: &version }).await;
        if !tally.record(&mut out, "applied", p, started, result)? {
            break;
        }
    }
    conn.close().await;
    Ok(tally.finish(&mut out)?)
}

fn describe(state: &State) -> String {
    match state {
        State::Pending => "pending".into(),
        State::Applied => "applied".into(),
        State::Drift => "drifted: applied with different content".into(),
        State::Dirty { status, done, total } => {
            format!("dirty: {status} at statement {done} of {total}; needs recovery (`migrate-hub repair`)")
        }
    }
}

async fn status(target: &Target) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Loaded { mut conn, prepared, options } = load(target).await?;
    let (states, unknown) = local::inspect(&mut conn, &prepared, &options.history).await?;
    conn.close().await;
    let mut out = std::io::stdout().lock();
    let mut healthy = true;
    for (state, p) in &states {
        healthy &= matches!(state, State::Pending | State::Applied);
        let word = match state {
            State::Pending => "pending",
            State::Applied => "applied",
            State::Drift => "drifted",
            State::Dirty { .. } => "dirty",
        };
        match state {
            State::Pending | State::Applied => writeln!(out, "{word:<8} {} {}", p.version, p.name)?,
            _ => writeln!(out, "{word:<8} {} {}: {}", p.version, p.name, describe(state))?,
        }
    }
    for row in &unknown {
        writeln!(out, "unknown  {} {}: in the history, not in the directory", row.version, row.name)?;
    }
    let count = |wanted: &State| states.iter().filter(|(s, _)| s == wanted).count();
    writeln!(out, "pending={} applied={}", count(&State::Pending), count(&State::Applied))?;
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn down(
    target: &Target,
    steps: Option<usize>,
    to: Option<String>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Loaded { mut conn, prepared, options } = load(target).await?;
    let to = match (steps, to) {
        (Some(n), _) => DownTo::Steps(n),
        (None, Some(v)) => DownTo::Version(VersionKey::parse(v)?),
        (None, None) => DownTo::Steps(1),
    };
    let plan = local::down_plan(&mut conn, &prepared, &options.history, &to).await?;
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::new("reverted");
    if plan.is_empty() {
        // Never a silent no-op: say why nothing is rolled back.
        let why = match &to {
            DownTo::Version(v) => format!("no version of the directory newer than {v} is applied on this database"),
            DownTo::Steps(_) => "no version of the directory is applied on this database".to_owned(),
        };
        eprintln!("nothing to roll back: {why}");
    }
    for p in plan {
        let version = p.version.to_string();
        let started = Instant::now();
        let result = local::down_one(&mut conn, p, &options, &mut Progress { version: &version }).await;
        if !tally.record(&mut out, "reverted", p, started, result)? {
            break;
        }
    }
    conn.close().await;
    Ok(tally.finish(&mut out)?)
}

async fn repair(
    target: &Target,
    version: &str,
    resolution: Resolution,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let version = VersionKey::parse(version)?;
    let Loaded { mut conn, prepared, options } = load(target).await?;
    let label = version.to_string();
    let result =
        local::repair(&mut conn, &prepared, &version, resolution, &options, &mut Progress { version: &label }).await;
    conn.close().await;
    let mut out = std::io::stdout().lock();
    match result? {
        Recovered::MarkedApplied => writeln!(out, "repaired {version}: marked applied")?,
        Recovered::MarkedRolledBack => writeln!(out, "repaired {version}: marked rolled back (pending again)")?,
        Recovered::Resumed { statements } => {
            writeln!(out, "repaired {version}: resumed, {statements} statement(s) ran, applied")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `adopt` and `baseline` record: what another tool applied (its history table), or every version
/// up to one.
enum Record<'a> {
    From(Tool, Option<&'a str>),
    UpTo(VersionKey),
}

async fn adopt(target: &Target, what: Record<'_>, dry_run: bool) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Loaded { mut conn, prepared, options } = load(target).await?;
    let result = match &what {
        Record::From(tool, table) => local::adopt(&mut conn, &prepared, *tool, *table, &options, dry_run).await,
        Record::UpTo(to) => local::baseline(&mut conn, &prepared, to, &options, dry_run).await,
    };
    conn.close().await;
    let adopted = result?;
    for note in &adopted.notes {
        eprintln!("note: {note}");
    }
    let mut out = std::io::stdout().lock();
    let verb = if dry_run { "would record" } else { "recorded" };
    for version in &adopted.versions {
        let name = prepared.iter().find(|p| p.version == *version).map_or("", |p| p.name.as_str());
        writeln!(out, "{verb} {version} {name} as applied")?;
    }
    let key = if dry_run { "would_record" } else { "recorded" };
    writeln!(out, "{key}={} already={}", adopted.versions.len() - adopted.already, adopted.already)?;
    Ok(ExitCode::SUCCESS)
}

fn new(
    dir: &std::path::Path,
    format: &str,
    sequential: bool,
    name: &str,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let layout = match format {
        "auto" => None,
        other => Some(other.parse::<Layout>()?),
    };
    let made = local::new_migration(dir, layout, name, chrono::Utc::now(), sequential)?;
    let mut out = std::io::stdout().lock();
    for path in made {
        writeln!(out, "created {}", dir.join(path).display())?;
    }
    Ok(ExitCode::SUCCESS)
}
