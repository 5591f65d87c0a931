//! `cargo xtask …`: the project's development tasks, in Rust so they run the same on every machine.
//!
//! - `dev`: run the hub locally (tool database found or started, schema applied, server and worker up).
//! - `test`: the whole test suite (what README and CI run), after `setup`.
//! - `setup`: install what a fresh machine lacks for the suite, and start the local database servers.
//! - `db up|reset`: create and migrate, or drop and recreate, the local development database.
//! - `sqlx-prepare [--check]`: refresh (or check) the committed `.sqlx/` query data.
//! - `tidy`: the project's own rules (module docs, no ignored tests, crate dependency rules).
//! - `corpus [DIR…]`: the engine against the shared workload sets of real projects.
//! - `bench fleet|queue|scale|lint`: performance figures (against a peer where there is one), printed.
//! - `api-fuzz`: schemathesis against the server's OpenAPI document.

mod api_fuzz;
mod corpus;
mod dev;
mod postgres;
mod setup;
mod sqlx_prepare;
mod test;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "migrate-hub development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the hub locally: tool database, schema, server and worker; Ctrl-C stops everything.
    Dev {
        /// Address the server listens on.
        #[arg(long, env = "MIGRATE_HUB_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Run the whole test suite against real Postgres and MariaDB servers.
    Test {
        /// Extra arguments for the test runner (cargo nextest run / cargo test), after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Install what a fresh machine lacks for the suite (Debian packages) and start the local Postgres and
    /// MariaDB when nothing answers; `test` does this first.
    Setup,
    /// Manage the local development database.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Regenerate `.sqlx/` (compile-time query data) from a scratch database; `--check` only compares.
    SqlxPrepare {
        #[arg(long)]
        check: bool,
    },
    /// Check the project's own rules.
    Tidy,
    /// Apply real projects' migration sets (default: all of ../shared/workloads) to fresh databases:
    /// apply, apply again, down, up, compare schema dumps; prints a table.
    Corpus {
        /// Workload set directories (river, hatchet, ory-kratos, apache-ranger).
        dirs: Vec<PathBuf>,
    },
    /// Performance figures, printed (never asserted in tests): `fleet [--targets N --workers W --engine E]`,
    /// `queue [--items N --workers W]` or `scale [--targets N --claimers C]` (see `bench/src/main.rs`).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fault injection against real worker processes: SIGKILL, SIGSTOP past the lease, tool-database crash
    /// restart; prints trial counts and violations, fails on any (`[--trials N --seed S]`, see
    /// `bench/src/main.rs`).
    Chaos {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Schemathesis (installed into ~/.cache/migrate-hub-venv on first use) against the server's OpenAPI
    /// document on a throwaway database (`TEST_PG_URL`'s server); fails on any 5xx or response that breaks
    /// the document.
    ApiFuzz {
        /// Extra arguments for `st run` (e.g. `--seed N`, `--max-examples N`), after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DbAction {
    /// Create the development database if needed and apply the tool schema.
    Up,
    /// Drop the development database, recreate it and apply the tool schema.
    Reset,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.task {
        Task::Dev { bind } => runtime.block_on(dev::run(&bind)),
        Task::Test { args } => runtime.block_on(test::run(&args)),
        Task::Setup => setup::run(),
        Task::Db { action: DbAction::Up } => runtime.block_on(dev::db_up(false)),
        Task::Db { action: DbAction::Reset } => runtime.block_on(dev::db_up(true)),
        Task::SqlxPrepare { check } => runtime.block_on(sqlx_prepare::run(check)),
        Task::Corpus { dirs } => runtime.block_on(corpus::run(&dirs)),
        Task::Bench { args } => bench(&[], &args),
        Task::Chaos { args } => bench(&["chaos"], &args),
        Task::ApiFuzz { args } => runtime.block_on(api_fuzz::run(&args)),
        Task::Tidy => {
            let problems = tidy::check(&workspace_root())?;
            if problems.is_empty() {
                eprintln!("tidy: ok");
                Ok(())
            } else {
                for problem in &problems {
                    eprintln!("tidy: {problem}");
                }
                bail!("tidy found {} problem(s)", problems.len())
            }
        }
    }
}

/// Runs the bench program (figures and chaos trials) with optimized binaries, as deployed: the worker it
/// starts, and itself.
fn bench(first: &[&str], args: &[String]) -> anyhow::Result<()> {
    // The worker for `fleet` and `chaos`, the server for `scale`'s pages: optimized, as deployed.
    let binaries = ["-p", "migrate-hub-worker", "-p", "migrate-hub-server"];
    run_checked(cargo().args(["build", "--quiet", "--release"]).args(binaries))?;
    run_checked(cargo().args(["run", "--quiet", "--release", "-p", "migrate-hub-bench", "--"]).args(first).args(args))
}

/// Default servers of this project's machines; the test helpers read the same variables.
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL: &str = "mysql://root@127.0.0.1:3306/mysql";

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory for this workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// The `cargo` that runs us, so nested builds use the same toolchain.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Runs a command to completion, failing loudly with what was run.
pub fn run_checked(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let status = command.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
