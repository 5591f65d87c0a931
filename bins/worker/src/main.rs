//! `migrate-hub-worker`: the execution daemon. It registers itself in the tool database, claims run items
//! and applies them to their targets (see `executor::queue`), serves Prometheus metrics, and on SIGTERM or
//! Ctrl-C stops claiming, hands back what has not started, finishes the rest and exits.
//!
//! What it may read as a target's password is its own configuration: the master keys (sealed passwords)
//! and `MIGRATE_HUB_SECRET_REFS` (which `env:`/`file:` references; none by default). It needs the server
//! secret only to derive the audit chain key, since it records each run's start and end in the audit log.

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
    /// The hub's public address (as the server's), for the links in the webhook events this worker sends.
    #[arg(long, env = "MIGRATE_HUB_PUBLIC_URL")]
    public_url: Option<String>,
    /// Secret references this worker may resolve as target passwords: comma-separated patterns where `*`
    /// matches anything, e.g. `env:TARGET_*,file:/run/secrets/*`. None by default. The hub's own settings
    /// (`MIGRATE_HUB_*`, `DATABASE_URL`, `PGPASSWORD`) and anything under /proc, /sys or /dev never are.
    #[arg(long = "secret-refs", env = "MIGRATE_HUB_SECRET_REFS", default_value = "")]
    secret_refs: String,
    #[command(flatten)]
    audit_key: AuditKeyArgs,
}

/// The server secret, from which this worker derives only the audit chain key (`auth::keys`). Without it the
/// worker may append to an audit log that is not keyed yet, and refuses to start once it is.
#[derive(Debug, clap::Args)]
struct AuditKeyArgs {
    /// The hub's server secret (hex), as configured on the server.
    #[arg(
        long = "server-secret",
        env = "MIGRATE_HUB_SERVER_SECRET",
        hide_env_values = true,
        conflicts_with = "server_secret_file"
    )]
    server_secret: Option<secrecy::SecretString>,
    /// A file holding the server secret, instead of the variable.
    #[arg(long = "server-secret-file", env = "MIGRATE_HUB_SERVER_SECRET_FILE")]
    server_secret_file: Option<std::path::PathBuf>,
}

impl AuditKeyArgs {
    fn load(&self) -> anyhow::Result<Option<auth::keys::ServerSecret>> {
        let text = match (&self.server_secret, &self.server_secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => secrecy::SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the server secret file {}", path.display()))?,
            ),
            (None, None) => return Ok(None),
        };
        Ok(Some(auth::keys::ServerSecret::parse(&text).context("MIGRATE_HUB_SERVER_SECRET")?))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::init_tracing(&cli.log)?;
    // Without keys, targets with sealed passwords fail with a clear message; references work if allowed.
    let ring = cli.keys.key_ring()?;
    if let Some(ring) = &ring {
        tracing::info!(current_key = ring.current_id(), "master keys loaded");
    }
    let references = domain::secret_ref::SecretRefPolicy::parse(&cli.secret_refs).context("MIGRATE_HUB_SECRET_REFS")?;
    if references.is_empty() {
        tracing::info!("no secret reference allowed (MIGRATE_HUB_SECRET_REFS): targets whose password is one fail");
    } else {
        tracing::info!(allowed = %references, "secret references allowed");
    }
    let opener: std::sync::Arc<dyn executor::secrets::SecretOpener> =
        std::sync::Arc::new(executor::secrets::WorkerSecrets::new(ring, references));
    // The queue listener keeps one pool connection for good, and the loop's claims keep one more in a pool of
    // three or more (see `executor::queue`); the items and the heartbeat need at least one. By default one
    // per slot and one for the loop's claims, no more: every idle connection
    // is a backend that catches up on the cache invalidations of every database on its server, and on a
    // server that also holds targets the releases' DDL then costs more too (`cargo xtask bench fleet`, 200
    // River databases 4 at once on 2 cores, two runs of 3 rounds each: with 10 per worker the server used
    // 39.2 to 47.4 ms of CPU per target and the hub's medians were 0.97 and 0.88 of the 4-way sqlx loop's
    // speed; with 6, 37.5 to 42.0 ms and 1.05 and 0.98).
    let db_connections = cli.db.db_max_connections.unwrap_or_else(|| u32::try_from(cli.slots + 2).unwrap_or(u32::MAX));
    anyhow::ensure!(
        db_connections >= 2,
        "MIGRATE_HUB_DB_MAX_CONNECTIONS is {db_connections}: a worker needs at least 2 tool-database connections (one \
         listens for new work)"
    );
    let settings = storage::pool::PoolSettings {
        max_connections: db_connections,
        application_name: "migrate-hub-worker".into(),
        generic_plans: true,
        ..Default::default()
    };
    let pool = storage::pool::connect_lazy(cli.db.connect_options()?, &settings);
    require_current_schema(&pool).await?;
    let audit_key = match cli.audit_key.load()? {
        Some(secret) => Some(secret.audit_chain_key()),
        None => {
            let mut conn = pool.acquire().await.context("cannot reach the tool database")?;
            let head = storage::audit::head(&mut conn).await.context("cannot read the audit log")?;
            anyhow::ensure!(
                !head.is_some_and(|h| h.layout == storage::audit::ChainLayout::Keyed),
                "the audit log is keyed and this worker has no server secret to extend it: set MIGRATE_HUB_SERVER_SECRET (or MIGRATE_HUB_SERVER_SECRET_FILE) as on the server"
            );
            tracing::warn!(
                "no server secret: this worker's audit events are not keyed (set MIGRATE_HUB_SERVER_SECRET)"
            );
            None
        }
    };

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
        audit_key,
        hub_url: cli.public_url.as_deref().map(|u| u.trim_end_matches('/').to_owned()),
        ..executor::queue::Settings::default()
    };
    let queue = executor::queue::QueueWorker::new(pool, registration.worker().id, label, settings, opener);
    let worked = queue.run(shutdown_signal()).await;
    registration.stop().await?;
    worked?;
    Ok(())
}

/// Refuses to go on unless the tool database is reachable and its schema is exactly this binary's.
async fn require_current_schema(pool: &storage::PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("cannot reach the tool database")?;
    let status = storage::schema::status(&mut conn).await.context("cannot read the tool database schema")?;
    anyhow::ensure!(status.is_current(), "{}", status.describe());
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
