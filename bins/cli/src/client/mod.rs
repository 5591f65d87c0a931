//! Client mode: the hub's REST API from a terminal or a CI pipeline (`login`, `push`, `request`, `approve`,
//! `deny`, `execute`, `watch`, `runs`, `status --target`).
//!
//! The server comes from `--server` / `MIGRATE_HUB_SERVER`, else from the stored login; the token from
//! `MIGRATE_HUB_TOKEN`, else from the stored login (`login` keeps both in the user's config directory, in a
//! file only they can read). Exit codes a pipeline can use: 0 succeeded, 1 failed, 2 usage or refused
//! (with the API's error code and message), 3 waiting for approval.

/// Writes a line to standard output. A closed pipe (`migrate-hub runs | head`) ends the output quietly,
/// where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod api;
mod commands;
mod credentials;
mod watch;

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

/// How a client command ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Succeeded = 0,
    Failed = 1,
    /// Bad usage, or the hub refused the request.
    Refused = 2,
    /// The run waits for approval (or for someone to execute it).
    Waiting = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Output: lines for people, or the API's JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Where the hub is and how to print.
#[derive(Debug, Args)]
pub struct Connection {
    /// The hub's address, e.g. `https://hub.example.com` (default: the one `login` stored).
    #[arg(long, env = "MIGRATE_HUB_SERVER")]
    server: Option<String>,
    /// Output: text or json.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Store an API token for the hub (read from standard input; create one on the hub's Tokens page), after
    /// checking it with the hub. The file is readable by you only.
    Login {
        #[command(flatten)]
        connection: Connection,
    },
    /// Forget the stored token.
    Logout,
    /// Import a directory of migration files into a project: each migration is created, gets a new version
    /// (its files changed) or is unchanged. Files the layout does not read are listed, and refuse the import
    /// unless `--allow-unknown-files`.
    Push {
        #[command(flatten)]
        connection: Connection,
        /// The project (name or id).
        #[arg(long)]
        project: String,
        /// Directory of migration files (read with its subdirectories).
        #[arg(long, short)]
        dir: std::path::PathBuf,
        /// Layout: plain, up-down, goose, flyway, dbmate, diesel, refinery or sql-migrate (default: detected).
        #[arg(long)]
        layout: Option<String>,
        /// The dialect goose and dbmate annotations are read in: postgres or mysql.
        #[arg(long)]
        engine: Option<String>,
        /// Import the migrations even when some files are not migrations of the layout.
        #[arg(long)]
        allow_unknown_files: bool,
    },
    /// Request a release of a project's migrations to an environment's db set; prints the run and what it
    /// applies. Exits 3 when the run waits for approval.
    Request {
        #[command(flatten)]
        connection: Connection,
        /// The project (name or id).
        #[arg(long)]
        project: String,
        /// The environment (name or id).
        #[arg(long)]
        env: String,
        /// The db set (name or id).
        #[arg(long)]
        set: String,
        /// The last version to apply (default: the project's newest).
        #[arg(long, conflicts_with = "down_to")]
        up_to: Option<String>,
        /// A down release: revert every migration above this version, newest first.
        #[arg(long)]
        down_to: Option<String>,
        /// `continue` (every target is tried) or `stop_on_first_failure` (the default).
        #[arg(long)]
        failure_policy: Option<String>,
        /// Targets at once.
        #[arg(long)]
        concurrency: Option<u32>,
        #[arg(long, default_value = "")]
        comment: String,
        /// The same key again returns the run made the first time instead of a second run (e.g. a CI job
        /// that is retried).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Roll out in waves, each reaching this far in all: `1,10%,100%` is one canary, a tenth of the set,
        /// then the rest; `10%:2` lets that wave fail 2 targets (default 0) before the run halts.
        #[arg(long)]
        waves: Option<String>,
        /// With `--waves`: `auto` (the next wave starts when the previous succeeded) or `manual` (it waits
        /// for `migrate-hub continue`).
        #[arg(long, requires = "waves")]
        advance: Option<String>,
        /// With `--waves`: targets with this label (`key=value`, e.g. `canary=true`) go first.
        #[arg(long, requires = "waves")]
        first_label: Option<String>,
        /// Nothing of the run starts before this instant (RFC 3339, e.g. `2026-12-12T01:00:00Z`), once
        /// executed; the environment's maintenance windows hold it too.
        #[arg(long)]
        not_before: Option<String>,
    },
    /// Approve a run, exactly the content it pins now.
    Approve {
        #[command(flatten)]
        connection: Connection,
        run: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny a run.
    Deny {
        #[command(flatten)]
        connection: Connection,
        run: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Queue an approved run for the workers.
    Execute {
        #[command(flatten)]
        connection: Connection,
        run: String,
        /// Follow it until it ends, as `watch` does.
        #[arg(long)]
        watch: bool,
    },
    /// Re-pin a run that has not started to the newest versions of its migrations (after an edit made it
    /// stale); it needs approval again.
    Refresh {
        #[command(flatten)]
        connection: Connection,
        run: String,
    },
    /// A new run over the same content for the targets a failed or cancelled run did not finish; its
    /// approvals carry over. Prints the new run.
    Retry {
        #[command(flatten)]
        connection: Connection,
        run: String,
        /// Follow the new run until it ends, as `watch` does.
        #[arg(long)]
        watch: bool,
    },
    /// Continue a run's waves: start the next wave of a run that waits for it (`--advance manual`), or
    /// resume a run a wave halted, going on despite that wave's failures.
    Continue {
        #[command(flatten)]
        connection: Connection,
        run: String,
        /// Follow it until it ends, as `watch` does.
        #[arg(long)]
        watch: bool,
    },
    /// Cancel a run: nothing more starts; what is running finishes its statement.
    Cancel {
        #[command(flatten)]
        connection: Connection,
        run: String,
    },
    /// Follow a run until it ends, with its progress per target (and its current wave): exits 0 when it
    /// succeeded, 1 when it failed, was cancelled or denied or a wave halted it, 3 when its next wave waits
    /// for `continue`, or it still waits for approval or execution after `--timeout`.
    Watch {
        #[command(flatten)]
        connection: Connection,
        run: String,
        /// Seconds to follow the run before giving up.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// The newest runs.
    Runs {
        #[command(flatten)]
        connection: Connection,
        /// Only runs with this status (e.g. `awaiting_approval`).
        #[arg(long)]
        status: Option<String>,
        /// Only runs in this environment (name or id).
        #[arg(long)]
        env: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Runs a client command; what it printed is on stdout, why it failed on stderr.
pub async fn run(command: ClientCommand) -> Exit {
    match commands::run(command).await {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit()
        }
    }
}

/// `status --target T [--env E]`: what the target's history tables hold, read live by the hub.
pub async fn target_status(connection: &Connection, target: &str, env: Option<&str>) -> Exit {
    match commands::target_status(connection, target, env).await {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit()
        }
    }
}
