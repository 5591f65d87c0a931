//! Issue 16 regressions in the engine, through the real server and worker binaries: projects sharing a
//! history table never see or touch each other's rows; migration SQL cannot release the target lock;
//! MariaDB history keys compare byte for byte; retries follow the error's class, never its message.

use std::time::{Duration, Instant};

use domain::enums::{Engine, TlsMode};
use domain::values::{Identifier, VersionKey};
use executor::apply::{ApplyError, ApplyOptions, Migration, Silent, apply};
use executor::history::HistoryTable;
use executor::target::{
    ConnectSettings, LockSession, SessionLimits, TargetConnection, TargetError, mysql_lock_name, pg_lock_key,
};
use migrate_hub_tests::{MySqlDatabase, PgDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, api_for, id, start_worker, target_body};
use crate::hub::{Hub, HubOptions};
use domain::enums::Role;

/// An environment without approval and one target (`engine`, `url`) in a set.
struct Dev {
    hub: Hub,
    admin: Api,
    env: String,
    set: String,
    target: String,
}

async fn dev(engine: &str, url: &str) -> Dev {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let body = json!({"name": "dev", "approval_required": false});
    let env = id(&admin.ok(Method::POST, "/api/v1/environments", body, StatusCode::CREATED).await);
    let body = target_body(&env, "t1", engine, url, None);
    let target = id(&admin.ok(Method::POST, "/api/v1/targets", body, StatusCode::CREATED).await);
    let body = json!({"environment_id": env, "name": "all", "target_ids": [target]});
    let set = id(&admin.ok(Method::POST, "/api/v1/db-sets", body, StatusCode::CREATED).await);
    Dev { hub, admin, env, set, target }
}

impl Dev {
    /// A project with `(version, up, down)` migrations; returns the project id and the migration ids.
    async fn project(&self, name: &str, migrations: &[(&str, &str, &str)]) -> (String, Vec<String>) {
        let body = json!({"name": name});
        let project = id(&self.admin.ok(Method::POST, "/api/v1/projects", body, StatusCode::CREATED).await);
        let mut ids = Vec::new();
        for (version, up, down) in migrations {
            let body = json!({"project_id": project, "version_key": version, "name": format!("{name} {version}"),
                "up_sql": up, "down_sql": down});
            let created = self.admin.ok(Method::POST, "/api/v1/migrations", body, StatusCode::CREATED).await;
            ids.push(id(&created["migration"]));
        }
        (project, ids)
    }

    /// Requests and executes `body` (plus the environment and set), returns the run id.
    async fn start(&self, mut body: Value) -> String {
        body["environment_id"] = json!(self.env);
        body["db_set_id"] = json!(self.set);
        let run = self.admin.ok(Method::POST, "/api/v1/runs", body, StatusCode::CREATED).await;
        let run_id = id(&run);
        self.admin.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
        run_id
    }

    async fn finished(&self, run: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let detail = self.admin.get(&format!("/api/v1/runs/{run}")).await;
            if matches!(detail["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
                return detail;
            }
            assert!(Instant::now() < deadline, "run still {}: {detail}", detail["status"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first item's log messages.
    async fn log(&self, run: &str) -> String {
        let items = self.admin.get(&format!("/api/v1/runs/{run}/items")).await;
        let item = id(&items["items"][0]);
        let logs = self.admin.get(&format!("/api/v1/runs/{run}/items/{item}/logs?limit=500")).await;
        let lines = logs["lines"]["items"].as_array().unwrap().iter();
        lines.map(|l| l["message"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join("\n")
    }
}

#[tokio::test]
async fn projects_sharing_a_history_table_never_see_or_touch_each_others_rows() {
    let pg = PgDatabase::fresh().await;
    let dev = dev("postgres", &pg.url).await;
    let _worker = start_worker(&dev.hub.db);
    let (a, a_ids) = dev
        .project(
            "a",
            &[
                ("0001", "CREATE TABLE a_one (id int);", "DROP TABLE a_one;"),
                ("0002", "CREATE TABLE a_two (id int);", "DROP TABLE a_two;"),
            ],
        )
        .await;
    let (b, _) = dev
        .project(
            "b",
            &[
                ("0001", "CREATE TABLE b_one (id int);", "DROP TABLE b_one;"),
                ("0002", "CREATE TABLE b_two (id int);", "DROP TABLE b_two;"),
            ],
        )
        .await;
    let run = dev.start(json!({"project_id": a})).await;
    assert_eq!(dev.finished(&run).await["status"], "succeeded");
    // b's 0001 and 0002 are not a's: they apply (before, 0001 was refused as drift).
    let run = dev.start(json!({"project_id": b})).await;
    let done = dev.finished(&run).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", dev.log(&run).await);
    assert!(dev.log(&run).await.contains("2 of 2 migrations applied"), "{}", dev.log(&run).await);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT project, version FROM migrate_hub_history ORDER BY project, version")
            .fetch_all(&pg.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (a.clone(), "0001".into()),
            (a.clone(), "0002".into()),
            (b.clone(), "0001".into()),
            (b.clone(), "0002".into())
        ]
    );
    // Reverting a's 0002 deletes a's row only, and b's table stays.
    let run = dev.start(json!({"migration_id": a_ids[1], "direction": "down"})).await;
    assert_eq!(dev.finished(&run).await["status"], "succeeded");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT project, version FROM migrate_hub_history ORDER BY project, version")
            .fetch_all(&pg.pool)
            .await
            .unwrap();
    assert_eq!(rows, [(a.clone(), "0001".into()), (b.clone(), "0001".into()), (b, "0002".into())]);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND (table_name LIKE '%\\_one' OR table_name LIKE '%\\_two') ORDER BY 1",
    )
    .fetch_all(&pg.pool)
    .await
    .unwrap();
    assert_eq!(tables, ["a_one", "b_one", "b_two"]);
}

/// Waits until a session on the target runs `needle` (the migration's sleep).
async fn wait_for_query(pool: &sqlx::PgPool, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        )
        .bind(needle)
        .fetch_one(pool)
        .await
        .unwrap();
        if running > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the migration never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn migration_sql_cannot_release_the_target_lock_on_postgres() {
    let pg = PgDatabase::fresh().await;
    let dev = dev("postgres", &pg.url).await;
    let _worker = start_worker(&dev.hub.db);
    let up = "SELECT pg_advisory_unlock_all();\nSELECT pg_sleep(2) AS lock_probe_sleep;";
    let (project, _) = dev.project("p", &[("0001", up, "SELECT 1;")]).await;
    let run = dev.start(json!({"project_id": project})).await;
    wait_for_query(&pg.pool, "lock_probe_sleep").await;
    // Another session (another worker, another project's run) must not get the target's lock now.
    let key = pg_lock_key(&format!("target:{}", dev.target));
    let mut other = pg.pool.acquire().await.unwrap();
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *other).await.unwrap();
    assert!(!got, "the migration released the target lock and another session took it");
    assert_eq!(dev.finished(&run).await["status"], "succeeded");
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *other).await.unwrap();
    assert!(got, "the lock is released when the item ends");
}

#[tokio::test]
async fn migration_sql_cannot_release_the_target_lock_on_mariadb_and_keys_compare_byte_for_byte() {
    let my = MySqlDatabase::fresh().await;
    let dev = dev("mysql", &my.url).await;
    let _worker = start_worker(&dev.hub.db);
    let up = "DO RELEASE_ALL_LOCKS();\nDO SLEEP(2);";
    let (project, _) = dev
        .project(
            "p",
            &[
                ("1A", "CREATE TABLE upper_a (id int);", "DROP TABLE upper_a;"),
                ("1a", "CREATE TABLE lower_a (id int);", "DROP TABLE lower_a;"),
                ("2", up, "DO 1;"),
            ],
        )
        .await;
    let run = dev.start(json!({"project_id": project})).await;
    let name = mysql_lock_name(&format!("target:{}", dev.target));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sleeping: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'DO SLEEP(2)'")
                .fetch_one(&my.pool)
                .await
                .unwrap();
        if sleeping > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the migration never started: {}", dev.log(&run).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let free: Option<i64> = sqlx::query_scalar("SELECT IS_FREE_LOCK(?)").bind(&name).fetch_one(&my.pool).await.unwrap();
    assert_eq!(free, Some(0), "the migration released the target lock");
    let done = dev.finished(&run).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", dev.log(&run).await);
    // `1A` and `1a` are two versions, not a duplicate key retried as a connection error.
    let versions: Vec<String> = sqlx::query_scalar("SELECT version FROM migrate_hub_history ORDER BY version")
        .fetch_all(&my.pool)
        .await
        .unwrap();
    assert_eq!(versions, ["1A", "1a", "2"]);
}

fn settings(engine: Engine, url: &str) -> ConnectSettings {
    let url = reqwest::Url::parse(url).unwrap();
    ConnectSettings {
        engine,
        host: url.host_str().unwrap().to_owned(),
        port: url.port().unwrap(),
        database: url.path().trim_start_matches('/').to_owned(),
        username: url.username().to_owned(),
        password: None,
        tls_mode: TlsMode::Prefer,
        connect_timeout: Duration::from_secs(5),
        mysql_sql_mode: None,
    }
}

fn options(project: &str, earlier: &[&str]) -> ApplyOptions {
    ApplyOptions {
        history: HistoryTable {
            schema: None,
            table: Identifier::parse("migrate_hub_history").unwrap(),
            project: project.into(),
        },
        lock_name: "target-1".into(),
        lock_wait: Duration::from_secs(2),
        limits: SessionLimits {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(60)),
        },
        allow_out_of_order: false,
        earlier_versions: earlier.iter().map(|k| VersionKey::parse(*k).unwrap()).collect(),
        run_id: None,
        worker: "test".into(),
        lock_retries: executor::apply::LockRetries::NONE,
        stop_at: None,
    }
}

#[tokio::test]
async fn an_error_that_only_reads_like_a_timeout_is_not_retried() {
    let my = MySqlDatabase::fresh().await;
    let mut conn = TargetConnection::connect(&settings(Engine::Mysql, &my.url), LockSession::Own).await.unwrap();
    let key = VersionKey::parse("1").unwrap();
    let sql = "SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'Lock wait timeout exceeded; try restarting transaction'";
    let m = Migration {
        version: &key,
        name: "fake timeout",
        up_checksum: domain::checksum::Checksum::of(sql),
        direction: domain::enums::Direction::Up,
        statements: vec![sql.into()],
        transaction_mode: domain::enums::TransactionMode::None,
    };
    let err = apply(&mut conn, &m, &options("p", &[]), &mut Silent).await.unwrap_err();
    assert!(!err.is_transient(), "a user's SIGNAL is a SQL error, whatever its text: {err}");
    let pg = PgDatabase::fresh().await;
    let mut conn = TargetConnection::connect(&settings(Engine::Postgres, &pg.url), LockSession::Own).await.unwrap();
    let sql = "DO $$ BEGIN RAISE EXCEPTION 'canceling statement due to lock timeout'; END $$";
    let m = Migration { up_checksum: domain::checksum::Checksum::of(sql), statements: vec![sql.into()], ..m };
    let err = apply(&mut conn, &m, &options("p", &[]), &mut Silent).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_history_table_from_before_projects_is_upgraded_and_its_rows_go_to_their_project() {
    let pg = PgDatabase::fresh().await;
    // The table as hubs before this change created it, with one row of this project and one of another.
    sqlx::raw_sql(
        "CREATE TABLE migrate_hub_history (version text PRIMARY KEY, name text NOT NULL, checksum bytea NOT NULL,
            checksum_algorithm text NOT NULL, status text NOT NULL, statements_done integer NOT NULL DEFAULT 0,
            statements_total integer NOT NULL, run_id text, worker text NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, duration_ms bigint, error text);
         CREATE TABLE one (id int);",
    )
    .execute(&pg.pool)
    .await
    .unwrap();
    let one = "CREATE TABLE one (id int);";
    sqlx::query(
        "INSERT INTO migrate_hub_history (version, name, checksum, checksum_algorithm, status, statements_total, worker)
         VALUES ('1', 'one', $1, 'sha256', 'applied', 1, 'old'), ('9', 'other project', $1, 'sha256', 'applied', 1, 'old')",
    )
    .bind(domain::checksum::Checksum::of(one).digest().to_vec())
    .execute(&pg.pool)
    .await
    .unwrap();
    let mut conn = TargetConnection::connect(&settings(Engine::Postgres, &pg.url), LockSession::Own).await.unwrap();
    let k2 = VersionKey::parse("2").unwrap();
    let migration = |key, sql: &'static str| Migration {
        version: key,
        name: "m",
        up_checksum: domain::checksum::Checksum::of(sql),
        direction: domain::enums::Direction::Up,
        statements: vec![sql.into()],
        transaction_mode: domain::enums::TransactionMode::Transaction,
    };
    // 2 applies over 1 (the old row of a version this project has is its own: handed to it); 9 is not a
    // version of this project, so it is someone else's and not "a later version already applied".
    let outcome = apply(&mut conn, &migration(&k2, "CREATE TABLE two (id int);"), &options("p", &["1"]), &mut Silent)
        .await
        .unwrap();
    assert!(matches!(outcome, executor::apply::Outcome::Applied { .. }), "{outcome:?}");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT project, version FROM migrate_hub_history ORDER BY version")
            .fetch_all(&pg.pool)
            .await
            .unwrap();
    assert_eq!(rows, [("p".into(), "1".into()), ("p".into(), "2".into()), ("".into(), "9".into())]);
    // The project that has 9 adopts its old row (same checksum: skipped, and now that project's).
    let k9 = VersionKey::parse("9").unwrap();
    let outcome = apply(&mut conn, &migration(&k9, one), &options("q", &[]), &mut Silent).await.unwrap();
    assert!(matches!(outcome, executor::apply::Outcome::Skipped { .. }), "{outcome:?}");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT project, version FROM migrate_hub_history ORDER BY version")
            .fetch_all(&pg.pool)
            .await
            .unwrap();
    assert_eq!(rows, [("p".into(), "1".into()), ("p".into(), "2".into()), ("q".into(), "9".into())]);
}

/// With the lock in the work session (nothing in the release names a lock-releasing call), a function the
/// textual check cannot see into releases the lock anyway: the migration is not recorded as applied.
#[tokio::test]
async fn a_lock_released_out_of_sight_is_caught_before_the_migration_is_recorded() {
    let pg = PgDatabase::fresh().await;
    sqlx::raw_sql("CREATE FUNCTION innocent() RETURNS void LANGUAGE sql AS 'SELECT pg_advisory_unlock_all()'")
        .execute(&pg.pool)
        .await
        .unwrap();
    let statements = ["CREATE TABLE hidden (id int)", "SELECT innocent()"];
    let (session, named) = LockSession::for_statements(statements);
    assert_eq!((session, named), (LockSession::Work, None), "the call is out of the textual check's sight");
    let mut conn = TargetConnection::connect(&settings(Engine::Postgres, &pg.url), session).await.unwrap();
    let key = VersionKey::parse("1").unwrap();
    let m = Migration {
        version: &key,
        name: "hidden unlock",
        up_checksum: domain::checksum::Checksum::of(&statements.join(";\n")),
        direction: domain::enums::Direction::Up,
        statements: statements.iter().map(|s| (*s).to_owned()).collect(),
        transaction_mode: domain::enums::TransactionMode::Transaction,
    };
    let err = apply(&mut conn, &m, &options("p", &[]), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Target(TargetError::LockLost(_))), "{err:?}");
    // The session is usable again (rolled back), and a last statement's own error stays the statement's,
    // whatever its SQLSTATE, never taken for the lock check that travels with it.
    assert!(conn.try_lock("again").await.unwrap());
    let failing = ["CREATE TABLE hidden (id int)", "SELECT 1 / 0 AS migrate_hub_lock_held"];
    let m2 = Migration {
        statements: failing.iter().map(|s| (*s).to_owned()).collect(),
        up_checksum: domain::checksum::Checksum::of(&failing.join(";\n")),
        ..m.clone()
    };
    let err = apply(&mut conn, &m2, &options("p", &[]), &mut Silent).await.unwrap_err();
    assert!(matches!(err, ApplyError::Statement { index: 1, .. }), "{err:?}");
    conn.close().await;
    // Rolled back: neither the table nor a history row.
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'hidden'")
        .fetch_one(&pg.pool)
        .await
        .unwrap();
    assert_eq!(tables, 0);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM migrate_hub_history").fetch_one(&pg.pool).await.unwrap();
    assert_eq!(rows, 0);

    // MariaDB, statement by statement: the row ends failed, naming the lost lock.
    let my = MySqlDatabase::fresh().await;
    sqlx::raw_sql("CREATE FUNCTION innocent() RETURNS INT NO SQL RETURN RELEASE_ALL_LOCKS()")
        .execute(&my.pool)
        .await
        .unwrap();
    let statements = ["CREATE TABLE hidden (id int)", "DO innocent()"];
    let mut conn = TargetConnection::connect(&settings(Engine::Mysql, &my.url), LockSession::Work).await.unwrap();
    let m = Migration {
        statements: statements.iter().map(|s| (*s).to_owned()).collect(),
        transaction_mode: domain::enums::TransactionMode::None,
        ..m
    };
    let err = apply(&mut conn, &m, &options("p", &[]), &mut Silent).await.unwrap_err();
    assert!(err.to_string().contains("lock"), "{err}");
    conn.close().await;
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM migrate_hub_history").fetch_one(&my.pool).await.unwrap();
    assert_eq!(row.0, "failed");
    assert!(row.1.unwrap_or_default().contains("lock"));
}
