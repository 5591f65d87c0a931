//! What a worker must never send or touch: its own secrets, and the hub's own database.
//!
//! - **Passwords.** [`resolve_password`] finds a target's password as this process may: none, a sealed one
//!   opened with the master keys (bound to the target's connection settings, see `auth::secrets`), or a
//!   reference (`env:NAME`, `file:/path`) that this process's allowlist permits
//!   ([`domain::secret_ref::SecretRefPolicy`], `MIGRATE_HUB_SECRET_REFS`; nothing by default). The hub's
//!   own settings and `/proc`, `/sys`, `/dev` are never read, and a file is read only if its canonical
//!   path (every symbolic link followed) is allowed too, so a link cannot lead out of an allowed directory.
//!   Without this, anyone who may edit a target could have a worker read its master keys or
//!   `DATABASE_URL` and send them, as a password, to a server of their choosing.
//! - **The tool database.** A target that is the tool database itself would let a migration disable the
//!   audit trigger and delete rows. [`refuse_tool_database`] compares the target session's server identity
//!   (`pg_control_system().system_identifier`) and database OID with the tool database's, whatever host name,
//!   port or proxy leads there; the worker calls it before every apply, the server at creation and at each
//!   connection check.
//!
//! Errors name what is missing or refused, never a value.

use std::time::Duration;

use domain::enums::Engine;
use domain::model::{SealedSecret, SecretSource, Target};
use domain::secret_ref::{SecretRef, SecretRefPolicy};
use secrecy::SecretString;
use storage::PgPool;
use tokio::io::AsyncReadExt;

use crate::target::{ConnectSettings, DatabaseId, SessionLimits, TargetConnection, TargetError};

/// The largest password file read; anything longer is not a password.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

static NO_REFERENCES: SecretRefPolicy = SecretRefPolicy::none();

/// Opens sealed target secrets and says which references this process may resolve. The worker holds the
/// only implementation that can open (with the master keys); the password exists in memory only while
/// connecting.
pub trait SecretOpener: Send + Sync + 'static {
    fn open(&self, target: &Target, sealed: &SealedSecret) -> Result<SecretString, String>;

    /// Opens webhook `webhook`'s signing secret.
    fn open_webhook(&self, _webhook: uuid::Uuid, _sealed: &SealedSecret) -> Result<SecretString, String> {
        Err("the webhook's secret is sealed and this worker has no master key configured".into())
    }

    /// The references this process may resolve: none unless configured.
    fn references(&self) -> &SecretRefPolicy {
        &NO_REFERENCES
    }
}

/// A process without the master keys: targets with sealed secrets fail with a clear message.
#[derive(Debug, Default)]
pub struct NoMasterKey;

impl SecretOpener for NoMasterKey {
    fn open(&self, _target: &Target, _sealed: &SealedSecret) -> Result<SecretString, String> {
        Err("the target's password is sealed and this worker has no master key configured".into())
    }
}

/// The master keys open what they sealed, for the target and connection it was sealed for.
impl SecretOpener for auth::secrets::KeyRing {
    fn open(&self, target: &Target, sealed: &SealedSecret) -> Result<SecretString, String> {
        auth::secrets::KeyRing::open(self, &auth::secrets::Binding::of(target), sealed).map_err(|e| match e {
            auth::secrets::SealError::Tampered(_) => format!(
                "{e}; a sealed password opens only for the host, port, database and user it was entered for: set it again"
            ),
            other => other.to_string(),
        })
    }

    fn open_webhook(&self, webhook: uuid::Uuid, sealed: &SealedSecret) -> Result<SecretString, String> {
        self.open_row("webhooks", &webhook, "secret", sealed).map_err(|e| e.to_string())
    }
}

/// A worker's secrets: its master keys (if any) and the references it may resolve.
#[derive(Debug)]
pub struct WorkerSecrets {
    keys: Option<auth::secrets::KeyRing>,
    references: SecretRefPolicy,
}

impl WorkerSecrets {
    pub fn new(keys: Option<auth::secrets::KeyRing>, references: SecretRefPolicy) -> Self {
        WorkerSecrets { keys, references }
    }
}

impl SecretOpener for WorkerSecrets {
    fn open(&self, target: &Target, sealed: &SealedSecret) -> Result<SecretString, String> {
        match &self.keys {
            Some(ring) => SecretOpener::open(ring, target, sealed),
            None => NoMasterKey.open(target, sealed),
        }
    }

    fn open_webhook(&self, webhook: uuid::Uuid, sealed: &SealedSecret) -> Result<SecretString, String> {
        match &self.keys {
            Some(ring) => SecretOpener::open_webhook(ring, webhook, sealed),
            None => NoMasterKey.open_webhook(webhook, sealed),
        }
    }

    fn references(&self) -> &SecretRefPolicy {
        &self.references
    }
}

/// A target's password as this process finds it: none, a reference this process may resolve, read from
/// its environment (`env:NAME`) or a file (`file:/path`), or the sealed one opened with `opener`. The error
/// says what is missing or refused, never a value.
pub async fn resolve_password(
    pool: &PgPool,
    opener: &dyn SecretOpener,
    target: &Target,
) -> Result<Option<SecretString>, String> {
    match &target.secret {
        SecretSource::None => Ok(None),
        SecretSource::Reference { reference } => resolve_reference(opener.references(), reference).await.map(Some),
        SecretSource::Sealed { .. } => {
            let mut conn = pool.acquire().await.map_err(|e| format!("tool database: {e}"))?;
            let sealed = storage::targets::sealed_secret(&mut conn, target.id)
                .await
                .map_err(|e| format!("tool database: {e}"))?
                .ok_or_else(|| "the target's sealed password is missing".to_owned())?;
            opener.open(target, &sealed).map(Some)
        }
    }
}

async fn resolve_reference(policy: &SecretRefPolicy, reference: &str) -> Result<SecretString, String> {
    let parsed =
        SecretRef::parse(reference).map_err(|e| format!("the secret reference {reference:?} is malformed: {e}"))?;
    policy.check(&parsed).map_err(|refusal| format!("refused to resolve the secret reference: {refusal}"))?;
    match parsed {
        SecretRef::Env(name) => std::env::var(&name)
            .map(SecretString::from)
            .map_err(|_| format!("the worker has no environment variable {name} for this target's password")),
        SecretRef::File(path) => {
            // The path as written was allowed; the file it leads to must be too.
            let canonical = tokio::fs::canonicalize(&path)
                .await
                .map_err(|e| format!("cannot read the password file {path}: {}", e.kind()))?;
            let canonical_text = canonical
                .to_str()
                .ok_or_else(|| format!("the password file {path} resolves to a path that is not UTF-8"))?;
            policy
                .check_path(canonical_text)
                .map_err(|refusal| format!("refused to read the password file {path}: it resolves to {refusal}"))?;
            let file = tokio::fs::File::open(&canonical)
                .await
                .map_err(|e| format!("cannot read the password file {path}: {}", e.kind()))?;
            let mut text = String::new();
            file.take(MAX_PASSWORD_FILE + 1)
                .read_to_string(&mut text)
                .await
                .map_err(|e| format!("cannot read the password file {path}: {}", e.kind()))?;
            if text.len() as u64 > MAX_PASSWORD_FILE {
                return Err(format!("the password file {path} is larger than {MAX_PASSWORD_FILE} bytes"));
            }
            Ok(SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()))
        }
    }
}

pub(crate) use crate::target::TOOL_DATABASE;

/// Why the worker does not apply to a target (see [`refuse_tool_database`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    /// The tool database did not answer (a connection or pool error): trying again later may succeed.
    pub transient: bool,
}

/// Whether `conn` is a session on the tool database. `Err` when the tool database's own identity cannot
/// be read. A target that cannot report its identity (a server without `pg_control_system()`, or a role
/// denied it) is taken as another server: the tool database's server answers for every role by default
/// (`EXECUTE` is granted to `PUBLIC`), and only a superuser there could revoke that.
pub async fn is_tool_database(pool: &PgPool, conn: &mut TargetConnection) -> Result<bool, Refused> {
    if conn.engine() != Engine::Postgres {
        // The tool database is always Postgres.
        return Ok(false);
    }
    let tool = tool_identity(pool).await?;
    Ok(is_database(&tool, conn).await)
}

/// The tool database's own identity (which does not change while a pool is connected to it).
pub async fn tool_identity(pool: &PgPool) -> Result<storage::targets::DatabaseIdentity, Refused> {
    let mut tool_conn = pool.acquire().await.map_err(|e| tool_identity_error(&e, true))?;
    storage::targets::database_identity(&mut tool_conn).await.map_err(|e| {
        // A refusal by the tool database itself (e.g. EXECUTE on pg_control_system() revoked) will not
        // go away by waiting; a broken connection may.
        let answered = matches!(&e, storage::StorageError::Database(sqlx::Error::Database(_)));
        tool_identity_error(&e, !answered)
    })
}

/// Whether `conn` is a session on the database `tool` identifies (see [`is_tool_database`]).
pub async fn is_database(tool: &storage::targets::DatabaseIdentity, conn: &mut TargetConnection) -> bool {
    match conn.identity().await {
        Ok(Some(id)) => id == database_id(tool),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the target's server identity; taken as another server");
            false
        }
    }
}

/// The tool database's identity as a target session compares it.
pub fn database_id(tool: &storage::targets::DatabaseIdentity) -> DatabaseId {
    DatabaseId { system_identifier: tool.system_identifier, database_oid: tool.database_oid }
}

fn tool_identity_error(e: &dyn std::fmt::Display, transient: bool) -> Refused {
    Refused {
        message: format!(
            "cannot read the tool database's identity, to make sure this target is not the tool database: {e}"
        ),
        transient,
    }
}

/// The worker's check before every apply: `Err` when the target is the tool database, or when that cannot
/// be ruled out because the tool database does not answer (then `transient`).
pub async fn refuse_tool_database(pool: &PgPool, conn: &mut TargetConnection) -> Result<(), Refused> {
    match is_tool_database(pool, conn).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(Refused { message: TOOL_DATABASE.to_owned(), transient: false }),
        Err(e) => Err(e),
    }
}

/// Whether the target at `settings` is reachable and is the tool database (for the server's check when a
/// target is created or changed). Unreachable, or not answering within `timeout`: `false`, the worker
/// checks again before every apply.
pub async fn reaches_tool_database(pool: &PgPool, settings: &ConnectSettings, timeout: Duration) -> bool {
    let check = async {
        let mut conn = TargetConnection::connect_single(settings).await.ok()?;
        let same = is_tool_database(pool, &mut conn).await.ok();
        conn.close().await;
        same
    };
    tokio::time::timeout(timeout, check).await.ok().flatten().unwrap_or(false)
}

/// Why a connection check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The target is the tool database (or that could not be ruled out).
    #[error("{0}")]
    ToolDatabase(String),
}

/// Connects with `settings`, refuses the tool database, runs a trivial query under a statement timeout of
/// `timeout`, closes, and returns the server's version: whether the hub could reach the target as a worker
/// would, and whether a worker would apply to it.
pub async fn probe(pool: &PgPool, settings: &ConnectSettings, timeout: Duration) -> Result<String, ProbeError> {
    probe_with(pool, settings, timeout, async |conn: &mut TargetConnection| conn.server_version().await).await
}

/// [`probe`] with `read` in place of the version query: what the server asks of a target (never a
/// change), on one session with `timeout` as its statement and lock timeout, after making sure it is not
/// the tool database.
pub async fn probe_with<T>(
    pool: &PgPool,
    settings: &ConnectSettings,
    timeout: Duration,
    read: impl AsyncFnOnce(&mut TargetConnection) -> Result<T, TargetError>,
) -> Result<T, ProbeError> {
    let mut conn = TargetConnection::connect_single(settings).await?;
    let checked = async {
        refuse_tool_database(pool, &mut conn).await.map_err(|refused| ProbeError::ToolDatabase(refused.message))?;
        conn.set_limits(SessionLimits { lock_timeout: timeout, statement_timeout: Some(timeout) }).await?;
        Ok(read(&mut conn).await?)
    };
    let answer = match tokio::time::timeout(timeout + Duration::from_millis(500), checked).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Target(TargetError::Statement {
            code: None,
            message: format!("the target did not answer a trivial query within {timeout:?}"),
            timeout: true,
        })),
    };
    conn.close().await;
    answer
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn references_resolve_only_when_allowed() {
        let none = SecretRefPolicy::none();
        let refused = resolve_reference(&none, "env:PATH").await.unwrap_err();
        assert!(refused.contains("not allowed by MIGRATE_HUB_SECRET_REFS"), "{refused}");
        let everything = SecretRefPolicy::parse("env:*,file:/*").unwrap();
        assert!(resolve_reference(&everything, "env:PATH").await.is_ok());
        for own in ["env:MIGRATE_HUB_MASTER_KEYS", "env:DATABASE_URL", "file:/proc/self/environ"] {
            let refused = resolve_reference(&everything, own).await.unwrap_err();
            assert!(refused.contains("never"), "{own}: {refused}");
        }
        let refused = resolve_reference(&everything, "file:/tmp/../proc/self/environ").await.unwrap_err();
        assert!(refused.contains("malformed"), "{refused}");
    }

    #[tokio::test]
    async fn a_link_cannot_lead_out_of_an_allowed_directory() {
        let dir = std::env::temp_dir().join(format!("mh-secrets-{}", std::process::id()));
        let allowed = dir.join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::write(allowed.join("pw"), "s3cret\n").unwrap();
        std::fs::write(dir.join("outside"), "other").unwrap();
        let _ = std::fs::remove_file(allowed.join("link"));
        let _ = std::fs::remove_file(allowed.join("proc"));
        std::os::unix::fs::symlink(dir.join("outside"), allowed.join("link")).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", allowed.join("proc")).unwrap();
        let canonical_allowed = std::fs::canonicalize(&allowed).unwrap();
        let policy = SecretRefPolicy::parse(&format!("file:{}/*", canonical_allowed.display())).unwrap();
        let at = |name: &str| format!("file:{}/{name}", canonical_allowed.display());
        use secrecy::ExposeSecret;
        assert_eq!(resolve_reference(&policy, &at("pw")).await.unwrap().expose_secret(), "s3cret");
        let refused = resolve_reference(&policy, &at("link")).await.unwrap_err();
        assert!(refused.contains("resolves to"), "{refused}");
        let refused = resolve_reference(&policy, &at("proc")).await.unwrap_err();
        assert!(refused.contains("/proc"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
