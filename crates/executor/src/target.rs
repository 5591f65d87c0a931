//! Connections to target databases (Postgres and MySQL/MariaDB), as a migration runner needs them.
//!
//! Every piece of SQL a target runs goes through [`TargetConnection::execute`]; it is the one place that
//! wraps dynamic SQL in `AssertSqlSafe`, because running user-authored SQL is this crate's purpose.
//!
//! MySQL sessions are left as the server configures them: sqlx by default adds `PIPES_AS_CONCAT` to
//! `sql_mode` and sets `time_zone='+00:00'`, which would make `||` and `NOW()` behave differently than in the
//! `mysql` client and get stored with every routine and trigger a migration creates.

use std::future::Future;
use std::time::Duration;

use domain::enums::{Engine, TlsMode};
use domain::model::Target;
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlConnection, PgConnection, Row};

/// Everything needed to open a session on a target.
#[derive(Clone)]
pub struct ConnectSettings {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Option<SecretString>,
    pub tls_mode: TlsMode,
    pub connect_timeout: Duration,
    /// MySQL/MariaDB only: the session `sql_mode` to use instead of the server's default (some
    /// projects' migrations are written for another server's defaults). Letters, digits, `_` and `,`.
    pub mysql_sql_mode: Option<String>,
}

impl std::fmt::Debug for ConnectSettings {
    // Written by hand so the password can never reach a log line, even redacted-by-accident.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("tls_mode", &self.tls_mode)
            .field("mysql_sql_mode", &self.mysql_sql_mode)
            .finish_non_exhaustive()
    }
}

impl ConnectSettings {
    /// The settings of a stored target, with its password (resolved by the caller) and a connect timeout.
    pub fn for_target(target: &Target, password: Option<SecretString>, connect_timeout: Duration) -> Self {
        ConnectSettings {
            engine: target.engine,
            host: target.host.clone(),
            port: target.port,
            database: target.database.clone(),
            username: target.username.clone(),
            password,
            tls_mode: target.tls_mode,
            connect_timeout,
            mysql_sql_mode: None,
        }
    }
}

/// Session limits from the environment's policy.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// How long a statement waits for a table lock.
    pub lock_timeout: Duration,
    /// How long one statement may run; `None` for no limit.
    pub statement_timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `address` is the target's `host:port` (never its credentials), so the message says where it tried.
    #[error("cannot connect to the target at {address} within {limit:?}")]
    ConnectTimeout { address: String, limit: Duration },
    #[error("cannot connect to the target at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: sqlx::Error,
    },
    /// An error the database returned for a statement.
    #[error("{message}")]
    Statement {
        /// SQLSTATE (Postgres) or error number (MySQL), when the server gave one.
        code: Option<String>,
        message: String,
        /// The server's error class says trying again later may succeed (lock or statement timeout,
        /// deadlock, serialization failure, the server shutting down), unlike a SQL error.
        timeout: bool,
    },
    /// The connection broke or another transport error: worth retrying.
    #[error("connection to the target failed: {0}")]
    Connection(#[source] sqlx::Error),
    /// The session holding the target's lock stopped answering, so the lock is no longer held.
    #[error(
        "the session holding the target lock was lost ({0}); stopped so that no other run applies at the same time"
    )]
    LockLost(String),
    /// A connection opened without its lock session was asked to lock (a programming error).
    #[error("this connection has no lock session; it can read but not apply")]
    NoLockSession,
    /// The session is on the database [`TargetConnection::forbid`] named (the hub's own): nothing ran.
    #[error("{}", TOOL_DATABASE)]
    Forbidden,
}

/// Why nothing runs on a target that is the hub's own tool database.
pub(crate) const TOOL_DATABASE: &str =
    "this target is the hub's own tool database (same server and database); migrations never run there";

impl TargetError {
    /// Whether trying again later may succeed (connection trouble, lock timeouts), as opposed to a SQL
    /// error that will fail the same way every time. Decided by the error's class (SQLSTATE, MySQL error
    /// number or transport), never by its message.
    pub fn is_transient(&self) -> bool {
        match self {
            TargetError::ConnectTimeout { .. } | TargetError::Connect { .. } | TargetError::Connection(_) => true,
            TargetError::Statement { timeout, .. } => *timeout,
            TargetError::LockLost(_) | TargetError::NoLockSession | TargetError::Forbidden => false,
        }
    }

    /// Whether the statement gave up waiting for a lock (`lock_timeout`, Postgres 55P03; MySQL/MariaDB 1205
    /// lock wait timeout, 3572 NOWAIT), so it did not run: worth running again once the lock is free.
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, TargetError::Statement { code: Some(code), .. } if matches!(code.as_str(), "55P03" | "1205" | "3572"))
    }

    /// Classifies an error from a target: a database error keeps its code and message; anything else
    /// (I/O, protocol, pool) is a broken connection.
    pub(crate) fn from_sqlx(error: sqlx::Error) -> Self {
        let sqlx::Error::Database(db) = &error else {
            return TargetError::Connection(error);
        };
        let (code, transient) = if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            let number = my.number();
            (Some(number.to_string()), mysql_transient(number))
        } else {
            let code = db.code().map(|c| c.into_owned());
            let transient = code.as_deref().is_some_and(postgres_transient);
            (code, transient)
        };
        TargetError::Statement { code, message: db.message().to_owned(), timeout: transient }
    }
}

/// Which part of [`TargetConnection::execute_batch`] failed.
#[derive(Debug)]
pub enum Inline {
    /// The migration's statement: the history change did not run.
    Statement(TargetError),
    /// The statement ran; the lock check or the history change failed, so nothing was committed.
    Record(TargetError),
}

/// One statement of a batch that ran: its time (measured by the server's clock on Postgres) and the rows
/// it affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ran {
    pub elapsed: Duration,
    pub rows: u64,
}

/// One migration of a batch: its statements, then `record`, the history change that ends it with its
/// `COMMIT`.
#[derive(Debug, Clone, Copy)]
pub struct BatchPart<'a> {
    pub statements: &'a [String],
    pub record: &'a str,
}

/// One migration of a batch that committed: its statements, and the time from the end of its last
/// statement to the end of its `COMMIT` (the lock check and the history row, tens of microseconds, then
/// the commit, which for DDL is most of it), when the server's clock measured it (the record ran in the
/// batch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartRan {
    pub statements: Vec<Ran>,
    pub commit: Option<Duration>,
}

/// A batch that stopped: the parts committed before (their statements' times and rows), the statements
/// of the failing part that ran, and what failed.
#[derive(Debug)]
pub struct BatchFailed {
    pub committed: Vec<PartRan>,
    pub ran: Vec<Ran>,
    pub failure: Inline,
}

/// SQLSTATEs worth another attempt: 55P03 lock_not_available (lock_timeout), 57014 query_canceled
/// (statement_timeout), 40001 serialization_failure, 40P01 deadlock_detected, class 08 (connection
/// exception), 57P01–57P03 (the server shutting down or starting), 53300 too_many_connections.
fn postgres_transient(code: &str) -> bool {
    matches!(code, "55P03" | "57014" | "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300")
        || code.starts_with("08")
}

/// MySQL/MariaDB error numbers worth another attempt: 1205 lock wait timeout, 1213 deadlock, 3024 (MySQL)
/// and 1969 (MariaDB) statement time exceeded, 3572 NOWAIT lock refused, 1040 too many connections, 1053
/// server shutdown, 2006/2013 server gone or lost.
fn mysql_transient(number: u16) -> bool {
    matches!(number, 1205 | 1213 | 3024 | 1969 | 3572 | 1040 | 1053 | 2006 | 2013)
}

/// One database session on a target.
#[derive(Debug)]
pub enum Session {
    Postgres(PgConnection),
    Mysql { conn: MySqlConnection, mariadb: bool },
}

impl Session {
    async fn open(settings: &ConnectSettings) -> Result<Self, sqlx::Error> {
        match settings.engine {
            Engine::Postgres => {
                // Never the worker's own `PGPASSWORD` or `~/.pgpass`: a target gets exactly the password the
                // hub resolved for it (none means an empty one), whatever host it names.
                let password = settings.password.as_ref().map_or("", |p| p.expose_secret());
                let options = PgConnectOptions::new_without_pgpass()
                    .password(password)
                    .host(&settings.host)
                    .port(settings.port)
                    .database(&settings.database)
                    .username(&settings.username)
                    .ssl_mode(pg_ssl(settings.tls_mode))
                    .application_name("migrate-hub")
                    // Server-side keepalives, so a vanished worker's session (and its advisory lock)
                    // is noticed and released within a minute or two.
                    .options([
                        ("tcp_keepalives_idle", "30"),
                        ("tcp_keepalives_interval", "10"),
                        ("tcp_keepalives_count", "3"),
                    ])
                    .statement_cache_capacity(0)
                    .disable_statement_logging();
                Ok(Session::Postgres(options.connect().await?))
            }
            Engine::Mysql => {
                let mut options = MySqlConnectOptions::new()
                    .host(&settings.host)
                    .port(settings.port)
                    .database(&settings.database)
                    .username(&settings.username)
                    .ssl_mode(mysql_ssl(settings.tls_mode))
                    .pipes_as_concat(false)
                    .no_engine_substitution(false)
                    .timezone(None)
                    // The session's own statements (history rows, progress, reads) are prepared once and
                    // executed by one round trip each: without a cache every one was prepared, executed and
                    // closed, two round trips, several per migration. The migrations' SQL goes as text and
                    // is never prepared; MariaDB and MySQL prepare a statement again by themselves when a
                    // table it reads changed.
                    .statement_cache_capacity(16)
                    .disable_statement_logging();
                if let Some(password) = &settings.password {
                    options = options.password(password.expose_secret());
                }
                let mut conn = options.connect().await?;
                if let Some(mode) = &settings.mysql_sql_mode {
                    sqlx::query("SET SESSION sql_mode = ?").bind(mode).execute(&mut conn).await?;
                }
                let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut conn).await?;
                Ok(Session::Mysql { conn, mariadb: version.contains("MariaDB") })
            }
        }
    }

    fn engine(&self) -> Engine {
        match self {
            Session::Postgres(_) => Engine::Postgres,
            Session::Mysql { .. } => Engine::Mysql,
        }
    }

    async fn execute(&mut self, sql: &str) -> Result<u64, TargetError> {
        let result = match self {
            Session::Postgres(conn) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(|r| r.rows_affected()),
            Session::Mysql { conn, .. } => {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(|r| r.rows_affected())
            }
        };
        result.map_err(TargetError::from_sqlx)
    }

    /// Tries the session-level lock `name` once, after `before` (statements sent in the same message, e.g.
    /// the session's limits): one round trip, simple protocol, nothing prepared. The lock's key (a number)
    /// or name (a hex literal) is the only value in the text.
    async fn try_lock(&mut self, before: &str, name: &str) -> Result<bool, TargetError> {
        let got = match self {
            Session::Postgres(conn) => {
                // Taken twice (it is re-entrant), so that checking it is held never lets go of it: see
                // `pg_holds_lock`.
                let key = pg_lock_key(name);
                let sql = format!(
                    "{before}SELECT (CASE WHEN pg_catalog.pg_try_advisory_lock({key}) \
                     THEN pg_catalog.pg_try_advisory_lock({key}) ELSE false END)::int::int8"
                );
                last_int(sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await)
            }
            Session::Mysql { conn, .. } => {
                let sql = format!("{before}SELECT GET_LOCK({}, 0)", mysql_lock_literal(name));
                last_int(sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await)
            }
        };
        Ok(got? == Some(1))
    }

    /// Whether this session holds the session-level lock `name`: simple protocol, one round trip.
    async fn holds_lock(&mut self, name: &str) -> Result<bool, TargetError> {
        let held = match self {
            Session::Postgres(conn) => {
                let sql = format!("SELECT ({})::int::int8", pg_holds_lock(name));
                last_int(sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await)?
            }
            Session::Mysql { conn, .. } => {
                let sql = format!("SELECT IS_USED_LOCK({}) = CONNECTION_ID()", mysql_lock_literal(name));
                last_int(sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await)?
            }
        };
        Ok(held == Some(1))
    }

    async fn unlock(&mut self, name: &str) -> Result<(), TargetError> {
        let sql = match self {
            Session::Postgres(_) => pg_unlock_sql(name),
            Session::Mysql { .. } => format!("SELECT RELEASE_LOCK({})", mysql_lock_literal(name)),
        };
        self.execute(&sql).await.map(|_| ())
    }

    async fn close(self) {
        let _ = match self {
            Session::Postgres(conn) => conn.close().await,
            Session::Mysql { conn, .. } => conn.close().await,
        };
    }
}

/// A connection to a target as a migration runner needs it: the session that runs the migrations' SQL and,
/// when opened with [`connect`](Self::connect), the target's lock.
///
/// Where the lock lives is a [`LockSession`]: in the work session itself (one session per target, as
/// sqlx, Flyway and goose do) when nothing the release runs can release it, otherwise in a second session
/// that only holds the lock, so that `pg_advisory_unlock_all()`, `DISCARD ALL` or `RELEASE_ALL_LOCKS()` in a
/// migration cannot drop it while the release goes on and let another worker apply at the same time.
/// [`check_lock`](Self::check_lock) confirms a lock session is alive; [`confirm_lock`](Self::confirm_lock)
/// asks the server whether the lock is still held, before a migration is recorded as applied.
#[derive(Debug)]
pub struct TargetConnection {
    session: Session,
    lock: Lock,
    /// A database this session must not be on, checked in the work session's next message (see
    /// [`forbid`](Self::forbid)).
    forbidden: Option<DatabaseId>,
    /// The lock the last batch released at its end (see [`execute_batch`](Self::execute_batch)).
    unlocked: Option<String>,
}

/// A Postgres database as the server identifies it: the server's `system_identifier` (from
/// `pg_control_system()`) and the database's OID, which a rename does not change and no host name, port or
/// proxy can disguise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseId {
    pub system_identifier: i64,
    pub database_oid: i64,
}

/// Where a [`TargetConnection`] holds the target's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSession {
    /// In the session that runs the migrations.
    Work,
    /// In a session of its own, in which no migration SQL runs.
    Own,
}

impl LockSession {
    /// [`Own`](Self::Own) when a statement of the release may release session-level locks
    /// ([`domain::split::may_release_session_locks`]), with what it names; otherwise [`Work`](Self::Work).
    pub fn for_statements<'a>(statements: impl IntoIterator<Item = &'a str>) -> (Self, Option<&'static str>) {
        match statements.into_iter().find_map(domain::split::may_release_session_locks) {
            Some(what) => (LockSession::Own, Some(what)),
            None => (LockSession::Work, None),
        }
    }
}

#[derive(Debug)]
enum Lock {
    /// Opened for reading only ([`TargetConnection::connect_single`]).
    None,
    /// Taken in the work session.
    Work,
    Own(Guard),
}

#[derive(Debug)]
struct Guard {
    session: Session,
    /// When the lock session last answered (or took the lock).
    confirmed: Option<std::time::Instant>,
}

/// How long an answer from the lock session stands in for a check (see [`TargetConnection::check_lock`]).
const GUARD_CONFIRMATION: Duration = Duration::from_millis(250);

impl TargetConnection {
    /// Opens the sessions a migration runner needs: the work session and, with [`LockSession::Own`], the
    /// lock session (both at the same time). Nothing about the password reaches the error.
    #[tracing::instrument(skip_all, fields(engine = %settings.engine, host = %settings.host, database = %settings.database))]
    pub async fn connect(settings: &ConnectSettings, lock: LockSession) -> Result<Self, TargetError> {
        match lock {
            LockSession::Work => {
                let session = timed(settings, Session::open(settings)).await?;
                Ok(TargetConnection { session, lock: Lock::Work, forbidden: None, unlocked: None })
            }
            LockSession::Own => {
                let both = async { tokio::try_join!(Session::open(settings), Session::open(settings)) };
                let (session, guard) = timed(settings, both).await?;
                Ok(TargetConnection {
                    session,
                    lock: Lock::Own(Guard { session: guard, confirmed: None }),
                    forbidden: None,
                    unlocked: None,
                })
            }
        }
    }

    /// Opens only a work session: for reading (status, probes), never for applying (it cannot take the lock).
    #[tracing::instrument(skip_all, fields(engine = %settings.engine, host = %settings.host, database = %settings.database))]
    pub async fn connect_single(settings: &ConnectSettings) -> Result<Self, TargetError> {
        let session = timed(settings, Session::open(settings)).await?;
        Ok(TargetConnection { session, lock: Lock::None, forbidden: None, unlocked: None })
    }

    /// Where this connection holds its lock; `None` for a read-only connection.
    pub fn lock_session(&self) -> Option<LockSession> {
        match self.lock {
            Lock::None => None,
            Lock::Work => Some(LockSession::Work),
            Lock::Own(_) => Some(LockSession::Own),
        }
    }

    pub fn engine(&self) -> Engine {
        self.session.engine()
    }

    /// The work session, for reading what the helpers here do not cover.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Whether the server is MariaDB (MySQL sessions only).
    pub fn is_mariadb(&self) -> bool {
        matches!(self.session, Session::Mysql { mariadb: true, .. })
    }

    /// Applies the policy's lock and statement timeouts to this session.
    pub async fn set_limits(&mut self, limits: SessionLimits) -> Result<(), TargetError> {
        let sql = self.limits_sql(limits);
        self.execute(&sql).await.map(|_| ())
    }

    fn limits_sql(&self, limits: SessionLimits) -> String {
        let lock_ms = limits.lock_timeout.as_millis().max(1);
        let statement_ms = limits.statement_timeout.map_or(0, |d| d.as_millis().max(1));
        match self.session {
            Session::Postgres(_) => {
                format!("SET lock_timeout = {lock_ms}; SET statement_timeout = {statement_ms};\n")
            }
            // lock_wait_timeout is in whole seconds (at least 1).
            Session::Mysql { mariadb: true, .. } => format!(
                "SET SESSION lock_wait_timeout = {}; SET SESSION max_statement_time = {};\n",
                lock_ms.div_ceil(1000),
                statement_ms as f64 / 1000.0
            ),
            Session::Mysql { mariadb: false, .. } => format!(
                "SET SESSION lock_wait_timeout = {}; SET SESSION max_execution_time = {statement_ms};\n",
                lock_ms.div_ceil(1000)
            ),
        }
    }

    /// Runs SQL as the server receives it from a client (simple protocol, no preparation); returns the
    /// number of rows affected.
    pub async fn execute(&mut self, sql: &str) -> Result<u64, TargetError> {
        self.session.execute(sql).await
    }

    /// The session that holds (or takes) the lock.
    fn lock_holder(&mut self) -> Result<&mut Session, TargetError> {
        match &mut self.lock {
            Lock::None => Err(TargetError::NoLockSession),
            Lock::Work => Ok(&mut self.session),
            Lock::Own(guard) => Ok(&mut guard.session),
        }
    }

    /// Tries to take the session-level lock `name` once; `true` if it now holds it.
    ///
    /// Session-level, never transaction-level: a transaction-level lock would be held by an open
    /// transaction that `CREATE INDEX CONCURRENTLY` then waits on forever (Flyway's deadlock). The lock goes
    /// away with the session if the worker dies.
    pub async fn try_lock(&mut self, name: &str) -> Result<bool, TargetError> {
        self.try_lock_after("", name).await
    }

    async fn try_lock_after(&mut self, before: &str, name: &str) -> Result<bool, TargetError> {
        let got = self.lock_holder()?.try_lock(before, name).await?;
        if got && let Lock::Own(guard) = &mut self.lock {
            guard.confirmed = Some(std::time::Instant::now());
        }
        Ok(got)
    }

    /// Takes the lock, retrying until `wait` has passed; `false` if another session still holds it.
    pub async fn lock(&mut self, name: &str, wait: Duration) -> Result<bool, TargetError> {
        self.lock_waiting("", name, wait).await
    }

    /// Sets the work session's `limits` and takes the lock as [`lock`](Self::lock) does. With the lock in
    /// the work session, the limits travel with the first attempt: one round trip for both. A database
    /// [`forbid`](Self::forbid)den travels in front of them, so nothing else runs if the session is on it
    /// ([`TargetError::Forbidden`]).
    pub async fn limit_and_lock(
        &mut self,
        limits: SessionLimits,
        name: &str,
        wait: Duration,
    ) -> Result<bool, TargetError> {
        let Some(forbidden) = self.forbidden.take() else {
            return self.limit_and_lock_after("", limits, name, wait).await;
        };
        match self.limit_and_lock_after(&pg_identity_check(forbidden), limits, name, wait).await {
            Err(e) if is_forbidden(&e) => Err(TargetError::Forbidden),
            Err(_) => self.check_alone_then_lock(forbidden, limits, name, wait).await,
            done => done,
        }
    }

    /// After a message that began with the identity check failed for another reason, perhaps the check
    /// itself (which runs first, and after whose failure nothing ran): it is asked on its own, where a server
    /// that cannot tell its identity is taken as another one, and the limits and the lock are sent again.
    async fn check_alone_then_lock(
        &mut self,
        forbidden: DatabaseId,
        limits: SessionLimits,
        name: &str,
        wait: Duration,
    ) -> Result<bool, TargetError> {
        if self.identity().await? == Some(forbidden) {
            return Err(TargetError::Forbidden);
        }
        self.limit_and_lock_after("", limits, name, wait).await
    }

    /// [`limit_and_lock`](Self::limit_and_lock), and then `then` (statements that need the lock, e.g. the
    /// history's creation and read) in the same message, where the lock is in the work session on Postgres:
    /// the statement that takes the lock raises when another session holds it, so the server skips `then`
    /// unless the lock is this session's. Returns whether the lock was taken and, when `then` ran with it,
    /// the rows of `then`. `None` rows: `then` did not run (another engine, a lock session of its own, the
    /// lock was busy and waited for, or the message failed after the lock, when the limits are set again
    /// and `then`'s error is left for the caller to meet in its usual place) and is the caller's to send.
    pub async fn limit_lock_and(
        &mut self,
        limits: SessionLimits,
        name: &str,
        wait: Duration,
        then: &str,
    ) -> Result<(bool, Option<Vec<sqlx::postgres::PgRow>>), TargetError> {
        if !self.checks_lock_inline() {
            return Ok((self.limit_and_lock(limits, name, wait).await?, None));
        }
        let forbidden = self.forbidden.take();
        let check = forbidden.map(pg_identity_check).unwrap_or_default();
        let limits_sql = self.limits_sql(limits);
        let sql = format!("{check}{limits_sql}{};\n{then}", pg_lock_or_raise(name));
        let Session::Postgres(conn) = &mut self.session else { unreachable!("checks_lock_inline is Postgres") };
        let mut locked = false;
        let mut rows = Vec::new();
        let failure = {
            let mut results = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(conn);
            loop {
                match futures_util::TryStreamExt::try_next(&mut results).await {
                    Ok(Some(sqlx::Either::Left(_))) => {}
                    Ok(Some(sqlx::Either::Right(row))) if locked => rows.push(row),
                    Ok(Some(sqlx::Either::Right(row))) => {
                        if row.columns().first().is_some_and(|c| sqlx::Column::name(c) == LOCKED_COLUMN) {
                            locked = row.try_get::<i64, _>(0).map_err(TargetError::from_sqlx)? == 1;
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(TargetError::from_sqlx(e)),
                }
            }
        };
        match failure {
            None if locked => Ok((true, Some(rows))),
            // Cannot happen (the lock is re-entrant): taken as not taken.
            None => Ok((false, None)),
            Some(e) if is_forbidden(&e) => Err(TargetError::Forbidden),
            // The lock is held, and the message's transaction (with the limits) rolled back.
            Some(_) if locked => {
                self.execute(&limits_sql).await?;
                Ok((true, None))
            }
            // Nothing is held and nothing stayed set: wait for the lock as `limit_and_lock` does.
            Some(e) if lock_busy(&e) => Ok((self.limit_and_lock_after("", limits, name, wait).await?, None)),
            Some(e) => match forbidden {
                Some(forbidden) => Ok((self.check_alone_then_lock(forbidden, limits, name, wait).await?, None)),
                None => Err(e),
            },
        }
    }

    async fn limit_and_lock_after(
        &mut self,
        first: &str,
        limits: SessionLimits,
        name: &str,
        wait: Duration,
    ) -> Result<bool, TargetError> {
        let before = format!("{first}{}", self.limits_sql(limits));
        if matches!(self.lock, Lock::Work) {
            self.lock_waiting(&before, name, wait).await
        } else {
            self.execute(&before).await?;
            self.lock_waiting("", name, wait).await
        }
    }

    /// Refuses to apply anything in this session if it is on `database` (the hub's own): the check travels
    /// in the next [`limit_and_lock`](Self::limit_and_lock)'s message, ahead of everything, and costs no
    /// round trip of its own. Postgres only (the hub's database is always Postgres).
    pub fn forbid(&mut self, database: DatabaseId) {
        if self.engine() == Engine::Postgres {
            self.forbidden = Some(database);
        }
    }

    /// The server and database this session is on (Postgres; `None` on MySQL, or when the server does not
    /// tell: a server without `pg_control_system()`, or a role denied it, which is logged).
    pub async fn identity(&mut self) -> Result<Option<DatabaseId>, TargetError> {
        let Session::Postgres(session) = &mut self.session else { return Ok(None) };
        // Simple protocol: one round trip, nothing prepared.
        let read = sqlx::raw_sql(IDENTITY_SQL)
            .fetch_one(session)
            .await
            .and_then(|row| Ok(DatabaseId { system_identifier: row.try_get(0)?, database_oid: row.try_get(1)? }));
        match read.map_err(TargetError::from_sqlx) {
            Ok(id) => Ok(Some(id)),
            Err(e @ TargetError::Statement { .. }) => {
                tracing::warn!(error = %e, "the target does not report its server identity; taken as another server");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `before` is sent with the first attempt only.
    async fn lock_waiting(&mut self, before: &str, name: &str, wait: Duration) -> Result<bool, TargetError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(50);
        if self.try_lock_after(before, name).await? {
            return Ok(true);
        }
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
            if self.try_lock(name).await? {
                return Ok(true);
            }
        }
    }

    /// Confirms a lock session of its own is alive (so the lock is still held): asks it at most every
    /// 250 ms, and always when `now` is set. An error means the lock is gone and nothing more may run.
    /// With the lock in the work session there is nothing to ask: if that session is gone, so is the next
    /// statement.
    pub async fn check_lock(&mut self, now: bool) -> Result<(), TargetError> {
        let guard = match &mut self.lock {
            Lock::None => return Err(TargetError::NoLockSession),
            Lock::Work => return Ok(()),
            Lock::Own(guard) => guard,
        };
        if !now && guard.confirmed.is_some_and(|at| at.elapsed() < GUARD_CONFIRMATION) {
            return Ok(());
        }
        match guard.session.execute("SELECT 1").await {
            Ok(_) => {
                guard.confirmed = Some(std::time::Instant::now());
                Ok(())
            }
            Err(e) => {
                guard.confirmed = None;
                Err(TargetError::LockLost(e.to_string()))
            }
        }
    }

    /// Before a migration is recorded as applied: with the lock in the work session, asks the server that
    /// this session still holds `name` (a statement the textual check missed, e.g. a function that calls
    /// `pg_advisory_unlock_all()`, is caught here and the migration is not recorded); with a lock session
    /// of its own, [`check_lock`](Self::check_lock).
    pub async fn confirm_lock(&mut self, name: &str) -> Result<(), TargetError> {
        match &self.lock {
            Lock::None => Err(TargetError::NoLockSession),
            Lock::Own(_) => self.check_lock(false).await,
            Lock::Work => match self.session.holds_lock(name).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(lock_released()),
                Err(e) => Err(TargetError::LockLost(e.to_string())),
            },
        }
    }

    /// Runs each part's statements after `prefix` (e.g. `BEGIN;`) and then its `record`, the history change
    /// that ends the migration with its `COMMIT`, only while the lock `name` is held: on Postgres as one
    /// message, each statement followed by a mark that reads the server's clock, so the statements cost one
    /// round trip together and still report their own time (server-side), rows and, on failure, which one
    /// failed. The server skips whatever follows a failure, so the failing part does not commit (the caller
    /// rolls back) and no later part runs; a part committed once the mark after its `COMMIT` answered.
    ///
    /// With the lock in a session of its own, the record follows in a second message after the lock session
    /// answered, so such a batch takes one part only. Returns, per part, each statement's time and the rows
    /// it affected, and the time of its commit.
    ///
    /// `then_unlock`: nothing more runs under the lock after this batch, so with the lock in the work
    /// session its release travels at the message's end (it runs only if every part committed), and
    /// [`unlock`](Self::unlock) then has nothing left to send: one round trip fewer.
    pub async fn execute_batch(
        &mut self,
        prefix: &str,
        parts: &[BatchPart<'_>],
        name: &str,
        then_unlock: bool,
    ) -> Result<Vec<PartRan>, BatchFailed> {
        let inline = self.checks_lock_inline();
        let refuse = |message: &str| {
            let message = message.to_owned();
            let failure = Inline::Statement(TargetError::Statement { code: None, message, timeout: false });
            BatchFailed { committed: Vec::new(), ran: Vec::new(), failure }
        };
        if !inline && parts.len() > 1 {
            return Err(refuse("a batch of several migrations needs the lock in the work session"));
        }
        let Session::Postgres(conn) = &mut self.session else {
            // Only a Postgres transaction is atomic; other sessions run statement by statement (`stepwise`).
            return Err(refuse("a batch is for a Postgres session"));
        };
        let size: usize = parts.iter().flat_map(|p| p.statements).map(|s| s.len() + 96).sum::<usize>();
        let mut sql = String::with_capacity(size + 512 * parts.len());
        for part in parts {
            sql.push_str(prefix);
            sql.push_str(&mark(Mark::Begin));
            for statement in part.statements {
                // A line comment at the statement's end must not swallow what follows: the separator starts a line.
                sql.push_str(statement);
                sql.push_str("\n;\n");
                sql.push_str(&mark(Mark::Statement));
            }
            if inline {
                sql.push_str(&pg_lock_check(name));
                sql.push_str(";\n");
                sql.push_str(part.record);
                sql.push_str(";\n");
                sql.push_str(&mark(Mark::Committed));
            }
        }
        let unlocking = inline && then_unlock;
        if unlocking {
            sql.push_str(&pg_unlock_sql(name));
        }
        let mut reader = BatchReader::default();
        let failure = {
            let mut results = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(conn);
            loop {
                match futures_util::TryStreamExt::try_next(&mut results).await {
                    Ok(Some(sqlx::Either::Left(done))) => reader.completed(done.rows_affected()),
                    Ok(Some(sqlx::Either::Right(row))) => reader.row(&row),
                    Ok(None) => break None,
                    Err(e) => break Some(TargetError::from_sqlx(e)),
                }
            }
        };
        let (mut committed, current) = reader.finish();
        let (ran, checked) = current.map(|part| (part.ran(), part.checked)).unwrap_or_default();
        // Inline, each part that committed answered its last mark; otherwise the one part is recorded below.
        let answered = if inline { parts.len() } else { parts.len().saturating_sub(1) };
        // The part the answers stopped in (the first if none began).
        let statements = parts.get(committed.len()).map_or(0, |p| p.statements.len());
        let failure = match failure {
            Some(e) if lock_gone(&e) => Some(Inline::Record(lock_released())),
            Some(e) if checked || ran.len() == statements => Some(Inline::Record(e)),
            Some(e) => Some(Inline::Statement(e)),
            None if committed.len() != answered => {
                Some(Inline::Record(TargetError::LockLost("the batch ended before its last part answered".into())))
            }
            None => None,
        };
        if let Some(failure) = failure {
            return Err(BatchFailed { committed, ran, failure });
        }
        if unlocking {
            self.unlocked = Some(name.to_owned());
        }
        if !inline && let Some(part) = parts.first() {
            // The lock lives in a session of its own: it answered, then the record and COMMIT.
            let recorded = async {
                self.confirm_lock(name).await?;
                self.execute(part.record).await
            };
            if let Err(e) = recorded.await {
                return Err(BatchFailed { committed, ran, failure: Inline::Record(e) });
            }
            committed.push(PartRan { statements: ran, commit: None });
        }
        Ok(committed)
    }

    /// On MySQL with the lock in the work session, the condition that this session still holds `name`, for
    /// a history write to carry in its `WHERE` (so confirming the lock costs no round trip of its own);
    /// `None` otherwise (Postgres checks it in the batch's message; a lock session of its own is asked there).
    pub fn mysql_lock_condition(&self, name: &str) -> Option<String> {
        (matches!(self.lock, Lock::Work) && matches!(self.session, Session::Mysql { .. }))
            .then(|| format!("IS_USED_LOCK({}) = CONNECTION_ID()", mysql_lock_literal(name)))
    }

    /// Whether the lock check can travel in the work session's messages (the lock is there, on Postgres).
    pub fn checks_lock_inline(&self) -> bool {
        matches!(self.lock, Lock::Work) && matches!(self.session, Session::Postgres(_))
    }

    /// Who holds the session-level lock `name`, as far as the server tells this session (others' details
    /// may be hidden without `pg_read_all_stats` or `PROCESS`): its process, application, user, client and
    /// how long it has been in its state. Never the SQL it runs, which may carry data. `None` when nobody
    /// holds it any more or the server would not say.
    pub async fn who_holds_lock(&mut self, name: &str) -> Option<String> {
        match &mut self.session {
            Session::Postgres(conn) => {
                // A 64-bit advisory key shows in pg_locks as classid (high half), objid (low half), objsubid 1.
                let key = pg_lock_key(name) as u64;
                let (high, low) = (key >> 32, key & 0xffff_ffff);
                let sql = format!(
                    "SELECT 'server process ' || a.pid \
                     || coalesce(' of ' || nullif(a.application_name, ''), '') \
                     || coalesce(', user ' || a.usename, '') \
                     || coalesce(', from ' || host(a.client_addr), ', local') \
                     || coalesce(', ' || a.state || ' for ' \
                        || round(extract(epoch FROM now() - a.state_change))::bigint || ' s', '') \
                     FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {high} AND l.objid = {low} \
                       AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_catalog.pg_database \
                                                            WHERE datname = current_database()) \
                     LIMIT 1"
                );
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .fetch_optional(conn)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.try_get(0).ok())
            }
            Session::Mysql { conn, .. } => {
                let sql = format!(
                    "SELECT CONCAT('server connection ', p.ID, ', user ', p.USER, ', from ', p.HOST, ', ', \
                     p.COMMAND, ' for ', p.TIME, ' s') FROM information_schema.PROCESSLIST p \
                     WHERE p.ID = IS_USED_LOCK({})",
                    mysql_lock_literal(name)
                );
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .fetch_optional(conn)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.try_get(0).ok())
            }
        }
    }

    /// Releases the lock taken with [`lock`](Self::lock).
    pub async fn unlock(&mut self, name: &str) -> Result<(), TargetError> {
        if self.unlocked.take().is_some_and(|released| released == name) {
            // The last batch's message released it (`execute_batch`'s `then_unlock`).
            return Ok(());
        }
        self.lock_holder()?.unlock(name).await
    }

    /// The server's version string (`SELECT version()`), for a connection check.
    pub async fn server_version(&mut self) -> Result<String, TargetError> {
        let result = match &mut self.session {
            Session::Postgres(conn) => sqlx::query_scalar::<_, String>("SELECT version()").fetch_one(conn).await,
            Session::Mysql { conn, .. } => sqlx::query_scalar::<_, String>("SELECT VERSION()").fetch_one(conn).await,
        };
        result.map_err(TargetError::from_sqlx)
    }

    pub async fn close(self) {
        if let Lock::Own(guard) = self.lock {
            tokio::join!(self.session.close(), guard.session.close());
        } else {
            self.session.close().await;
        }
    }
}

async fn timed<T>(
    settings: &ConnectSettings,
    connect: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, TargetError> {
    let limit = settings.connect_timeout;
    let address = || {
        // An IPv6 literal in brackets, as in a URL.
        if settings.host.contains(':') {
            format!("[{}]:{}", settings.host, settings.port)
        } else {
            format!("{}:{}", settings.host, settings.port)
        }
    };
    match tokio::time::timeout(limit, connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(TargetError::Connect { address: address(), source }),
        Err(_) => Err(TargetError::ConnectTimeout { address: address(), limit }),
    }
}

/// A 64-bit advisory lock key in migrate-hub's own namespace, so it cannot collide with the keys of the
/// application or of other tools by accident.
pub fn pg_lock_key(name: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("migrate-hub:lock:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(bytes)
}

/// The column [`pg_lock_or_raise`] answers in.
const LOCKED_COLUMN: &str = "migrate_hub_locked";
/// In the error [`pg_lock_or_raise`] raises when another session holds the lock.
const LOCK_BUSY: &str = "migrate-hub: the target lock is held by another session";

/// A statement that takes the advisory lock `name` twice as [`Session::try_lock`] does and answers 1, or
/// fails when another session holds it (a cast of a text naming [`LOCK_BUSY`], not constant, so the planner
/// cannot raise it early), so that the server skips whatever follows it in the same message and rolls back
/// what came before it in the message's transaction.
fn pg_lock_or_raise(name: &str) -> String {
    let key = pg_lock_key(name);
    format!(
        "SELECT (CASE WHEN pg_catalog.pg_try_advisory_lock({key}) THEN pg_catalog.pg_try_advisory_lock({key})::int \
         ELSE ('{LOCK_BUSY} (' || pg_catalog.pg_backend_pid() || ')')::int END)::int8 AS {LOCKED_COLUMN}"
    )
}

fn lock_busy(e: &TargetError) -> bool {
    matches!(e, TargetError::Statement { message, .. } if message.contains(LOCK_BUSY))
}

/// The column [`pg_lock_check`] answers in.
const LOCK_CHECK_COLUMN: &str = "migrate_hub_lock_held";
/// In the error [`pg_lock_check`] raises when this session no longer holds the lock.
const LOCK_GONE: &str = "migrate-hub: the target lock is no longer held by this session";

/// Whether this session holds the advisory lock `name`, as an SQL expression, without reading `pg_locks`
/// (which copies every lock of the server under all its lock-partition locks: 0.6 ms a call, measured at
/// 16 concurrent DDL transactions). The lock is taken twice ([`Session::try_lock`]): releasing one hold
/// succeeds only while the session has one, and taking it again restores the count, so the lock is never
/// let go of. A migration that called `pg_advisory_unlock_all()` leaves no hold: the release fails.
fn pg_holds_lock(name: &str) -> String {
    let key = pg_lock_key(name);
    format!("CASE WHEN pg_catalog.pg_advisory_unlock({key}) THEN pg_catalog.pg_try_advisory_lock({key}) ELSE false END")
}

/// A statement that answers 1 while this session holds the advisory lock `name` ([`pg_holds_lock`]) and
/// fails otherwise (a cast of a text naming [`LOCK_GONE`], not constant, so the planner cannot raise it
/// early), so that the server skips whatever follows it in the same message.
fn pg_lock_check(name: &str) -> String {
    format!(
        "SELECT CASE WHEN {} THEN 1 ELSE ('{LOCK_GONE} (' || pg_catalog.pg_backend_pid() || ')')::int END \
         AS {LOCK_CHECK_COLUMN}",
        pg_holds_lock(name)
    )
}

/// A session's server identity and database OID (see [`DatabaseId`]), here from the session's own activity
/// row: 0.75 ms of the server's time on a fresh backend, where looking the database up in `pg_database` by
/// `current_database()` took 1.0 ms (its plan loads the catalog's statistics and indexes). Every backend
/// has its activity row from its start, whatever `track_activities` says, and a session always sees its
/// own. `sql/targets/database_identity.sql` reads the same for the tool database.
const IDENTITY_SQL: &str = "SELECT s.system_identifier, a.datid::bigint \
     FROM pg_catalog.pg_control_system() AS s, pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) AS a";

/// In the error [`pg_identity_check`] raises when the session is on the forbidden database.
const FORBIDDEN: &str = "migrate-hub: this session is on a database no migration may run on";

/// A statement that answers 1 unless this session is on `database`, and fails then (a cast of a text
/// naming [`FORBIDDEN`], not constant, so the planner cannot raise it early), so that the server skips
/// whatever follows it in the same message. Each side of the test is a subquery the executor runs only
/// when it needs its value: on another server (the tool database on a server of its own, as deployments
/// keep it) the activity row is never read (`EXPLAIN ANALYZE`: "never executed"; 1.25 against 1.47 ms and
/// 1.16 against 1.36 ms on a fresh backend, medians of 21 through `psql`).
fn pg_identity_check(database: DatabaseId) -> String {
    let DatabaseId { system_identifier, database_oid } = database;
    format!(
        "SELECT CASE WHEN (SELECT s.system_identifier FROM pg_catalog.pg_control_system() AS s) = {system_identifier} \
         AND (SELECT a.datid::bigint FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) AS a) \
         = {database_oid} \
         THEN ('{FORBIDDEN} (' || pg_catalog.pg_backend_pid() || ')')::int ELSE 1 END AS migrate_hub_allowed;\n"
    )
}

fn is_forbidden(e: &TargetError) -> bool {
    matches!(e, TargetError::Statement { message, .. } if message.contains(FORBIDDEN))
}

/// Releases both holds of the advisory lock `name` (see [`Session::try_lock`]); a migration that released
/// one makes the second a warning.
fn pg_unlock_sql(name: &str) -> String {
    let key = pg_lock_key(name);
    format!("SELECT pg_catalog.pg_advisory_unlock({key}), pg_catalog.pg_advisory_unlock({key});\n")
}

fn lock_gone(e: &TargetError) -> bool {
    matches!(e, TargetError::Statement { message, .. } if message.contains(LOCK_GONE))
}

fn lock_released() -> TargetError {
    TargetError::LockLost(
        "a statement of the migration released it (the lock is no longer held by this session)".into(),
    )
}

/// What a batch's mark tells (see [`TargetConnection::execute_batch`]): each answers the server's clock
/// in a column named for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// A part (migration) begins, after its `BEGIN`.
    Begin,
    /// The statement before it is done.
    Statement,
    /// The part's record and `COMMIT` are done.
    Committed,
}

impl Mark {
    const ALL: [Mark; 3] = [Mark::Begin, Mark::Statement, Mark::Committed];

    fn column(self) -> &'static str {
        match self {
            Mark::Begin => "migrate_hub_begin",
            Mark::Statement => "migrate_hub_mark",
            Mark::Committed => "migrate_hub_committed",
        }
    }
}

/// A mark's statement: the clock alone, the cheapest statement that tells time (10 µs of server time
/// against 24 µs for an integer computed from it with `extract`, measured over 1,000 in one message; a
/// release of River's 7 migrations has 78 marks per target).
fn mark(mark: Mark) -> String {
    format!("SELECT pg_catalog.clock_timestamp() AS {};\n", mark.column())
}

/// A mark's clock in microseconds since 1970-01-01 UTC, from the text the simple protocol answers in: ISO
/// (`2026-12-06 00:40:02.123456+00`, or with `+05:30`, the default `DateStyle`). `None` for any other
/// style a migration may have set: that statement's time is then unknown (zero) and nothing else changes,
/// since marks are told apart by their column, not by their value.
fn mark_clock(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once(' ')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (time, zone) = rest.split_at(rest.find(['+', '-'])?);
    let mut time = time.splitn(3, ':');
    let (hour, minute) = (time.next()?.parse::<i64>().ok()?, time.next()?.parse::<i64>().ok()?);
    let (second, fraction) = time.next().map(|s| s.split_once('.').unwrap_or((s, "")))?;
    let second: i64 = second.parse().ok()?;
    let fraction = fraction.get(..fraction.len().min(6))?;
    let micros = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10_i64.pow(6 - u32::try_from(fraction.len()).ok()?)
    };
    // The zone: ±HH, ±HH:MM or ±HH:MM:SS.
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let mut offset = 0;
    for (part, unit) in zone.get(1..)?.split(':').zip([3_600, 60, 1]) {
        offset += part.parse::<i64>().ok()? * unit;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - sign * offset;
    Some(seconds * 1_000_000 + micros)
}

/// Reads a batch's results: per part, a begin mark, then per statement its completions and a mark (a
/// statement may be several commands, e.g. a goose block); after the lock check, the record's
/// completions, then the committed mark, which proves the part committed.
#[derive(Debug, Default)]
struct BatchReader {
    /// The parts that committed.
    committed: Vec<PartRan>,
    current: Option<PartReader>,
}

#[derive(Debug, Default)]
struct PartReader {
    /// The clock of each mark seen (the begin mark first), in order; `None` when unreadable.
    marks: Vec<Option<i64>>,
    /// The rows of the statement after each mark.
    rows: Vec<u64>,
    /// The next completion is a mark's own.
    mark_pending: bool,
    checked: bool,
}

impl BatchReader {
    fn row(&mut self, row: &sqlx::postgres::PgRow) {
        use sqlx::Column;
        let Some(column) = row.columns().first() else { return };
        let Some(kind) = Mark::ALL.into_iter().find(|m| m.column() == column.name()) else {
            if column.name() == LOCK_CHECK_COLUMN
                && let Some(part) = &mut self.current
            {
                part.checked = true;
            }
            return;
        };
        let at = row.try_get_raw(0).ok().and_then(|v| v.as_str().ok().and_then(mark_clock));
        match kind {
            Mark::Begin => {
                if let Some(done) = self.current.take() {
                    // Only without an inline record (one part, recorded after the batch).
                    self.committed.push(PartRan { statements: done.ran(), commit: None });
                }
                self.current = Some(PartReader { marks: vec![at], rows: vec![0], mark_pending: true, checked: false });
            }
            Mark::Statement => {
                let Some(part) = &mut self.current else { return };
                if part.checked {
                    return;
                }
                part.marks.push(at);
                part.rows.push(0);
                part.mark_pending = true;
            }
            Mark::Committed => {
                let Some(part) = self.current.take() else { return };
                let last = part.marks.last().copied().flatten();
                let commit = at.zip(last).map(|(end, from)| micros(end - from));
                self.committed.push(PartRan { statements: part.ran(), commit });
            }
        }
    }

    fn completed(&mut self, rows: u64) {
        let Some(part) = &mut self.current else { return };
        if part.checked || part.marks.is_empty() {
            return;
        }
        if std::mem::take(&mut part.mark_pending) {
            return;
        }
        if let Some(last) = part.rows.last_mut() {
            *last += rows;
        }
    }

    /// The committed parts, and the one the answers stopped in.
    fn finish(self) -> (Vec<PartRan>, Option<PartReader>) {
        (self.committed, self.current)
    }
}

fn micros(difference: i64) -> Duration {
    Duration::from_micros(u64::try_from(difference).unwrap_or(0))
}

impl PartReader {
    /// The statements done: one per mark after the first.
    fn ran(&self) -> Vec<Ran> {
        self.marks
            .windows(2)
            .zip(&self.rows)
            .map(|(pair, rows)| Ran {
                elapsed: pair[1].zip(pair[0]).map_or(Duration::ZERO, |(end, from)| micros(end - from)),
                rows: *rows,
            })
            .collect()
    }
}

/// The first column of the last row of a simple-protocol query, a `bigint` (`None` for SQL NULL or no row).
fn last_int<R: Row>(rows: Result<Vec<R>, sqlx::Error>) -> Result<Option<i64>, TargetError>
where
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let rows = rows.map_err(TargetError::from_sqlx)?;
    match rows.last() {
        Some(row) => row.try_get::<Option<i64>, _>(0).map_err(TargetError::from_sqlx),
        None => Ok(None),
    }
}

/// The MySQL lock name for `name` as a SQL literal that no `sql_mode` (e.g. `NO_BACKSLASH_ESCAPES`) reads
/// differently: hex, converted to the same text a bound parameter would be.
fn mysql_lock_literal(name: &str) -> String {
    let hex: String = mysql_lock_name(name).bytes().map(|b| format!("{b:02x}")).collect();
    format!("CONVERT(X'{hex}' USING utf8mb4)")
}

/// MySQL lock names are limited to 64 characters.
pub fn mysql_lock_name(name: &str) -> String {
    format!("migrate-hub:{name}").chars().take(64).collect()
}

fn pg_ssl(mode: TlsMode) -> PgSslMode {
    match mode {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyCa => PgSslMode::VerifyCa,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

fn mysql_ssl(mode: TlsMode) -> MySqlSslMode {
    match mode {
        TlsMode::Disable => MySqlSslMode::Disabled,
        TlsMode::Prefer => MySqlSslMode::Preferred,
        TlsMode::Require => MySqlSslMode::Required,
        TlsMode::VerifyCa => MySqlSslMode::VerifyCa,
        TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
    }
}

/// Connects with `settings`, runs a trivial query under a statement timeout of `timeout`, closes, and
/// returns the server's version: whether the hub could reach the target as a worker would.
pub async fn probe(settings: &ConnectSettings, timeout: Duration) -> Result<String, TargetError> {
    let mut conn = TargetConnection::connect_single(settings).await?;
    let checked = async {
        conn.set_limits(SessionLimits { lock_timeout: timeout, statement_timeout: Some(timeout) }).await?;
        conn.server_version().await
    };
    let version = match tokio::time::timeout(timeout + Duration::from_millis(500), checked).await {
        Ok(result) => result,
        Err(_) => Err(TargetError::Statement {
            code: None,
            message: format!("the target did not answer a trivial query within {timeout:?}"),
            timeout: true,
        }),
    };
    conn.close().await;
    version
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marks_iso_clock_is_read_in_microseconds_since_the_epoch_whatever_its_zone() {
        assert_eq!(mark_clock("1970-01-01 00:00:00+00"), Some(0));
        assert_eq!(mark_clock("1970-01-01 00:00:01.5+00"), Some(1_500_000));
        assert_eq!(mark_clock("2000-03-01 00:00:00.000001+00"), Some(951_868_800_000_001));
        let utc = mark_clock("2026-12-06 00:40:02.123456+00").unwrap();
        assert_eq!(mark_clock("2026-12-06 06:10:02.123456+05:30"), Some(utc));
        assert_eq!(mark_clock("2026-12-05 20:40:02.123456-04"), Some(utc));
        assert_eq!(mark_clock("2026-12-06 00:41:03.123456+00:01:01"), Some(utc));
        assert_eq!(mark_clock("2026-12-06 00:40:02.1234567+00"), Some(utc));
    }

    #[test]
    fn a_marks_clock_in_another_datestyle_is_unknown_not_wrong() {
        for text in [
            "06/12/2026 00:40:02.123456 UTC",
            "Sun Dec 06 00:40:02.123456 2026 UTC",
            "06.12.2026 00:40:02.123456 UTC",
            "2026-12-06T00:40:02+00",
            "0044-03-15 12:00:00+00 BC",
            "",
        ] {
            assert_eq!(mark_clock(text), None, "{text}");
        }
    }
}
