//! `migrate-hub-server`: the REST API and web UI, plus the operator commands that act on the tool database.

#[path = "../../shared/cli.rs"]
mod cli;

use std::net::TcpListener;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::migrate::MigrateDatabase;

#[derive(Debug, Parser)]
#[command(name = "migrate-hub-server", version, about = "migrate-hub: API and web UI server")]
struct Cli {
    #[command(flatten)]
    log: cli::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the tool database schema (idempotent: a current database is left as it is).
    Migrate {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        /// Create the database first if it does not exist.
        #[arg(long)]
        create_database: bool,
    },
    /// Check the tool database schema without changing it; exits non-zero unless it is current.
    CheckSchema {
        #[command(flatten)]
        db: cli::DatabaseArgs,
    },
    /// Serve the API and web UI. Refuses to start unless the schema is current.
    Serve {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        /// Address to listen on.
        #[arg(long, env = "MIGRATE_HUB_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// HTTP worker threads (0: one per core).
        #[arg(long, env = "MIGRATE_HUB_HTTP_WORKERS", default_value_t = 0)]
        http_workers: usize,
    },
    /// Reseal every target password under the current (last) master key. Keep the old keys configured
    /// until this has run: each secret opens under some configured key at every moment.
    RotateKey {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        #[command(flatten)]
        keys: cli::MasterKeyArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::init_tracing(&cli.log)?;
    match cli.command {
        Command::Migrate { db, create_database } => migrate(&db, create_database).await,
        Command::CheckSchema { db } => {
            let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
            cli::require_current_schema(&pool).await?;
            tracing::info!("the tool database schema is current");
            Ok(())
        }
        Command::Serve { db, bind, http_workers } => serve(&db, &bind, http_workers).await,
        Command::RotateKey { db, keys } => rotate_key(&db, &keys).await,
    }
}

async fn rotate_key(db: &cli::DatabaseArgs, keys: &cli::MasterKeyArgs) -> anyhow::Result<()> {
    let ring =
        keys.key_ring()?.context("no master keys: set MIGRATE_HUB_MASTER_KEYS or MIGRATE_HUB_MASTER_KEY_FILE")?;
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
    cli::require_current_schema(&pool).await?;
    let mut conn = pool.acquire().await.context("cannot reach the tool database")?;
    let rotation = auth::secrets::rotate(&mut conn, &ring).await?;
    let mut tx = pool.begin().await?;
    let event = audit::Event {
        actor: domain::model::AuditActor {
            kind: domain::enums::ActorKind::System,
            user_id: None,
            label: "migrate-hub-server rotate-key".into(),
        },
        action: "secrets.rotated".into(),
        object_type: "master_key".into(),
        object_id: Some(ring.current_id().to_owned()),
        details: serde_json::json!({ "resealed": rotation.resealed, "changed_meanwhile": rotation.raced }),
        ip: None,
        user_agent: None,
    };
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(
        key.id = ring.current_id(),
        resealed = rotation.resealed,
        changed_meanwhile = rotation.raced,
        "every target secret is sealed under the current key"
    );
    Ok(())
}

async fn migrate(db: &cli::DatabaseArgs, create_database: bool) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let options = db.connect_options()?;
    if create_database && !sqlx::Postgres::database_exists(db.url.expose_secret()).await.unwrap_or(false) {
        sqlx::Postgres::create_database(db.url.expose_secret()).await.context("cannot create the tool database")?;
        tracing::info!(database = options.get_database().unwrap_or_default(), "created the tool database");
    }
    let pool = storage::pool::connect(options, &db.pool_settings("migrate-hub-server migrate"))
        .await
        .context("cannot reach the tool database")?;
    storage::schema::migrate(&pool).await.context("applying the tool schema failed")?;
    let mut conn = pool.acquire().await?;
    let status = storage::schema::status(&mut conn).await?;
    anyhow::ensure!(status.is_current(), "{}", status.describe());
    tracing::info!("the tool database schema is current");
    Ok(())
}

async fn serve(db: &cli::DatabaseArgs, bind: &str, http_workers: usize) -> anyhow::Result<()> {
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
    cli::require_current_schema(&pool).await?;
    let listener = TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let server =
        http::Server::build(listener, http::AppState { pool }, &http::ServerSettings { workers: http_workers })?;
    tracing::info!(%address, "migrate-hub server listening on http://{address}");
    server.run().await.context("server failed")
}
