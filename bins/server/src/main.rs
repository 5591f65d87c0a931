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
    /// row was changed, removed or inserted out of line, or (with --expect-head) if the chain no longer
    /// reaches a head published earlier (its newest rows were removed).
    Verify {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        /// The key of keyed rows derives from it; without it only rows written before the chain was keyed
        /// can be checked.
        #[command(flatten)]
        secret: ServerSecretArgs,
        /// A head published earlier (`GET /api/v1/audit/head` or the server's "audit chain head" log line),
        /// as SEQ:HASH: the chain must still have that row, with that hash.
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<app::audit_log::Head>,
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
        #[command(flatten)]
        listen: ListenArgs,
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
        #[command(flatten)]
        guard: GuardArgs,
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
        /// For the audit chain key (needed once the audit log is keyed).
        #[command(flatten)]
        secret: ServerSecretArgs,
    },
    /// Reseal every target password under the current (last) master key. Keep the old keys configured
    /// until this has run: each secret opens under some configured key at every moment.
    RotateKey {
        #[command(flatten)]
        db: cli::DatabaseArgs,
        #[command(flatten)]
        keys: cli::MasterKeyArgs,
        /// For the audit chain key (needed once the audit log is keyed).
        #[command(flatten)]
        secret: ServerSecretArgs,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::init_tracing(&cli.log)?;
    match cli.command {
        Command::Migrate { db, create_database } => migrate(&db, create_database).await,
        Command::CheckSchema { db } => {
            let pool = tool_db(&db, "migrate-hub-server")?;
            require_current_schema(&pool).await?;
            tracing::info!("the tool database schema is current");
            Ok(())
        }
        Command::Serve { db, listen, auth, secret, keys, max_sql_bytes, guard } => {
            let limits = app::migrations::Limits { max_sql_bytes };
            serve(&db, &listen, auth, &secret, &keys, limits, &guard).await
        }
        Command::Audit { command: AuditCommand::Verify { db, secret, expect_head } } => {
            verify_audit(&db, &secret, expect_head.as_ref()).await
        }
        Command::CreateAdmin { db, secret, email, token_days } => {
            admin::create_admin(&db, &secret, &email, token_days).await
        }
        Command::SetPassword { db, email, clear, secret } => admin::set_password(&db, &secret, &email, clear).await,
        Command::RotateKey { db, keys, secret } => admin::rotate_key(&db, &keys, &secret).await,
    }
}

/// The tool-database pool when `MIGRATE_HUB_DB_MAX_CONNECTIONS` is not set.
const DB_CONNECTIONS: u32 = 10;

/// A pool on the tool database for this command, connected when first used.
fn tool_db(db: &cli::DatabaseArgs, application_name: &str) -> anyhow::Result<app::PgPool> {
    let settings = app::tool_db::PoolSettings {
        max_connections: db.db_max_connections.unwrap_or(DB_CONNECTIONS),
        application_name: application_name.to_owned(),
        ..Default::default()
    };
    Ok(app::tool_db::connect_lazy(db.connect_options()?, &settings))
}

/// What an operator command runs the use cases against: the tool database (once its schema is checked), its
/// audit events keyed with the key derived from the server secret when one is given.
async fn operator_hub(
    db: &cli::DatabaseArgs,
    secret: Option<&auth::keys::ServerSecret>,
    application_name: &str,
) -> anyhow::Result<app::Hub> {
    let pool = tool_db(db, application_name)?;
    require_current_schema(&pool).await?;
    Ok(app::Hub::new(pool).with_audit_key(secret.map(auth::keys::ServerSecret::audit_chain_key)))
}

/// Refuses to go on unless the tool database is reachable and its schema is exactly this binary's.
async fn require_current_schema(pool: &app::PgPool) -> anyhow::Result<()> {
    let status = app::tool_db::schema_status(pool).await.map_err(|e| {
        let context =
            if e.did_not_connect() { "cannot reach the tool database" } else { "cannot read the tool database schema" };
        anyhow::Error::new(e).context(context)
    })?;
    anyhow::ensure!(status.is_current(), "{}", status.describe());
    Ok(())
}

async fn migrate(db: &cli::DatabaseArgs, create_database: bool) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let options = db.connect_options()?;
    if create_database && !sqlx::Postgres::database_exists(db.url.expose_secret()).await.unwrap_or(false) {
        sqlx::Postgres::create_database(db.url.expose_secret()).await.context("cannot create the tool database")?;
        tracing::info!(database = options.get_database().unwrap_or_default(), "created the tool database");
    }
    let settings = app::tool_db::PoolSettings {
        max_connections: db.db_max_connections.unwrap_or(DB_CONNECTIONS),
        application_name: "migrate-hub-server migrate".into(),
        ..Default::default()
    };
    let pool = app::tool_db::connect(options, &settings).await.context("cannot reach the tool database")?;
    let status = app::tool_db::migrate(&pool).await.context("applying the tool schema failed")?;
    anyhow::ensure!(status.is_current(), "{}", status.describe());
    tracing::info!("the tool database schema is current");
    Ok(())
}

async fn verify_audit(
    db: &cli::DatabaseArgs,
    secret: &ServerSecretArgs,
    expect_head: Option<&app::audit_log::Head>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let secret = secret.load_optional()?;
    let hub = operator_hub(db, secret.as_ref(), "migrate-hub-server audit").await?;
    let verdict = app::audit_log::verify_chain(&hub).await.context("cannot read the audit log")?;
    let mut stdout = std::io::stdout().lock();
    let rows = match verdict {
        app::audit_log::Verification::Intact { rows } => rows,
        app::audit_log::Verification::Broken { row_id, reason } => {
            writeln!(stdout, "audit log BROKEN at row {row_id}: {reason}")?;
            anyhow::bail!("the audit log chain is broken at row {row_id}: {reason}")
        }
    };
    if let Some(expected) = expect_head {
        let check = app::audit_log::check_head(&hub, expected).await.context("cannot read the audit log")?;
        if !check.is_reached() {
            writeln!(stdout, "audit log CUT: {check}")?;
            anyhow::bail!("the audit log does not reach the expected head {expected}: {check}")
        }
        writeln!(
            stdout,
            "audit log intact: {rows} rows, every hash and link checks out, and it reaches head {expected}"
        )?;
        return Ok(());
    }
    writeln!(stdout, "audit log intact: {rows} rows, every hash and link checks out")?;
    Ok(())
}

async fn serve(
    db: &cli::DatabaseArgs,
    listen: &ListenArgs,
    auth: AuthArgs,
    secret: &ServerSecretArgs,
    keys: &cli::MasterKeyArgs,
    limits: app::migrations::Limits,
    guard: &GuardArgs,
) -> anyhow::Result<()> {
    // Settings first: a bad value fails the start with its name before anything is bound or connected.
    let proxies = http::TrustedProxies::parse(&listen.trusted_proxies).context("MIGRATE_HUB_TRUSTED_PROXIES")?;
    let bind = &listen.bind;
    let listener = TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let server_secret = secret.load()?;
    let audit_key = server_secret.audit_chain_key();
    let secret_refs = guard.secret_refs()?;
    let settings = auth.settings(server_secret, &address)?;
    let pool = tool_db(db, "migrate-hub-server")?;
    require_current_schema(&pool).await?;
    let state = http::AppState::new(pool, settings)
        .context("invalid authentication settings")?
        .with_audit_key(Some(audit_key))
        .with_secret_refs(secret_refs)
        .with_keys(keys.key_ring()?)
        .with_limits(limits)
        .with_trusted_proxies(proxies.clone())
        .with_bind_address(address);
    if !proxies.is_empty() {
        tracing::info!(%proxies, "X-Forwarded-For is believed from these proxies only");
    }
    tokio::spawn(log_audit_heads(state.hub.clone(), guard.audit_head_every));
    let server = http::Server::build(listener, state, &http::ServerSettings { workers: listen.http_workers })?;
    tracing::info!(%address, "migrate-hub server listening on http://{address}");
    server.run().await.context("server failed")
}

/// Where the server listens, and who stands in front of it.
#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Address to listen on.
    #[arg(long, env = "MIGRATE_HUB_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "MIGRATE_HUB_HTTP_WORKERS", default_value_t = 0)]
    http_workers: usize,
    /// Comma-separated addresses or CIDRs of the reverse proxies in front of the hub (e.g.
    /// `10.0.0.0/8,::1`). Only from these is `X-Forwarded-For` believed as the client's address (for rate
    /// limits and audit rows); by default no proxy is trusted and the TCP peer is the client.
    #[arg(long, env = "MIGRATE_HUB_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
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
        self.load_optional()?.context(
            "no server secret: set MIGRATE_HUB_SERVER_SECRET (e.g. `openssl rand -hex 32`) or MIGRATE_HUB_SERVER_SECRET_FILE",
        )
    }

    /// The secret when one is configured: commands that only append to or check the audit log need it (for
    /// the audit chain key) once the log is keyed, and say so when it is missing.
    fn load_optional(&self) -> anyhow::Result<Option<auth::keys::ServerSecret>> {
        let text = match (&self.server_secret, &self.server_secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the server secret file {}", path.display()))?,
            ),
            (None, None) => return Ok(None),
        };
        auth::keys::ServerSecret::parse(&text).context("MIGRATE_HUB_SERVER_SECRET").map(Some)
    }
}

/// What keeps targets from reaching the hub's own secrets and history (issue 16).
#[derive(Debug, clap::Args)]
struct GuardArgs {
    /// Secret references targets may name as their password: comma-separated patterns where `*` matches
    /// anything, e.g. `env:TARGET_*,file:/run/secrets/*` (set the same on the workers, which resolve them).
    /// None by default. The hub's own settings (`MIGRATE_HUB_*`, `DATABASE_URL`, `PGPASSWORD`) and anything
    /// under /proc, /sys or /dev never are.
    #[arg(long = "secret-refs", env = "MIGRATE_HUB_SECRET_REFS", default_value = "")]
    secret_refs: String,
    /// Log the audit chain's head (sequence and hash, for `audit verify --expect-head`) at start and then
    /// whenever this many events were added since the last line.
    #[arg(long, env = "MIGRATE_HUB_AUDIT_HEAD_EVERY", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    audit_head_every: u64,
}

impl GuardArgs {
    /// The secret references targets may name, for the use cases (`app::Hub::with_secret_refs`).
    fn secret_refs(&self) -> anyhow::Result<domain::secret_ref::SecretRefPolicy> {
        let references =
            domain::secret_ref::SecretRefPolicy::parse(&self.secret_refs).context("MIGRATE_HUB_SECRET_REFS")?;
        if !references.is_empty() {
            tracing::info!(allowed = %references, "targets may name these secret references");
        }
        Ok(references)
    }
}

/// Logs the audit chain's head when the server starts and then every `every` events (looked at every two
/// seconds), so that a copy of it lives in the log pipeline, out of reach of anyone who can write the tool
/// database: `audit verify --expect-head SEQ:HASH` then detects a chain whose newest rows were removed. The
/// head is read as committed, so a logged head never belongs to a transaction that rolled back.
async fn log_audit_heads(hub: app::Hub, every: u64) {
    let every = i64::try_from(every).unwrap_or(i64::MAX);
    let mut logged: Option<i64> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app::audit_log::current_head(&hub).await {
            Ok(Some(head)) if logged.is_none_or(|last| head.sequence >= last.saturating_add(every)) => {
                tracing::info!(audit.sequence = head.sequence, audit.head = %head, "audit chain head");
                logged = Some(head.sequence);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the audit chain head"),
        }
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
