//! `migrate-hub`: the command line tool. Local mode applies one directory of migrations to one database
//! (`apply`, `status`, `plan`) with the hub's engine: session lock, history table, checksums, drift and
//! dirty-target detection, statement-level progress.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::placeholder::Syntax;
use domain::source::Layout;
use domain::values::Identifier;
use executor::apply::{Observer, Outcome};
use executor::history::HistoryTable;
use executor::local::{self, LocalOptions, State};
use executor::target::{SessionLimits, TargetConnection};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Parser)]
#[command(name = "migrate-hub", version, about = "Apply SQL migrations safely")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every pending migration of a directory, in order.
    Apply(Target),
    /// Show each migration's state on the database (changes nothing).
    Status(Target),
    /// Show what `apply` would do (changes nothing).
    Plan(Target),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlaceholderSyntax {
    /// `${name}`
    Dollar,
    /// River's `/* TEMPLATE: name */`
    River,
}

#[derive(Debug, Args)]
struct Target {
    /// Directory of migration files.
    #[arg(long, short)]
    dir: PathBuf,
    /// Database URL (postgres://… or mysql://…). Never printed.
    #[arg(long, env = "MIGRATE_HUB_DATABASE_URL", hide_env_values = true)]
    url: SecretString,
    /// Layout of the directory (detected when absent): plain, up-down, goose, flyway, dbmate.
    #[arg(long)]
    layout: Option<String>,
    /// History table on the database.
    #[arg(long, default_value = "migrate_hub_history")]
    history_table: String,
    /// Postgres schema of the history table (default: the search path's first).
    #[arg(long)]
    history_schema: Option<String>,
    /// A placeholder value, `name=value` (repeatable).
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Placeholder syntaxes to substitute (repeatable).
    #[arg(long = "placeholders", value_enum)]
    placeholders: Vec<PlaceholderSyntax>,
    /// Apply a version even when an earlier one is missing or a later one is applied.
    #[arg(long)]
    allow_out_of_order: bool,
    /// Seconds to wait for another run's lock on the database.
    #[arg(long, default_value_t = 60)]
    lock_wait_secs: u64,
    /// Milliseconds a statement waits for a table lock.
    #[arg(long, default_value_t = 5000)]
    lock_timeout_ms: u64,
    /// Milliseconds a statement may run (0: no limit).
    #[arg(long, default_value_t = 0)]
    statement_timeout_ms: u64,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| "expected name=value".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    match cli.command {
        Command::Apply(target) => apply(&target).await,
        Command::Status(target) => inspect(&target, false).await,
        Command::Plan(target) => inspect(&target, true).await,
    }
}

struct Loaded {
    conn: TargetConnection,
    prepared: Vec<local::Prepared>,
    table: HistoryTable,
}

async fn load(target: &Target) -> anyhow::Result<Loaded> {
    let settings = local::settings_from_url(target.url.expose_secret())?;
    let layout = target.layout.as_deref().map(str::parse::<Layout>).transpose()?;
    let source = local::load_dir(&target.dir, layout, settings.engine)?;
    for skipped in &source.skipped {
        eprintln!("skipping {}: {}", skipped.path, skipped.reason);
    }
    let vars: BTreeMap<String, String> = target.vars.iter().cloned().collect();
    let syntaxes: Vec<Syntax> = target
        .placeholders
        .iter()
        .map(|p| match p {
            PlaceholderSyntax::Dollar => Syntax::DollarBraces,
            PlaceholderSyntax::River => Syntax::RiverTemplate,
        })
        .collect();
    let prepared = local::prepare(&source, settings.engine, &vars, &syntaxes)?;
    let table = HistoryTable {
        schema: target.history_schema.as_deref().map(Identifier::parse).transpose()?,
        table: Identifier::parse(target.history_table.as_str())?,
    };
    let conn = TargetConnection::connect(&settings).await.context("cannot connect to the database")?;
    Ok(Loaded { conn, prepared, table })
}

/// Prints each statement's progress on stderr.
struct Progress<'a> {
    version: &'a str,
}

impl Observer for Progress<'_> {
    async fn before_statement(&mut self, _index: usize) -> Result<(), String> {
        Ok(())
    }

    async fn after_statement(&mut self, index: usize, statement: &str, elapsed: Duration, rows: u64) {
        let first = statement.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let first: String = first.trim().chars().take(72).collect();
        eprintln!("  {} #{index} {:>6} ms {rows:>6} rows  {first}", self.version, elapsed.as_millis());
    }
}

async fn apply(target: &Target) -> anyhow::Result<()> {
    let Loaded { mut conn, prepared, table } = load(target).await?;
    let options = LocalOptions {
        history: table,
        lock_wait: Duration::from_secs(target.lock_wait_secs),
        limits: SessionLimits {
            lock_timeout: Duration::from_millis(target.lock_timeout_ms.max(1)),
            statement_timeout: (target.statement_timeout_ms > 0)
                .then(|| Duration::from_millis(target.statement_timeout_ms)),
        },
        allow_out_of_order: target.allow_out_of_order,
        worker: format!("migrate-hub-cli/{}", env!("CARGO_PKG_VERSION")),
    };
    let mut applied = 0;
    let mut skipped = 0;
    let mut out = std::io::stdout().lock();
    // One version at a time, so progress shows as it happens.
    for i in 0..prepared.len() {
        let version = prepared[i].version.to_string();
        let mut progress = Progress { version: &version };
        let outcome = match local::apply_one(&mut conn, &prepared, i, &options, &mut progress).await {
            Ok(outcome) => outcome,
            Err(e) => {
                writeln!(out, "{applied} applied, {skipped} already applied; failed at {version}")?;
                conn.close().await;
                return Err(e.into());
            }
        };
        match outcome {
            Outcome::Applied { statements } => {
                applied += 1;
                writeln!(out, "applied {version} {} ({statements} statements)", prepared[i].name)?;
            }
            _ => skipped += 1,
        }
    }
    conn.close().await;
    writeln!(out, "{applied} applied, {skipped} already applied")?;
    Ok(())
}

async fn inspect(target: &Target, plan: bool) -> anyhow::Result<()> {
    let Loaded { mut conn, prepared, table } = load(target).await?;
    let (states, unknown) = local::inspect(&mut conn, &prepared, &table).await?;
    conn.close().await;
    let mut out = std::io::stdout().lock();
    let mut blocked = false;
    for (state, p) in &states {
        let line = match state {
            State::Applied if plan => continue,
            State::Applied => format!("applied  {} {}", p.version, p.name),
            State::Pending => {
                format!("pending  {} {} ({} statements, {})", p.version, p.name, p.statements.len(), p.transaction_mode)
            }
            State::Drift => {
                blocked = true;
                format!("DRIFT    {} {}: applied with different content", p.version, p.name)
            }
            State::Dirty { status, done, total } => {
                blocked = true;
                format!("DIRTY    {} {}: {status} at statement {done} of {total}; needs recovery", p.version, p.name)
            }
        };
        writeln!(out, "{line}")?;
    }
    for row in &unknown {
        writeln!(out, "unknown  {} {}: in the history, not in the directory", row.version, row.name)?;
    }
    let pending = states.iter().filter(|(s, _)| *s == State::Pending).count();
    writeln!(out, "{pending} pending, {} applied", states.iter().filter(|(s, _)| *s == State::Applied).count())?;
    anyhow::ensure!(!blocked, "the database has drifted or dirty versions; apply would refuse");
    Ok(())
}
