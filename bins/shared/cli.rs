//! Configuration and start-up pieces both binaries share (included with `#[path]`, not a crate: it is
//! glue, and the binaries stay thin).

use std::str::FromStr;

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "MIGRATE_HUB_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info,migrate_hub_storage=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
}

/// Installs the global `tracing` subscriber. Logs go to stderr so stdout stays for command output.
pub fn init_tracing(args: &LogArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log_filter).context("invalid log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// URL of the tool database (postgres://user:password@host:port/database). Never logged.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub url: SecretString,
    /// Most connections this process opens to the tool database (default: 10 for the server; for a worker,
    /// its slots and two more).
    #[arg(long, env = "MIGRATE_HUB_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
}

impl DatabaseArgs {
    /// Parses the URL. The error names what is wrong without repeating the URL, which may hold a password.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        PgConnectOptions::from_str(self.url.expose_secret())
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid postgres:// URL"))
    }
}

/// The master keys that seal target passwords (see `auth::secrets`). Never printed: `--help` hides the
/// environment values and `Debug` shows nothing of them.
#[derive(Debug, Args)]
pub struct MasterKeyArgs {
    /// Master keys as `id:hex` (64 hex digits each), comma-separated; the last one seals, all open.
    #[arg(
        long = "master-keys",
        env = "MIGRATE_HUB_MASTER_KEYS",
        hide_env_values = true,
        conflicts_with = "master_key_file"
    )]
    pub master_keys: Option<SecretString>,
    /// A file with one `id:hex` master key per line (the last one seals), instead of the variable.
    #[arg(long = "master-key-file", env = "MIGRATE_HUB_MASTER_KEY_FILE")]
    pub master_key_file: Option<std::path::PathBuf>,
}

impl MasterKeyArgs {
    /// The key ring, `None` when no key is configured.
    pub fn key_ring(&self) -> anyhow::Result<Option<auth::secrets::KeyRing>> {
        let ring = match (&self.master_keys, &self.master_key_file) {
            (Some(keys), _) => auth::secrets::KeyRing::parse(keys).context("MIGRATE_HUB_MASTER_KEYS")?,
            (None, Some(path)) => auth::secrets::KeyRing::from_file(path)
                .with_context(|| format!("master key file {}", path.display()))?,
            (None, None) => return Ok(None),
        };
        Ok(Some(ring))
    }
}

/// The process's exit for `result`: an error is one line on standard error (its chain of causes, joined
/// with ": "), never a backtrace, and exit code 1.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
