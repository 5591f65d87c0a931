//! `migrate-hub-server`: the REST API and web UI, plus the operator commands that act on the tool database.

#[path = "../../shared/cli.rs"]
mod cli;

use std::net::TcpListener;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use sqlx::migrate::MigrateDatabase;

mod admin;

#[derive(Debug, Parser)]
#[command(name = "migrate-hub-server", version, about = "migrate-hub: API and web UI server")]
struct Cli {
    #[command(flatten)]
    log: cli::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain from the first row; exits non-zero and names the first broken row if any
    /// row was changed, removed or inserted out of line.
    Verify {
        #[command(flatten)]
        db: cli::DatabaseArgs,
    },
}

// Parsed once at start-up: the size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
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
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        secret: ServerSecretArgs,
        /// Master keys to seal target passwords with; without them only secret references can be set.
        #[command(flatten)]
        keys: cli::MasterKeyArgs,
        /// Largest up or down script of a migration, in bytes.
        #[arg(long, env = "MIGRATE_HUB_MAX_SQL_BYTES", default_value_t = 1 << 20)]
        max_sql_bytes: usize,
    },
    /// Audit log commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create an admin (or make an existing user admin, enabled) and print a new API token for them as the
    /// last line of output. The token is shown once; store it now.
    CreateAdmin {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        #[command(flatten)]
        secret: ServerSecretArgs,
        /// The admin's email address.
        #[arg(long)]
        email: String,
        /// Days until the printed token expires.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        token_days: u32,
    },
    /// Set (or with --clear, remove) a user's password for password login, read from standard input.
    SetPassword {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// Remove the password instead.
        #[arg(long)]
        clear: bool,
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
        Command::Serve { db, bind, http_workers, auth, secret, keys, max_sql_bytes } => {
            let limits = app::migrations::Limits { max_sql_bytes };
            serve(&db, &bind, http_workers, auth, &secret, &keys, limits).await
        }
        Command::Audit { command: AuditCommand::Verify { db } } => verify_audit(&db).await,
        Command::CreateAdmin { db, secret, email, token_days } => {
            admin::create_admin(&db, &secret, &email, token_days).await
        }
        Command::SetPassword { db, email, clear } => admin::set_password(&db, &email, clear).await,
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

async fn verify_audit(db: &cli::DatabaseArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server audit"));
    cli::require_current_schema(&pool).await?;
    let mut conn = pool.acquire().await.context("cannot reach the tool database")?;
    let verdict = audit::verify(&mut conn).await.context("cannot read the audit log")?;
    let mut stdout = std::io::stdout().lock();
    match verdict {
        audit::Verification::Intact { rows } => {
            writeln!(stdout, "audit log intact: {rows} rows, every hash and link checks out")?;
            Ok(())
        }
        audit::Verification::Broken { row_id, reason } => {
            writeln!(stdout, "audit log BROKEN at row {row_id}: {reason}")?;
            anyhow::bail!("the audit log chain is broken at row {row_id}: {reason}")
        }
    }
}

async fn serve(
    db: &cli::DatabaseArgs,
    bind: &str,
    http_workers: usize,
    auth: AuthArgs,
    secret: &ServerSecretArgs,
    keys: &cli::MasterKeyArgs,
    limits: app::migrations::Limits,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let settings = auth.settings(secret.load()?, &address)?;
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
    cli::require_current_schema(&pool).await?;
    let state = http::AppState::new(pool, settings)
        .context("invalid authentication settings")?
        .with_keys(keys.key_ring()?)
        .with_limits(limits);
    let server = http::Server::build(listener, state, &http::ServerSettings { workers: http_workers })?;
    tracing::info!(%address, "migrate-hub server listening on http://{address}");
    server.run().await.context("server failed")
}

/// The secret every server-side key derives from (session cookies, API token hashes).
#[derive(Debug, clap::Args)]
struct ServerSecretArgs {
    /// At least 32 random bytes as hex (`openssl rand -hex 32`); the same on every replica.
    #[arg(
        long = "server-secret",
        env = "MIGRATE_HUB_SERVER_SECRET",
        hide_env_values = true,
        conflicts_with = "server_secret_file"
    )]
    server_secret: Option<SecretString>,
    /// A file holding the server secret, instead of the variable.
    #[arg(long = "server-secret-file", env = "MIGRATE_HUB_SERVER_SECRET_FILE")]
    server_secret_file: Option<std::path::PathBuf>,
}

impl ServerSecretArgs {
    fn load(&self) -> anyhow::Result<auth::keys::ServerSecret> {
        let text = match (&self.server_secret, &self.server_secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the server secret file {}", path.display()))?,
            ),
            (None, None) => anyhow::bail!(
                "no server secret: set MIGRATE_HUB_SERVER_SECRET (e.g. `openssl rand -hex 32`) or MIGRATE_HUB_SERVER_SECRET_FILE"
            ),
        };
        auth::keys::ServerSecret::parse(&text).context("MIGRATE_HUB_SERVER_SECRET")
    }
}

/// How people sign in.
#[derive(Debug, clap::Args)]
struct AuthArgs {
    /// The URL people reach the hub at (scheme://host[:port]); default: http:// and the bound address.
    #[arg(long, env = "MIGRATE_HUB_PUBLIC_URL")]
    public_url: Option<String>,
    /// OIDC issuer URL.
    #[arg(long, env = "MIGRATE_HUB_OIDC_ISSUER", default_value = "https://accounts.google.com")]
    oidc_issuer: String,
    /// OIDC client id; without it OIDC login is off.
    #[arg(long, env = "MIGRATE_HUB_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// OIDC client secret.
    #[arg(long, env = "MIGRATE_HUB_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<SecretString>,
    /// OIDC redirect URL; default: the public URL + /auth/callback.
    #[arg(long, env = "MIGRATE_HUB_OIDC_REDIRECT_URL")]
    oidc_redirect_url: Option<String>,
    /// Comma-separated email domains allowed to sign in with OIDC (default: any verified email).
    #[arg(long, env = "MIGRATE_HUB_ALLOWED_EMAIL_DOMAINS", value_delimiter = ',')]
    allowed_email_domains: Vec<String>,
    /// Allow email + password login (argon2); off by default.
    #[arg(long, env = "MIGRATE_HUB_PASSWORD_LOGIN")]
    password_login: bool,
    /// Send cookies without `Secure` (plain-http development on a non-loopback host only).
    #[arg(long, env = "MIGRATE_HUB_INSECURE_COOKIES")]
    insecure_cookies: bool,
    /// A session unused for this many seconds ends.
    #[arg(long, env = "MIGRATE_HUB_SESSION_IDLE_SECS", default_value_t = 1800)]
    session_idle_secs: u64,
    /// A session ends this many seconds after sign-in, however it is used.
    #[arg(long, env = "MIGRATE_HUB_SESSION_ABSOLUTE_SECS", default_value_t = 43200)]
    session_absolute_secs: u64,
}

impl AuthArgs {
    fn settings(
        self,
        secret: auth::keys::ServerSecret,
        bound: &std::net::SocketAddr,
    ) -> anyhow::Result<http::AuthSettings> {
        let public_url = self.public_url.unwrap_or_else(|| format!("http://{bound}"));
        let public_url = public_url.trim_end_matches('/').to_owned();
        let allowed_domains: Vec<String> = self
            .allowed_email_domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        let oidc = self.oidc_client_id.map(|client_id| auth::oidc::OidcConfig {
            issuer: self.oidc_issuer,
            client_id,
            client_secret: self.oidc_client_secret,
            redirect_url: self.oidc_redirect_url.unwrap_or_else(|| format!("{public_url}/auth/callback")),
            allowed_domains: allowed_domains.clone(),
        });
        match &oidc {
            Some(config) if config.allowed_domains.is_empty() => {
                tracing::warn!(issuer = %config.issuer, "OIDC login is open to every verified email; set MIGRATE_HUB_ALLOWED_EMAIL_DOMAINS to restrict it");
            }
            Some(_) => {}
            None if !self.password_login => {
                tracing::warn!("no sign-in method configured (OIDC client id or password login): only API tokens work");
            }
            None => {}
        }
        anyhow::ensure!(self.session_idle_secs >= 1, "the session idle timeout must be at least one second");
        anyhow::ensure!(
            self.session_absolute_secs >= self.session_idle_secs,
            "the absolute session timeout must not be shorter than the idle one"
        );
        Ok(http::AuthSettings {
            oidc,
            password_login: self.password_login,
            server_secret: secret,
            public_url,
            secure_cookies: !self.insecure_cookies,
            session_idle: std::time::Duration::from_secs(self.session_idle_secs),
            session_absolute: std::time::Duration::from_secs(self.session_absolute_secs),
        })
    }
}
