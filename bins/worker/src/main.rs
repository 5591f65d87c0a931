//! `migrate-hub-worker`: the execution daemon. It registers itself in the tool database, heartbeats, and
//! on SIGTERM or Ctrl-C stops cleanly.

#[path = "../../shared/cli.rs"]
mod cli;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "migrate-hub-worker", version, about = "migrate-hub: execution worker daemon")]
struct Cli {
    #[command(flatten)]
    log: cli::LogArgs,
    #[command(flatten)]
    db: cli::DatabaseArgs,
    /// Seconds between heartbeats.
    #[arg(long, env = "MIGRATE_HUB_HEARTBEAT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::init_tracing(&cli.log)?;
    let pool = storage::pool::connect_lazy(cli.db.connect_options()?, &cli.db.pool_settings("migrate-hub-worker"));
    cli::require_current_schema(&pool).await?;

    let identity = executor::worker::Identity::of_this_process(env!("CARGO_PKG_VERSION"));
    let worker = executor::worker::Registration::register(pool, identity)
        .await
        .context("cannot register this worker in the tool database")?;
    worker.run_until(Duration::from_secs(cli.heartbeat_secs), shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM (how orchestrators stop a process) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received: stopping"),
        () = terminate => tracing::info!("SIGTERM received: stopping"),
    }
}
