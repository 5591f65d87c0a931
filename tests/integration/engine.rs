//! The execution engine against real Postgres and MariaDB targets: SPEC §5's rules one by one.

use std::time::Duration;

use domain::checksum::Checksum;
use domain::enums::{Direction, Engine, TlsMode, TransactionMode};
use domain::values::{Identifier, VersionKey};
use executor::apply::{ApplyError, ApplyOptions, Migration, Observer, Outcome, Silent, apply, apply_release};
use executor::history::{self, HistoryStatus, HistoryTable};
use executor::target::{
    ConnectSettings, DatabaseId, LockSession, Session, SessionLimits, TargetConnection, TargetError,
};
use migrate_hub_tests::{MySqlDatabase, PgDatabase};
use secrecy::SecretString;

/// Connection settings from a test database URL (`scheme://user[:password]@host:port/database`).
fn settings(engine: Engine, url: &str) -> ConnectSettings {
    let rest = url.split_once("://").unwrap().1;
    let (credentials, location) = rest.rsplit_once('@').unwrap();
    let (username, password) = match credentials.split_once(':') {
        Some((user, password)) => (user.to_owned(), Some(SecretString::from(password.to_owned()))),
        None => (credentials.to_owned(), None),
    };
    let (address, database) = location.split_once('/').unwrap();
    let (host, port) = address.rsplit_once(':').unwrap();
    ConnectSettings {
        engine,
        host: host.to_owned(),
        port: port.parse().unwrap(),
        database: database.to_owned(),
        username,
        password,
        tls_mode: TlsMode::Prefer,
        connect_timeout: Duration::from_secs(5),
        mysql_sql_mode: None,
    }
}

async fn pg(db: &PgDatabase) -> TargetConnection {
    TargetConnection::connect(&settings(Engine::Postgres, &db.url), LockSession::Work).await.unwrap()
}

async fn my(db: &MySqlDatabase) -> TargetConnection {
    TargetConnection::connect(&settings(Engine::Mysql, &db.url), LockSession::Work).await.unwrap()
}

fn options() -> ApplyOptions {
    ApplyOptions {
        history: HistoryTable {
            schema: None,
            table: Identifier::parse("migrate_hub_history").unwrap(),
            project: "project-1".into(),
        },
        lock_name: "target-1".into(),
        lock_wait: Duration::from_secs(2),
        limits: SessionLimits {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(60)),
        },
        allow_out_of_order: false,
        earlier_versions: Vec::new(),
        run_id: Some("run-1".into()),
        worker: "test-worker".into(),
        lock_retries: executor::apply::LockRetries::NONE,
        stop_at: None,
    }
}

fn key(k: &str) -> VersionKey {
    VersionKey::parse(k).unwrap()
}

fn migration<'a>(version: &'a VersionKey, up_sql: &str, statements: &[&str], mode: TransactionMode) -> Migration<'a> {
    Migration {
        version,
        name: "test",
        up_checksum: Checksum::of(up_sql),
        direction: Direction::Up,
        statements: statements.iter().map(|s| (*s).to_owned()).collect(),
        transaction_mode: mode,
    }
}

async fn rows(conn: &mut TargetConnection) -> Vec<history::HistoryRow> {
    history::all(conn, &options().history).await.unwrap()
}

async fn my_table_exists(db: &MySqlDatabase, table: &str) -> bool {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_one(&db.pool)
    .await
    .unwrap()
        == 1
}

#[tokio::test]
async fn postgres_transaction_mode_applies_atomically_and_then_skips() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let m = migration(
        &v1,
        "create a and b",
        &["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"],
        TransactionMode::Transaction,
    );
    assert_eq!(apply(&mut conn, &m, &options(), &mut Silent).await.unwrap(), Outcome::Applied { statements: 2 });
    assert!(db.has_table("a").await && db.has_table("b").await);
    let history = rows(&mut conn).await;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].status, history[0].statements_done, history[0].statements_total),
        (HistoryStatus::Applied, 2, 2)
    );
    assert_eq!(history[0].checksum, Checksum::of("create a and b").digest());

    assert!(matches!(apply(&mut conn, &m, &options(), &mut Silent).await.unwrap(), Outcome::Skipped { .. }));

    let edited = migration(&v1, "create a and b, edited", &["CREATE TABLE a (id int)"], TransactionMode::Transaction);
    let drift = apply(&mut conn, &edited, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(drift, ApplyError::Drift { .. }), "{drift}");
}

#[tokio::test]
async fn postgres_transaction_mode_failure_leaves_nothing_behind() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let m = migration(
        &v1,
        "x",
        &["CREATE TABLE a (id int)", "SELECT 1/0", "CREATE TABLE c (id int)"],
        TransactionMode::Transaction,
    );
    let err = apply(&mut conn, &m, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err}");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert!(!err.is_transient());
    assert!(!db.has_table("a").await, "statement 0 must be rolled back");
    assert!(rows(&mut conn).await.is_empty());
    // Fixed content applies cleanly afterwards: the target was never dirty.
    let fixed = migration(&v1, "y", &["CREATE TABLE a (id int)"], TransactionMode::Transaction);
    assert_eq!(apply(&mut conn, &fixed, &options(), &mut Silent).await.unwrap(), Outcome::Applied { statements: 1 });
}

#[tokio::test]
async fn postgres_no_transaction_mode_records_progress_and_needs_recovery() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    sqlx::query("CREATE TABLE t (c int)").execute(&db.pool).await.unwrap();
    let v1 = key("0001");
    // CONCURRENTLY cannot run in a transaction; the session-level lock must not get in its way either.
    let m = migration(
        &v1,
        "idx",
        &["CREATE INDEX CONCURRENTLY t_c ON t (c)", "ALTER TABLE missing ADD COLUMN x int", "SELECT 1"],
        TransactionMode::None,
    );
    let err = apply(&mut conn, &m, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err}");
    assert!(db.has_table("t_c").await, "statement 0 stays applied");
    let history = rows(&mut conn).await;
    assert_eq!((history[0].status, history[0].statements_done), (HistoryStatus::Failed, 1));
    // People count statements from 1: the second one failed.
    assert!(history[0].error.as_deref().unwrap().contains("up failed at statement 2: "), "{:?}", history[0].error);
    assert!(err.to_string().starts_with("statement 2 failed: "), "{err}");

    let again = apply(&mut conn, &m, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(again, ApplyError::NeedsRecovery { done: 1, total: 3, .. }), "{again}");
    assert!(again.to_string().contains("needs recovery"));
    // The dirty row blocks the next version too.
    let v2 = key("0002");
    let next = migration(&v2, "next", &["SELECT 1"], TransactionMode::Transaction);
    let blocked =
        apply(&mut conn, &next, &ApplyOptions { earlier_versions: vec![key("0001")], ..options() }, &mut Silent)
            .await
            .unwrap_err();
    assert!(matches!(blocked, ApplyError::NeedsRecovery { .. }), "{blocked}");
}

#[tokio::test]
async fn a_postgres_first_statement_refused_whole_leaves_no_row_but_a_failed_concurrently_does() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    // One command outside a transaction is all or nothing: refused, the target is as it was.
    let typo = migration(&v1, "typo", &["ALTER TABLE missing ADD COLUMN x int", "SELECT 1"], TransactionMode::None);
    let err = apply(&mut conn, &typo, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 0, .. }), "{err}");
    assert!(rows(&mut conn).await.is_empty(), "nothing ran, nothing is dirty");
    // A unique index built concurrently over duplicates fails part-way and leaves an invalid index.
    sqlx::raw_sql("CREATE TABLE t (c int); INSERT INTO t VALUES (1), (1)").execute(&db.pool).await.unwrap();
    let unique = migration(&v1, "unique", &["CREATE UNIQUE INDEX CONCURRENTLY t_c ON t (c)"], TransactionMode::None);
    let err = apply(&mut conn, &unique, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 0, .. }), "{err}");
    let invalid: bool = sqlx::query_scalar("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 't_c'::regclass")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(invalid, "the failed build left an invalid index");
    let dirty = rows(&mut conn).await;
    assert_eq!((dirty[0].status, dirty[0].statements_done), (HistoryStatus::Failed, 0), "so the row stays dirty");
}

#[tokio::test]
async fn concurrently_in_transaction_mode_is_refused_before_anything_runs() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    sqlx::query("CREATE TABLE t (c int)").execute(&db.pool).await.unwrap();
    let v1 = key("0001");
    let m = migration(
        &v1,
        "idx",
        &["CREATE TABLE first (id int)", "CREATE INDEX CONCURRENTLY t_c ON t (c)"],
        TransactionMode::Transaction,
    );
    let err = apply(&mut conn, &m, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::NeedsNoTransaction { index: 1, what: "CREATE INDEX CONCURRENTLY" }), "{err}");
    assert!(err.to_string().contains("no-transaction"), "{err}");
    assert!(!db.has_table("first").await, "nothing ran");
    assert!(!history::exists(&mut conn, &options().history).await.unwrap(), "not even the history table");
}

#[tokio::test]
async fn out_of_order_is_refused_unless_allowed() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let (v1, v2) = (key("1"), key("2"));
    let with_earlier = ApplyOptions { earlier_versions: vec![v1.clone()], ..options() };
    let second = migration(&v2, "two", &["CREATE TABLE two (id int)"], TransactionMode::Transaction);
    let err = apply(&mut conn, &second, &with_earlier, &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::OutOfOrder(_)), "{err}");
    assert!(err.to_string().contains("first 1"), "{err}");
    let allowed = ApplyOptions { allow_out_of_order: true, ..with_earlier.clone() };
    assert!(matches!(apply(&mut conn, &second, &allowed, &mut Silent).await.unwrap(), Outcome::Applied { .. }));
    // Now 1 comes after 2 was applied: a later version is there.
    let first = migration(&v1, "one", &["CREATE TABLE one (id int)"], TransactionMode::Transaction);
    let late = apply(&mut conn, &first, &options(), &mut Silent).await.unwrap_err();
    assert!(late.to_string().contains("later version (2)"), "{late}");
}

#[tokio::test]
async fn down_runs_the_down_statements_and_forgets_the_version() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let up = migration(&v1, "up", &["CREATE TABLE a (id int)"], TransactionMode::Transaction);
    apply(&mut conn, &up, &options(), &mut Silent).await.unwrap();
    let down = Migration { direction: Direction::Down, statements: vec!["DROP TABLE a".into()], ..up.clone() };
    assert_eq!(apply(&mut conn, &down, &options(), &mut Silent).await.unwrap(), Outcome::Applied { statements: 1 });
    assert!(!db.has_table("a").await);
    assert!(rows(&mut conn).await.is_empty());
    assert!(matches!(apply(&mut conn, &down, &options(), &mut Silent).await.unwrap(), Outcome::Skipped { .. }));
}

#[tokio::test]
async fn a_held_lock_makes_the_second_session_wait_then_give_up() {
    let db = PgDatabase::fresh().await;
    let mut holder = pg(&db).await;
    assert!(holder.lock("target-1", Duration::ZERO).await.unwrap());
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let m = migration(&v1, "x", &["SELECT 1"], TransactionMode::Transaction);
    let quick = ApplyOptions { lock_wait: Duration::from_millis(300), ..options() };
    let err = apply(&mut conn, &m, &quick, &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::LockTimeout { .. }) && err.is_transient(), "{err}");
    // The holder is named, as far as the server tells: its process and application, never its SQL.
    assert!(err.to_string().contains("it is server process") && err.to_string().contains("of migrate-hub"), "{err}");
    // The lock dies with its session.
    holder.close().await;
    assert!(matches!(apply(&mut conn, &m, &quick, &mut Silent).await.unwrap(), Outcome::Applied { .. }));
}

#[tokio::test]
async fn a_held_lock_on_mariadb_names_its_holder() {
    let db = MySqlDatabase::fresh().await;
    let mut holder = my(&db).await;
    assert!(holder.lock("target-1", Duration::ZERO).await.unwrap());
    let mut conn = my(&db).await;
    let v1 = key("0001");
    let m = migration(&v1, "x", &["SELECT 1"], TransactionMode::Transaction);
    let quick = ApplyOptions { lock_wait: Duration::from_millis(200), ..options() };
    let err = apply(&mut conn, &m, &quick, &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::LockTimeout { holder: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("it is server connection"), "{err}");
    holder.close().await;
}

/// Stops before statement `stop_at`, and remembers what ran.
#[derive(Debug, Default)]
struct StopAt {
    stop_at: usize,
    ran: Vec<usize>,
}

impl Observer for StopAt {
    async fn before_statement(&mut self, index: usize) -> Result<(), String> {
        if index == self.stop_at { Err("run cancelled".into()) } else { Ok(()) }
    }
    async fn after_statement(&mut self, index: usize, _statement: &str, _elapsed: Duration, _rows: u64) {
        self.ran.push(index);
    }
}

#[tokio::test]
async fn an_observer_stops_at_a_statement_boundary() {
    let db = MySqlDatabase::fresh().await;
    let mut conn = my(&db).await;
    let v1 = key("0001");
    let m = migration(&v1, "x", &["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"], TransactionMode::Transaction);
    let mut observer = StopAt { stop_at: 1, ran: Vec::new() };
    let err = apply(&mut conn, &m, &options(), &mut observer).await.unwrap_err();
    assert!(matches!(err, ApplyError::Stopped { index: 1, .. }), "{err}");
    assert_eq!(observer.ran, vec![0]);
    assert!(my_table_exists(&db, "a").await && !my_table_exists(&db, "b").await);
    assert_eq!(rows(&mut conn).await[0].status, HistoryStatus::Failed);
}

#[tokio::test]
async fn mysql_applies_statement_by_statement_and_marks_failures() {
    let db = MySqlDatabase::fresh().await;
    let mut conn = my(&db).await;
    let v1 = key("0001");
    let ok = migration(
        &v1,
        "procedure",
        &[
            "CREATE TABLE t (id int PRIMARY KEY)",
            "CREATE PROCEDURE fill() BEGIN INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END",
            "CALL fill()",
        ],
        TransactionMode::Transaction,
    );
    assert_eq!(apply(&mut conn, &ok, &options(), &mut Silent).await.unwrap(), Outcome::Applied { statements: 3 });
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&db.pool).await.unwrap();
    assert_eq!(count, 2);
    // The last statement's progress travels with the row's end (and the lock's confirmation).
    let history = rows(&mut conn).await;
    assert_eq!(
        (history[0].status, history[0].statements_done, history[0].error.as_deref()),
        (HistoryStatus::Applied, 3, None)
    );
    assert!(matches!(apply(&mut conn, &ok, &options(), &mut Silent).await.unwrap(), Outcome::Skipped { .. }));

    let v2 = key("0002");
    let bad =
        migration(&v2, "bad", &["CREATE TABLE u (id int)", "INSERT INTO t VALUES (1)"], TransactionMode::Transaction);
    let opts = ApplyOptions { earlier_versions: vec![v1.clone()], ..options() };
    let err = apply(&mut conn, &bad, &opts, &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err}");
    assert!(my_table_exists(&db, "u").await, "MySQL DDL commits as it goes");
    let history = rows(&mut conn).await;
    let failed = history.iter().find(|r| r.version == "0002").unwrap();
    assert_eq!((failed.status, failed.statements_done), (HistoryStatus::Failed, 1));
    assert!(matches!(apply(&mut conn, &bad, &opts, &mut Silent).await.unwrap_err(), ApplyError::NeedsRecovery { .. }));
}

#[tokio::test]
async fn a_mysql_first_statement_the_server_refuses_leaves_the_target_clean() {
    let db = MySqlDatabase::fresh().await;
    let mut conn = my(&db).await;
    let v1 = key("0001");
    let typo = migration(&v1, "typo", &["CREAT TABLE a (id int)", "CREATE TABLE b (id int)"], TransactionMode::None);
    let err = apply(&mut conn, &typo, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 0, .. }), "{err}");
    assert!(rows(&mut conn).await.is_empty(), "nothing ran, so nothing is dirty");
    assert!(!my_table_exists(&db, "b").await);
    // The fixed version applies without any recovery.
    let fixed = migration(&v1, "typo", &["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"], TransactionMode::None);
    assert_eq!(apply(&mut conn, &fixed, &options(), &mut Silent).await.unwrap(), Outcome::Applied { statements: 2 });
    assert_eq!(rows(&mut conn).await[0].status, HistoryStatus::Applied);
}

#[tokio::test]
async fn mysql_sessions_keep_the_server_defaults() {
    let db = MySqlDatabase::fresh().await;
    let mut conn = my(&db).await;
    let Session::Mysql { conn: raw, mariadb } = conn.session_mut() else { panic!("not a MySQL connection") };
    assert!(*mariadb);
    let (sql_mode, time_zone): (String, String) =
        sqlx::query_as("SELECT @@SESSION.sql_mode, @@SESSION.time_zone").fetch_one(&mut *raw).await.unwrap();
    assert!(!sql_mode.contains("PIPES_AS_CONCAT"), "{sql_mode}");
    assert_eq!(time_zone, "SYSTEM");
    conn.set_limits(SessionLimits {
        lock_timeout: Duration::from_millis(1500),
        statement_timeout: Some(Duration::from_secs(2)),
    })
    .await
    .unwrap();
    let Session::Mysql { conn: raw, .. } = conn.session_mut() else { panic!("not a MySQL connection") };
    let (lock_wait, statement_time): (u64, f64) =
        sqlx::query_as("SELECT @@SESSION.lock_wait_timeout, @@SESSION.max_statement_time")
            .fetch_one(&mut *raw)
            .await
            .unwrap();
    assert_eq!((lock_wait, statement_time), (2, 2.0));
}

#[tokio::test]
async fn a_mysql_target_may_name_its_session_sql_mode() {
    let db = MySqlDatabase::fresh().await;
    let settings = ConnectSettings {
        mysql_sql_mode: Some("ANSI_QUOTES,NO_ENGINE_SUBSTITUTION".into()),
        ..settings(Engine::Mysql, &db.url)
    };
    let mut conn = TargetConnection::connect(&settings, LockSession::Work).await.unwrap();
    // ANSI_QUOTES makes double quotes delimit identifiers, as the migration author asked.
    conn.execute(r#"CREATE TABLE "quoted" (id int)"#).await.unwrap();
    let Session::Mysql { conn: raw, .. } = conn.session_mut() else { panic!("not a MySQL connection") };
    let sql_mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode").fetch_one(&mut *raw).await.unwrap();
    assert_eq!(sql_mode, "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION");
}

#[tokio::test]
async fn postgres_statement_timeout_is_a_transient_error() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let slow = migration(&v1, "slow", &["SELECT pg_sleep(2)"], TransactionMode::None);
    let short = ApplyOptions {
        limits: SessionLimits {
            lock_timeout: Duration::from_secs(1),
            statement_timeout: Some(Duration::from_millis(100)),
        },
        ..options()
    };
    let err = apply(&mut conn, &slow, &short, &mut Silent).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn postgres_tls_modes_do_what_they_say() {
    let db = PgDatabase::fresh().await;
    let server_ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&db.pool).await.unwrap();
    let with = |tls_mode| ConnectSettings { tls_mode, ..settings(Engine::Postgres, &db.url) };
    async fn encrypted(conn: &mut TargetConnection) -> bool {
        let Session::Postgres(raw) = conn.session_mut() else { panic!("not a Postgres connection") };
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(raw).await.unwrap()
    }
    let mut plain = TargetConnection::connect(&with(TlsMode::Disable), LockSession::Work).await.unwrap();
    assert!(!encrypted(&mut plain).await, "disable must not encrypt");
    let required = TargetConnection::connect(&with(TlsMode::Require), LockSession::Work).await;
    if server_ssl == "on" {
        assert!(encrypted(&mut required.unwrap()).await, "require must encrypt");
        // The local server's certificate is self-signed (Debian's snakeoil): nothing vouches for it.
        match TargetConnection::connect(&with(TlsMode::VerifyFull), LockSession::Work).await {
            Err(e) => assert!(e.is_transient() && e.to_string().contains("cannot connect"), "{e}"),
            Ok(mut conn) => assert!(encrypted(&mut conn).await, "verify-full connected without TLS"),
        }
        // The system's roots are read once a minute, not per connection (vendor/sqlx-core/PATCHED.md): the
        // connections after the first check against the same roots, with the same verdict.
        let verdicts = async |mode| {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(match TargetConnection::connect(&with(mode), LockSession::Work).await {
                    Ok(mut conn) => encrypted(&mut conn).await,
                    Err(e) => {
                        assert!(e.to_string().contains("cannot connect"), "{e}");
                        false
                    }
                });
            }
            seen
        };
        for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
            let seen = verdicts(mode).await;
            assert!(seen.iter().all(|v| *v == seen[0]), "{mode}: {seen:?}");
        }
    } else {
        assert!(required.is_err(), "require connected to a server without TLS");
    }
}

#[tokio::test]
async fn mysql_tls_modes_do_what_they_say() {
    let db = MySqlDatabase::fresh().await;
    let (_, have_ssl): (String, String) =
        sqlx::query_as("SHOW VARIABLES LIKE 'have_ssl'").fetch_one(&db.pool).await.unwrap();
    let with = |tls_mode| ConnectSettings { tls_mode, ..settings(Engine::Mysql, &db.url) };
    async fn cipher(conn: &mut TargetConnection) -> String {
        let Session::Mysql { conn: raw, .. } = conn.session_mut() else { panic!("not a MySQL connection") };
        let (_, value): (String, String) =
            sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetch_one(raw).await.unwrap();
        value
    }
    let mut plain = TargetConnection::connect(&with(TlsMode::Disable), LockSession::Work).await.unwrap();
    assert_eq!(cipher(&mut plain).await, "", "disabled must not encrypt");
    let required = TargetConnection::connect(&with(TlsMode::Require), LockSession::Work).await;
    if have_ssl == "YES" {
        assert_ne!(cipher(&mut required.unwrap()).await, "", "required must encrypt");
    } else {
        let e = required.unwrap_err();
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }
}

/// Records what a release's observer hears, in order.
#[derive(Default)]
struct Heard(Vec<String>);

impl Observer for Heard {
    async fn before_statement(&mut self, index: usize) -> Result<(), String> {
        self.0.push(format!("before {index}"));
        Ok(())
    }

    async fn after_statement(&mut self, index: usize, _statement: &str, _elapsed: Duration, _rows: u64) {
        self.0.push(format!("ran {index}"));
    }

    async fn migration_started(&mut self, position: usize, statements: usize) {
        self.0.push(format!("start {position} of {statements}"));
    }

    async fn migration_ended(&mut self, position: usize, outcome: &Outcome) {
        let what = if matches!(outcome, Outcome::Applied { .. }) { "applied" } else { "skipped" };
        self.0.push(format!("end {position} {what}"));
    }

    async fn retrying(&mut self, _position: usize, index: usize, attempt: u32, of: u32, _delay: Duration, _e: &str) {
        self.0.push(format!("retry {index} try {attempt} of {of}"));
    }
}

#[tokio::test]
async fn a_postgres_release_in_one_message_commits_each_migration_up_to_the_failing_one() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let (v1, v2, v3) = (key("0001"), key("0002"), key("0003"));
    let release = [
        migration(
            &v1,
            "1",
            &["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1), (2)"],
            TransactionMode::Transaction,
        ),
        migration(
            &v2,
            "2",
            &["CREATE TABLE b (id int)", "SELECT 1/0", "CREATE TABLE c (id int)"],
            TransactionMode::Transaction,
        ),
        migration(&v3, "3", &["CREATE TABLE d (id int)"], TransactionMode::Transaction),
    ];
    let mut heard = Heard::default();
    let failed = apply_release(&mut conn, &release, &options(), &mut heard).await.unwrap_err();
    assert_eq!(failed.position, 1);
    assert_eq!(failed.completed, vec![Outcome::Applied { statements: 2 }]);
    assert!(matches!(failed.error, ApplyError::Statement { index: 1, .. }), "{}", failed.error);
    assert!(failed.error.to_string().contains("division by zero"), "{}", failed.error);
    // One question before the one message; then what ran, migration by migration.
    assert_eq!(
        heard.0,
        ["start 0 of 2", "before 0", "ran 0", "ran 1", "end 0 applied", "start 1 of 3", "ran 0"].map(String::from)
    );
    assert!(db.has_table("a").await, "the first migration committed");
    assert!(!db.has_table("b").await && !db.has_table("d").await, "nothing of the second or third");
    let history = rows(&mut conn).await;
    assert_eq!(history.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["0001"]);
    // The session is usable after the failed message (rolled back), and the rest applies on the next try.
    let fixed = migration(&v2, "2 fixed", &["CREATE TABLE b (id int)"], TransactionMode::Transaction);
    let outcomes = apply_release(&mut conn, &[release[0].clone(), fixed, release[2].clone()], &options(), &mut Silent)
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Skipped { .. }));
    assert_eq!(outcomes[1..], [Outcome::Applied { statements: 1 }, Outcome::Applied { statements: 1 }]);
    assert_eq!(rows(&mut conn).await.len(), 3);
}

#[tokio::test]
async fn a_release_mixing_modes_applies_every_migration_in_order() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let (v1, v2, v3, v4) = (key("0001"), key("0002"), key("0003"), key("0004"));
    let release = [
        migration(&v1, "1", &["CREATE TABLE a (id int)"], TransactionMode::Transaction),
        migration(&v2, "2", &["CREATE TABLE b (id int)"], TransactionMode::Transaction),
        migration(&v3, "3", &["CREATE INDEX CONCURRENTLY a_id ON a (id)"], TransactionMode::None),
        migration(&v4, "4", &["CREATE TABLE d (id int)", "DROP TABLE b"], TransactionMode::Transaction),
    ];
    let mut heard = Heard::default();
    let outcomes = apply_release(&mut conn, &release, &options(), &mut heard).await.unwrap();
    assert_eq!(outcomes, [1, 1, 1, 2].map(|statements| Outcome::Applied { statements }),);
    // The first two travel together (one question before them); the one without a transaction runs on its
    // own, statement by statement; the last is a message of its own.
    let befores = heard.0.iter().filter(|h| h.starts_with("before")).count();
    assert_eq!(befores, 3, "{:?}", heard.0);
    assert_eq!(heard.0.iter().filter(|h| h.ends_with("applied")).count(), 4, "{:?}", heard.0);
    assert!(db.has_table("d").await && !db.has_table("b").await);
    let mut history = rows(&mut conn).await;
    history.sort_by(|a, b| a.version.cmp(&b.version));
    assert!(history.iter().all(|r| r.status == HistoryStatus::Applied));
    assert_eq!(history.len(), 4);
    // A down release reverts newest first, the transactional ones again grouped.
    let down: Vec<Migration<'_>> = release
        .iter()
        .rev()
        .map(|m| Migration { direction: Direction::Down, statements: vec!["SELECT 1".into()], ..m.clone() })
        .collect();
    let outcomes = apply_release(&mut conn, &down, &options(), &mut Silent).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })));
    assert!(rows(&mut conn).await.is_empty());
}

#[tokio::test]
async fn recovery_goes_ahead_only_on_the_dirty_row_that_was_seen() {
    use executor::recovery::{Recovered, RecoveryError, Resolution, SeenRow, recover};
    let pg_db = PgDatabase::fresh().await;
    let my_db = MySqlDatabase::fresh().await;
    for mut conn in [pg(&pg_db).await, my(&my_db).await] {
        let v1 = key("0001");
        let m = migration(&v1, "x", &["CREATE TABLE a (id int)", "SELECT 1/0 FROM nowhere"], TransactionMode::None);
        let err = apply(&mut conn, &m, &options(), &mut Silent).await.unwrap_err();
        assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err}");
        let dirty = rows(&mut conn).await.remove(0);
        assert_eq!((dirty.status, dirty.statements_done), (HistoryStatus::Failed, 1));
        // What a page showed before the row moved on: refused, nothing changed.
        let stale = SeenRow { statements_done: 0, ..SeenRow::of(&dirty) };
        let changed = recover(&mut conn, &m, Resolution::MarkApplied, Some(&stale), &options(), &mut Silent).await;
        assert!(matches!(changed, Err(RecoveryError::Changed { .. })), "{changed:?}");
        assert_eq!(rows(&mut conn).await, vec![dirty.clone()]);
        // A resume of other content than what ran: refused.
        let edited = migration(&v1, "y", &["CREATE TABLE a (id int)", "SELECT 1"], TransactionMode::None);
        let other = recover(&mut conn, &edited, Resolution::Resume, None, &options(), &mut Silent).await;
        assert!(matches!(other, Err(RecoveryError::CannotResume { .. })), "{other:?}");
        // The row as seen: marked applied, and audited history shows it applied.
        let seen = SeenRow::of(&dirty);
        let marked = recover(&mut conn, &m, Resolution::MarkApplied, Some(&seen), &options(), &mut Silent).await;
        assert_eq!(marked.unwrap(), Recovered::MarkedApplied);
        let now = rows(&mut conn).await;
        assert_eq!((now[0].status, now[0].statements_done, now[0].error.as_deref()), (HistoryStatus::Applied, 2, None));
        let again = recover(&mut conn, &m, Resolution::MarkRolledBack, None, &options(), &mut Silent).await;
        assert!(matches!(again, Err(RecoveryError::NotDirty(_))), "{again:?}");
        conn.close().await;
    }
}

#[tokio::test]
async fn a_down_that_stopped_is_marked_not_resumed() {
    use executor::recovery::{Recovered, RecoveryError, Resolution, recover};
    let db = MySqlDatabase::fresh().await;
    let mut conn = my(&db).await;
    let v1 = key("0001");
    let up = migration(&v1, "x", &["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"], TransactionMode::None);
    apply(&mut conn, &up, &options(), &mut Silent).await.unwrap();
    let down = Migration {
        direction: Direction::Down,
        statements: vec!["DROP TABLE b".into(), "DROP TABLE nowhere".into()],
        ..up.clone()
    };
    let err = apply(&mut conn, &down, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err}");
    let row = rows(&mut conn).await.remove(0);
    assert!(row.error.as_deref().is_some_and(|e| e.starts_with("down failed at statement 2")), "{row:?}");
    let resumed = recover(&mut conn, &up, Resolution::Resume, None, &options(), &mut Silent).await;
    assert!(
        matches!(&resumed, Err(RecoveryError::CannotResume { reason, .. }) if reason.contains("a down that stopped")),
        "{resumed:?}"
    );
    // Undone by hand (b again), then marked applied: the version stands as applied.
    sqlx::raw_sql("CREATE TABLE b (id int)").execute(&db.pool).await.unwrap();
    let marked = recover(&mut conn, &up, Resolution::MarkApplied, None, &options(), &mut Silent).await.unwrap();
    assert_eq!(marked, Recovered::MarkedApplied);
    assert!(matches!(apply(&mut conn, &up, &options(), &mut Silent).await.unwrap(), Outcome::Skipped { .. }));
}

/// Options with a short `lock_timeout` and `attempts` retries after a lock timeout.
fn retrying(attempts: u32) -> ApplyOptions {
    ApplyOptions {
        limits: SessionLimits { lock_timeout: Duration::from_millis(100), statement_timeout: None },
        lock_retries: executor::apply::LockRetries { attempts, max_delay: Duration::from_millis(300) },
        ..options()
    }
}

/// Holds `lock` (SQL run in a transaction of its own on `db`) until `release` has passed.
async fn pg_hold(db: &PgDatabase, lock: &'static str, release: Duration) -> tokio::task::JoinHandle<()> {
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::raw_sql(lock).execute(&mut *tx).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(release).await;
        tx.commit().await.unwrap();
    })
}

fn retries(heard: &Heard) -> usize {
    heard.0.iter().filter(|l| l.starts_with("retry")).count()
}

#[tokio::test]
async fn a_postgres_migration_blocked_by_a_lock_is_retried_whole_until_the_lock_is_released() {
    let db = PgDatabase::fresh().await;
    sqlx::raw_sql("CREATE TABLE t (id int)").execute(&db.pool).await.unwrap();
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let m = migration(
        &v1,
        "1",
        &["CREATE TABLE u (id int)", "ALTER TABLE t ADD COLUMN c int"],
        TransactionMode::Transaction,
    );
    // In a transaction: each try is rolled back whole, then the migration runs once the lock is gone.
    let holder = pg_hold(&db, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Duration::from_millis(700)).await;
    let mut heard = Heard(Vec::new());
    let outcome = apply(&mut conn, &m, &retrying(10), &mut heard).await;
    holder.await.unwrap();
    assert_eq!(outcome.unwrap(), Outcome::Applied { statements: 2 }, "{:?}", heard.0);
    assert!(retries(&heard) >= 1, "{:?}", heard.0);
    assert!(heard.0.iter().any(|l| l == "retry 1 try 2 of 11"), "the statement that waited is named: {:?}", heard.0);
    assert_eq!(rows(&mut conn).await[0].status, HistoryStatus::Applied);

    // Held past the tries: the lock timeout is the failure, and nothing of the migration stays.
    let v2 = key("0002");
    let m2 = migration(
        &v2,
        "2",
        &["CREATE TABLE w (id int)", "ALTER TABLE t ADD COLUMN e int"],
        TransactionMode::Transaction,
    );
    let holder = pg_hold(&db, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Duration::from_secs(3)).await;
    let mut heard = Heard(Vec::new());
    let options = ApplyOptions { earlier_versions: vec![v1.clone()], ..retrying(2) };
    let failed = apply(&mut conn, &m2, &options, &mut heard).await.unwrap_err();
    assert!(matches!(&failed, ApplyError::Statement { index: 1, source } if source.is_lock_timeout()), "{failed}");
    assert_eq!(retries(&heard), 2, "{:?}", heard.0);
    assert_eq!(rows(&mut conn).await.len(), 1, "nothing of 0002 stays");
    let w: bool = sqlx::query_scalar("SELECT to_regclass('w') IS NOT NULL").fetch_one(&db.pool).await.unwrap();
    assert!(!w);
    holder.await.unwrap();

    // Without retries, the first lock timeout fails it.
    let holder = pg_hold(&db, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Duration::from_millis(500)).await;
    let mut heard = Heard(Vec::new());
    let options = ApplyOptions { earlier_versions: vec![v1.clone()], ..retrying(0) };
    assert!(apply(&mut conn, &m2, &options, &mut heard).await.is_err());
    assert_eq!(retries(&heard), 0);
    holder.await.unwrap();
}

#[tokio::test]
async fn a_statement_blocked_by_a_lock_outside_a_transaction_runs_again_alone() {
    // Postgres, none mode: the first statement ran and stays; the blocked one runs again by itself.
    let db = PgDatabase::fresh().await;
    sqlx::raw_sql("CREATE TABLE t (id int)").execute(&db.pool).await.unwrap();
    let mut conn = pg(&db).await;
    let v1 = key("0001");
    let m = migration(&v1, "1", &["CREATE TABLE u (id int)", "ALTER TABLE t ADD COLUMN c int"], TransactionMode::None);
    let holder = pg_hold(&db, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Duration::from_millis(600)).await;
    let mut heard = Heard(Vec::new());
    let outcome = apply(&mut conn, &m, &retrying(10), &mut heard).await;
    holder.await.unwrap();
    assert_eq!(outcome.unwrap(), Outcome::Applied { statements: 2 }, "{:?}", heard.0);
    assert!(retries(&heard) >= 1 && heard.0.iter().filter(|l| *l == "ran 0").count() == 1, "{:?}", heard.0);
    assert_eq!(rows(&mut conn).await[0].status, HistoryStatus::Applied);

    // A CREATE INDEX CONCURRENTLY that gave up leaves an invalid index: never run again here.
    let v2 = key("0002");
    let m2 = migration(&v2, "2", &["CREATE INDEX CONCURRENTLY t_id ON t (id)"], TransactionMode::None);
    let holder = pg_hold(&db, "LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE", Duration::from_millis(800)).await;
    let mut heard = Heard(Vec::new());
    let after_v1 = ApplyOptions { earlier_versions: vec![v1.clone()], ..retrying(10) };
    let failed = apply(&mut conn, &m2, &after_v1, &mut heard).await;
    holder.await.unwrap();
    assert!(failed.is_err(), "{:?}", heard.0);
    assert_eq!(retries(&heard), 0, "{:?}", heard.0);

    // MariaDB: DDL waits for the metadata lock an open transaction holds, gives up after lock_wait_timeout
    // (1205), and runs again once the transaction ends.
    let my_db = MySqlDatabase::fresh().await;
    sqlx::raw_sql("CREATE TABLE t (id int)").execute(&my_db.pool).await.unwrap();
    let mut holder = my_db.pool.begin().await.unwrap();
    sqlx::raw_sql("SELECT * FROM t").execute(&mut *holder).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        holder.commit().await.unwrap();
    });
    let mut conn = my(&my_db).await;
    let m = migration(&v1, "1", &["CREATE TABLE u (id int)", "ALTER TABLE t ADD COLUMN c int"], TransactionMode::None);
    let options = ApplyOptions {
        lock_retries: executor::apply::LockRetries { attempts: 5, max_delay: Duration::from_millis(300) },
        limits: SessionLimits { lock_timeout: Duration::from_millis(1000), statement_timeout: None },
        ..options()
    };
    let mut heard = Heard(Vec::new());
    let outcome = apply(&mut conn, &m, &options, &mut heard).await;
    release.await.unwrap();
    assert_eq!(outcome.unwrap(), Outcome::Applied { statements: 2 }, "{:?}", heard.0);
    assert!(retries(&heard) >= 1, "{:?}", heard.0);
}

/// Hears the server-timed statements and commits of a release.
#[derive(Default)]
struct Timed {
    statements: Vec<Duration>,
    commits: Vec<(usize, Duration)>,
}

impl Observer for Timed {
    async fn before_statement(&mut self, _index: usize) -> Result<(), String> {
        Ok(())
    }

    async fn after_statement(&mut self, _index: usize, _statement: &str, elapsed: Duration, _rows: u64) {
        self.statements.push(elapsed);
    }

    async fn committed(&mut self, position: usize, elapsed: Duration) {
        self.commits.push((position, elapsed));
    }
}

#[tokio::test]
async fn a_postgres_release_times_each_statement_and_commit_by_the_servers_clock_and_survives_a_changed_datestyle() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let (v1, v2) = (key("0001"), key("0002"));
    let sleepy =
        migration(&v1, "sleep", &["SELECT pg_sleep(0.05)", "CREATE TABLE a (id int)"], TransactionMode::Transaction);
    // A migration that changes how timestamps are written mid-way: its marks cannot be read, so its times
    // are unknown (zero), and nothing else changes.
    let styled = migration(
        &v2,
        "style",
        &["SET DateStyle = 'SQL, DMY'", "SET TIME ZONE 'Asia/Kolkata'", "CREATE TABLE b (id int)"],
        TransactionMode::Transaction,
    );
    let mut heard = Timed::default();
    let outcomes = apply_release(&mut conn, &[sleepy, styled], &options(), &mut heard).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied { statements: 2 }, Outcome::Applied { statements: 3 }]);
    assert!(db.has_table("a").await && db.has_table("b").await);
    assert_eq!(heard.statements.len(), 5);
    assert!(
        heard.statements[0] >= Duration::from_millis(50) && heard.statements[0] < Duration::from_secs(5),
        "{:?}",
        heard.statements
    );
    assert!(heard.statements[1] < Duration::from_secs(5));
    // The first migration's commit was timed; the second's marks were written in another style.
    assert_eq!(heard.commits.len(), 1, "{:?}", heard.commits);
    assert_eq!(heard.commits[0].0, 0);
    assert!(heard.commits[0].1 < Duration::from_secs(5));
    assert_eq!(rows(&mut conn).await.len(), 2);
}

/// Advisory locks held on `db`, by any session.
async fn advisory_locks(db: &PgDatabase) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = current_database()",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_forbidden_database_is_refused_in_the_locking_message_and_a_release_unlocks_in_its_last() {
    let db = PgDatabase::fresh().await;
    let mut conn = pg(&db).await;
    let here = conn.identity().await.unwrap().expect("Postgres tells its identity");
    let v1 = key("0001");
    let release = [migration(&v1, "1", &["CREATE TABLE a (id int)"], TransactionMode::Transaction)];

    // On the forbidden database nothing after the check runs: no limits, no lock, no history table.
    conn.forbid(here);
    let failed = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap_err();
    assert!(matches!(failed.error, ApplyError::Target(TargetError::Forbidden)), "{}", failed.error);
    assert!(failed.error.to_string().contains("tool database"), "{}", failed.error);
    assert!(!db.has_table("migrate_hub_history").await && !db.has_table("a").await);
    assert_eq!(advisory_locks(&db).await, 0);
    let Session::Postgres(session) = conn.session_mut() else { unreachable!() };
    let lock_timeout: String = sqlx::query_scalar("SHOW lock_timeout").fetch_one(&mut *session).await.unwrap();
    assert_eq!(lock_timeout, "0", "the limits travelled after the check and did not run");

    // Another database (same server, another OID) is no obstacle; the release's one message also let go
    // of the lock, and nothing is left to release.
    conn.forbid(DatabaseId { database_oid: here.database_oid + 1, ..here });
    let outcomes = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied { statements: 1 }]);
    assert!(db.has_table("a").await);
    assert_eq!(advisory_locks(&db).await, 0, "the lock was released with the last migration");
    // A release that fails halfway releases it too (on its own, after the rollback).
    let v2 = key("0002");
    let failing = [release[0].clone(), migration(&v2, "2", &["SELECT 1/0"], TransactionMode::Transaction)];
    let failed = apply_release(&mut conn, &failing, &options(), &mut Silent).await.unwrap_err();
    assert_eq!(failed.position, 1, "{}", failed.error);
    assert_eq!(advisory_locks(&db).await, 0);
    // Another server (another system identifier, the same OID) is no obstacle either.
    conn.forbid(DatabaseId { system_identifier: here.system_identifier + 1, ..here });
    let v3 = key("0003");
    let third = [release[0].clone(), migration(&v3, "3", &["CREATE TABLE c (id int)"], TransactionMode::Transaction)];
    let outcomes = apply_release(&mut conn, &third, &options(), &mut Silent).await.unwrap();
    assert!(matches!(outcomes[..], [Outcome::Skipped { .. }, Outcome::Applied { statements: 1 }]), "{outcomes:?}");
    assert!(db.has_table("c").await);
    assert_eq!(advisory_locks(&db).await, 0);
    // And the session still takes it afterwards.
    assert!(conn.lock("target-1", Duration::ZERO).await.unwrap());
    assert_eq!(advisory_locks(&db).await, 1);
}

#[tokio::test]
async fn a_target_that_cannot_tell_its_identity_is_taken_as_another_server() {
    let db = PgDatabase::fresh().await;
    let role = format!("mh_noid_{}", &db.name[5..17]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN; GRANT CREATE ON SCHEMA public TO {role}; \
         REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    let (prefix, rest) = db.url.split_once("://").unwrap();
    let (_, location) = rest.rsplit_once('@').unwrap();
    let url = format!("{prefix}://{role}@{location}");
    let mut conn = TargetConnection::connect(&settings(Engine::Postgres, &url), LockSession::Work).await.unwrap();
    assert_eq!(conn.identity().await.unwrap(), None, "the role may not read pg_control_system()");
    // Even this database's own identity: the check cannot tell, so it is asked again on its own and the
    // release goes ahead, as for a server without `pg_control_system()`.
    let mut admin = pg(&db).await;
    let here = admin.identity().await.unwrap().unwrap();
    admin.close().await;
    conn.forbid(here);
    let v1 = key("0001");
    let release = [migration(&v1, "1", &["CREATE TABLE a (id int)"], TransactionMode::Transaction)];
    let outcomes = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied { statements: 1 }]);
    conn.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP OWNED BY {role}; DROP ROLE {role}")))
        .execute(&db.pool)
        .await
        .unwrap();
}

/// The session's `lock_timeout` as the server shows it.
async fn shown_lock_timeout(conn: &mut TargetConnection) -> String {
    let Session::Postgres(session) = conn.session_mut() else { unreachable!() };
    sqlx::query_scalar("SHOW lock_timeout").fetch_one(&mut *session).await.unwrap()
}

#[tokio::test]
async fn the_history_travels_with_the_lock_and_each_way_that_message_can_fail_ends_as_the_separate_steps_would() {
    let db = PgDatabase::fresh().await;
    let v1 = key("0001");
    let v2 = key("0002");
    let first = [migration(&v1, "1", &["CREATE TABLE a (id int)"], TransactionMode::Transaction)];

    // Busy: the statement that takes the lock raises, so nothing after it ran and the limits it carried
    // rolled back; the release then waits for the lock as before, with the limits sent again.
    let mut holder = pg(&db).await;
    assert!(holder.lock("target-1", Duration::ZERO).await.unwrap());
    let mut conn = pg(&db).await;
    let (defaults, mut silent) = (options(), Silent);
    let (applied, ()) = tokio::join!(apply_release(&mut conn, &first, &defaults, &mut silent), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!db.has_table("migrate_hub_history").await, "the history waits for the lock");
        holder.close().await;
    });
    assert_eq!(applied.unwrap(), [Outcome::Applied { statements: 1 }]);
    assert_eq!(shown_lock_timeout(&mut conn).await, "5s");
    assert_eq!(advisory_locks(&db).await, 0);
    conn.close().await;

    // After the lock: a history table from before projects fails the read in that message. The lock is
    // held, the limits are set again, and the table is upgraded as on the separate path.
    let db = PgDatabase::fresh().await;
    sqlx::raw_sql(
        "CREATE TABLE migrate_hub_history (version text PRIMARY KEY, name text NOT NULL, checksum bytea NOT NULL,
            checksum_algorithm text NOT NULL, status text NOT NULL, statements_done integer NOT NULL DEFAULT 0,
            statements_total integer NOT NULL, run_id text, worker text NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, duration_ms bigint, error text)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut conn = pg(&db).await;
    let release = [
        migration(&v1, "1", &["CREATE TABLE a (id int)"], TransactionMode::Transaction),
        migration(&v2, "2", &["CREATE TABLE b (id int)"], TransactionMode::Transaction),
    ];
    let outcomes = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied { statements: 1 }, Outcome::Applied { statements: 1 }]);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT project, version FROM migrate_hub_history ORDER BY version")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows, [("project-1".into(), "0001".into()), ("project-1".into(), "0002".into())]);
    assert_eq!(shown_lock_timeout(&mut conn).await, "5s");
    assert_eq!(advisory_locks(&db).await, 0);

    // Read with the lock on the next release: both are skipped, nothing runs twice.
    let outcomes = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Skipped { .. })), "{outcomes:?}");
    assert_eq!(advisory_locks(&db).await, 0);

    // A history that cannot be read (its name is taken by a sequence) fails the release before anything
    // runs, and lets go of the lock.
    let db = PgDatabase::fresh().await;
    sqlx::raw_sql("CREATE SEQUENCE migrate_hub_history").execute(&db.pool).await.unwrap();
    let mut conn = pg(&db).await;
    let failed = apply_release(&mut conn, &release, &options(), &mut Silent).await.unwrap_err();
    assert_eq!(failed.position, 0);
    assert!(failed.completed.is_empty() && !db.has_table("a").await, "{}", failed.error);
    assert_eq!(advisory_locks(&db).await, 0);
}
