//! `migrate-hub-worker`: the execution daemon. It registers itself in the tool database, claims run items
//! and applies them to their targets (see `executor::queue`), serves Prometheus metrics, and on SIGTERM or
//! Ctrl-C stops claiming, hands back what has not started, finishes the rest and exits.

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
    #[command(flatten)]
    keys: cli::MasterKeyArgs,
    /// Seconds between heartbeats.
    #[arg(long, env = "MIGRATE_HUB_HEARTBEAT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat_secs: u64,
    /// Seconds a claimed item stays this worker's without renewal (renewed every third of it).
    #[arg(long, env = "MIGRATE_HUB_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_secs: u64,
    /// Items this worker applies at once.
    #[arg(long, env = "MIGRATE_HUB_WORKER_SLOTS", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    slots: u64,
    /// Most items taken per claim (default: as many as there are free slots).
    #[arg(long, env = "MIGRATE_HUB_CLAIM_BATCH", value_parser = clap::value_parser!(u32).range(1..=256))]
    batch: Option<u32>,
    /// Milliseconds between queue polls when idle (the fallback for lost notifications).
    #[arg(long, env = "MIGRATE_HUB_POLL_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    poll_ms: u64,
    /// Do not LISTEN for new work (polling only).
    #[arg(long, env = "MIGRATE_HUB_NO_LISTEN")]
    no_listen: bool,
    /// Milliseconds before the first retry after a connection or lock-timeout error (doubling per attempt).
    #[arg(long, env = "MIGRATE_HUB_RETRY_BASE_MS", default_value_t = 2000)]
    retry_base_ms: u64,
    /// Address to serve Prometheus metrics on (`/metrics`), e.g. 127.0.0.1:9464. Off when unset.
    #[arg(long, env = "MIGRATE_HUB_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::init_tracing(&cli.log)?;
    // Without keys, targets with sealed passwords fail with a clear message; env:/file: references work.
    let opener: std::sync::Arc<dyn executor::queue::SecretOpener> = match cli.keys.key_ring()? {
        Some(ring) => {
            tracing::info!(current_key = ring.current_id(), "master keys loaded");
            std::sync::Arc::new(ring)
        }
        None => std::sync::Arc::new(executor::queue::NoMasterKey),
    };
    let pool = storage::pool::connect_lazy(cli.db.connect_options()?, &cli.db.pool_settings("migrate-hub-worker"));
    cli::require_current_schema(&pool).await?;

    if let Some(addr) = cli.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!(%addr, "serving Prometheus metrics");
    }
    let identity = executor::worker::Identity::of_this_process(env!("CARGO_PKG_VERSION"));
    let label = format!("{}/{}", identity.hostname, identity.pid);
    let registration = executor::worker::Registration::register(pool.clone(), identity)
        .await
        .context("cannot register this worker in the tool database")?;
    let slots = usize::try_from(cli.slots).unwrap_or(4);
    let settings = executor::queue::Settings {
        lease: Duration::from_secs(cli.lease_secs),
        slots,
        batch: cli.batch.unwrap_or(u32::try_from(slots).unwrap_or(4)),
        poll_interval: Duration::from_millis(cli.poll_ms),
        listen: !cli.no_listen,
        retry_base: Duration::from_millis(cli.retry_base_ms),
        heartbeat: Duration::from_secs(cli.heartbeat_secs),
        ..executor::queue::Settings::default()
    };
    let queue = executor::queue::QueueWorker::new(pool, registration.worker().id, label, settings, opener);
    let worked = queue.run(shutdown_signal()).await;
    registration.stop().await?;
    worked?;
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
