//! Adoption of databases other tools migrated (`migrate-hub adopt --from …`, `baseline --to`), against
//! real Postgres and MariaDB. Where the tool installs here its history is written by the tool itself:
//! sqlx-cli and diesel_cli (built by `cargo xtask test` into `target/tools`), dbmate (npm) and sql-migrate
//! (Debian), and sqlx's `Migrator`; goose's, golang-migrate's, Flyway's and refinery's tables are made and
//! filled as each tool's source does it (DDL and rows as the tool writes them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use migrate_hub_tests::{MySqlDatabase, PgDatabase, binary};

fn cli(args: &[&str], dir: &Path, url: &str) -> Output {
    Command::new(binary("migrate-hub"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("MIGRATE_HUB_DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn out(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A fresh directory holding `files` (relative paths, contents).
fn dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adopt-{}", uuid::Uuid::new_v4()));
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

async fn pg_versions(db: &PgDatabase) -> Vec<(String, String)> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('migrate_hub_history') IS NOT NULL").fetch_one(&db.pool).await.unwrap();
    if !exists {
        return Vec::new();
    }
    sqlx::query_as("SELECT version, worker FROM migrate_hub_history WHERE status = 'applied' ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

async fn pg_run(db: &PgDatabase, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&db.pool).await.unwrap();
}

/// Adopts, then applies the directory: only the version the other tool never applied runs.
async fn adopt_then_apply(db: &PgDatabase, tool: &str, dir: &Path, adopted: &[&str], next: &str) {
    let dry = cli(&["adopt", "--from", tool, "--dry-run"], dir, &db.url);
    assert!(dry.status.success(), "{}", out(&dry));
    assert!(out(&dry).contains(&format!("would_record={} already=0", adopted.len())), "{}", out(&dry));
    assert!(pg_versions(db).await.is_empty(), "a dry run records nothing");
    let done = cli(&["adopt", "--from", tool], dir, &db.url);
    assert!(done.status.success(), "{}", out(&done));
    assert!(out(&done).contains(&format!("recorded={} already=0", adopted.len())), "{}", out(&done));
    let versions = pg_versions(db).await;
    assert_eq!(versions.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(), adopted, "{tool}");
    assert!(versions.iter().all(|(_, w)| w.starts_with(&format!("adopted from {tool}"))), "{versions:?}");
    // Again: nothing new, said so.
    let again = cli(&["adopt", "--from", tool], dir, &db.url);
    assert!(out(&again).contains(&format!("recorded=0 already={}", adopted.len())), "{}", out(&again));
    let applied = cli(&["apply"], dir, &db.url);
    assert!(
        out(&applied).contains(&format!("applied {next}"))
            && out(&applied).contains(&format!("applied=1 skipped={}", adopted.len())),
        "{tool}: {}",
        out(&applied)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sqlx_history_made_by_sqlx_itself_is_adopted_and_checked() {
    let db = PgDatabase::fresh().await;
    let first = [
        ("20200101000001_a.sql", "CREATE TABLE a (id int);\n"),
        ("20200101000002_b.sql", "CREATE TABLE b (id int);\n"),
    ];
    let theirs = dir(&first);
    let migrator = sqlx::migrate::Migrator::new(theirs.as_path()).await.unwrap();
    migrator.run(&db.pool).await.unwrap();
    std::fs::remove_dir_all(&theirs).unwrap();
    // An edited file: sqlx's SHA-384 says so, nothing is recorded.
    let edited = dir(&[first[0], ("20200101000002_b.sql", "CREATE TABLE b (id bigint);\n")]);
    let refused = cli(&["adopt", "--from", "sqlx"], &edited, &db.url);
    assert!(!refused.status.success());
    assert!(
        out(&refused).contains("checksums differ from the files for 2020010100000")
            && out(&refused).contains("nothing was recorded"),
        "{}",
        out(&refused)
    );
    std::fs::remove_dir_all(&edited).unwrap();
    let ours = dir(&[first[0], first[1], ("20200101000003_c.sql", "CREATE TABLE c (id int);\n")]);
    adopt_then_apply(&db, "sqlx", &ours, &["20200101000001", "20200101000002"], "20200101000003").await;
}

#[tokio::test]
async fn goose_history_is_adopted_by_its_newest_rows() {
    let db = PgDatabase::fresh().await;
    // As goose (v3.16+) creates its table on Postgres, with its first row for version 0; version 2 was
    // applied then rolled back by an older goose (a false row), so it is pending.
    pg_run(
        &db,
        "CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, \
         version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now()); \
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (2, false); \
         CREATE TABLE a (id int);",
    )
    .await;
    let goose =
        |table: &str| format!("-- +goose Up\nCREATE TABLE {table} (id int);\n-- +goose Down\nDROP TABLE {table};\n");
    let (one, two) = (goose("a"), goose("b"));
    let ours = dir(&[("00001_a.sql", &one), ("00002_b.sql", &two)]);
    adopt_then_apply(&db, "goose", &ours, &["00001"], "00002").await;
}

#[tokio::test]
async fn golang_migrate_history_counts_up_to_its_version_and_a_dirty_one_is_refused() {
    let db = PgDatabase::fresh().await;
    pg_run(
        &db,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null); \
         INSERT INTO schema_migrations (version, dirty) VALUES (2, true);",
    )
    .await;
    let files = [
        ("1_a.up.sql", "CREATE TABLE a (id int);"),
        ("1_a.down.sql", "DROP TABLE a;"),
        ("2_b.up.sql", "CREATE TABLE b (id int);"),
        ("2_b.down.sql", "DROP TABLE b;"),
        ("3_c.up.sql", "CREATE TABLE c (id int);"),
        ("3_c.down.sql", "DROP TABLE c;"),
    ];
    let ours = dir(&files);
    let refused = cli(&["adopt", "--from", "golang-migrate"], &ours, &db.url);
    assert!(!refused.status.success());
    assert!(out(&refused).contains("history is dirty at 2"), "{}", out(&refused));
    pg_run(&db, "UPDATE schema_migrations SET dirty = false; CREATE TABLE a (id int); CREATE TABLE b (id int);").await;
    adopt_then_apply(&db, "golang-migrate", &ours, &["1", "2"], "3").await;
}

#[tokio::test]
async fn flyway_history_is_adopted_with_its_checksums_and_versions_the_project_lacks_are_refused() {
    let db = PgDatabase::fresh().await;
    let (v1, v1_1) = ("CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n", "CREATE TABLE b (id int);\n");
    let crc = |text: &str| executor::adopt::flyway_checksum(text);
    // As Flyway creates its history table on Postgres, and the rows it writes for two versioned scripts.
    pg_run(
        &db,
        &format!(
            "CREATE TABLE \"public\".\"flyway_schema_history\" (\"installed_rank\" INT NOT NULL, \"version\" VARCHAR(50), \
             \"description\" VARCHAR(200) NOT NULL, \"type\" VARCHAR(20) NOT NULL, \"script\" VARCHAR(1000) NOT NULL, \
             \"checksum\" INTEGER, \"installed_by\" VARCHAR(100) NOT NULL, \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(), \
             \"execution_time\" INTEGER NOT NULL, \"success\" BOOLEAN NOT NULL); \
             ALTER TABLE \"public\".\"flyway_schema_history\" ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\"); \
             CREATE INDEX \"flyway_schema_history_s_idx\" ON \"public\".\"flyway_schema_history\" (\"success\"); \
             INSERT INTO flyway_schema_history VALUES (1, '1', 'a', 'SQL', 'V1__a.sql', {}, 'postgres', now(), 5, true), \
             (2, '1.1', 'b', 'SQL', 'V1_1__b.sql', {}, 'postgres', now(), 3, true), \
             (3, '9', 'gone', 'SQL', 'V9__gone.sql', 1, 'postgres', now(), 3, true); \
             CREATE TABLE a (id int); CREATE TABLE b (id int);",
            crc(v1),
            crc(v1_1)
        ),
    )
    .await;
    let ours = dir(&[("V1__a.sql", v1), ("V1_1__b.sql", v1_1), ("V2__c.sql", "CREATE TABLE c (id int);\n")]);
    let refused = cli(&["adopt", "--from", "flyway"], &ours, &db.url);
    assert!(!refused.status.success());
    assert!(out(&refused).contains("flyway applied versions the project does not have: 9"), "{}", out(&refused));
    pg_run(&db, "DELETE FROM flyway_schema_history WHERE version = '9'").await;
    adopt_then_apply(&db, "flyway", &ours, &["1", "1.1"], "2").await;
}

#[tokio::test]
async fn diesel_dbmate_and_refinery_histories_are_adopted() {
    // diesel, as diesel_migrations creates its table.
    let db = PgDatabase::fresh().await;
    pg_run(
        &db,
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20190226002946'); CREATE TABLE a (id int);",
    )
    .await;
    let ours = dir(&[
        ("2019-02-26-002946_a/up.sql", "CREATE TABLE a (id int);"),
        ("2019-02-26-002946_a/down.sql", "DROP TABLE a;"),
        ("2019-03-01-000000_b/up.sql", "CREATE TABLE b (id int);"),
        ("2019-03-01-000000_b/down.sql", "DROP TABLE b;"),
    ]);
    adopt_then_apply(&db, "diesel", &ours, &["20190226002946"], "20190301000000").await;

    // dbmate, as it creates its table on Postgres.
    let db = PgDatabase::fresh().await;
    pg_run(
        &db,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) primary key); \
         INSERT INTO schema_migrations (version) VALUES ('20200101000001'); CREATE TABLE a (id int);",
    )
    .await;
    let dbmate = |table: &str| {
        format!("-- migrate:up\nCREATE TABLE {table} (id int);\n\n-- migrate:down\nDROP TABLE {table};\n")
    };
    let ours = dir(&[("20200101000001_a.sql", &dbmate("a")), ("20200101000002_b.sql", &dbmate("b"))]);
    adopt_then_apply(&db, "dbmate", &ours, &["20200101000001"], "20200101000002").await;

    // refinery, as it creates its table.
    let db = PgDatabase::fresh().await;
    pg_run(
        &db,
        "CREATE TABLE IF NOT EXISTS refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), \
         applied_on VARCHAR(255), checksum VARCHAR(255)); \
         INSERT INTO refinery_schema_history VALUES (1, 'a', '2024-01-01T00:00:00Z', '1234567890'); \
         CREATE TABLE a (id int);",
    )
    .await;
    let ours = dir(&[("V1__a.sql", "CREATE TABLE a (id int);"), ("V2__b.sql", "CREATE TABLE b (id int);")]);
    adopt_then_apply(&db, "refinery", &ours, &["1"], "2").await;
}

#[tokio::test]
async fn golang_migrate_on_mariadb_is_adopted_and_a_missing_table_is_named() {
    let db = MySqlDatabase::fresh().await;
    let files = [("1_a.up.sql", "CREATE TABLE a (id int);"), ("2_b.up.sql", "CREATE TABLE b (id int);")];
    let ours = dir(&files);
    let missing = cli(&["adopt", "--from", "golang-migrate"], &ours, &db.url);
    assert!(!missing.status.success());
    assert!(out(&missing).contains("history table schema_migrations does not exist"), "{}", out(&missing));
    // As golang-migrate's mysql driver creates its table.
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS `schema_migrations` (version bigint not null primary key, dirty boolean not null); \
         INSERT INTO schema_migrations VALUES (1, 0); CREATE TABLE a (id int);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let done = cli(&["adopt", "--from", "golang-migrate"], &ours, &db.url);
    assert!(done.status.success() && out(&done).contains("recorded=1 already=0"), "{}", out(&done));
    let applied = cli(&["apply"], &ours, &db.url);
    assert!(out(&applied).contains("applied=1 skipped=1"), "{}", out(&applied));
    std::fs::remove_dir_all(&ours).unwrap();
}

#[tokio::test]
async fn baseline_records_up_to_a_version_and_refuses_an_unknown_one() {
    let db = PgDatabase::fresh().await;
    let ours = dir(&[
        ("0001_a.sql", "CREATE TABLE a (id int);"),
        ("0002_b.sql", "CREATE TABLE b (id int);"),
        ("0003_c.sql", "CREATE TABLE c (id int);"),
    ]);
    let unknown = cli(&["baseline", "--to", "0007"], &ours, &db.url);
    assert!(
        !unknown.status.success() && out(&unknown).contains("version 0007 is not one of the project's"),
        "{}",
        out(&unknown)
    );
    let done = cli(&["baseline", "--to", "0002"], &ours, &db.url);
    assert!(done.status.success() && out(&done).contains("recorded=2 already=0"), "{}", out(&done));
    let versions = pg_versions(&db).await;
    assert_eq!(versions.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(), ["0001", "0002"]);
    assert!(versions[0].1.starts_with("baseline to 0002"), "{versions:?}");
    let applied = cli(&["apply"], &ours, &db.url);
    assert!(out(&applied).contains("applied=1 skipped=2"), "{}", out(&applied));
    std::fs::remove_dir_all(&ours).unwrap();
}

/// The dbmate binary (npm `@dbmate/linux-x64`, dbmate's own build for this platform, pinned by
/// `tests/tools/package-lock.json`; `cargo xtask test` installs it).
fn dbmate(url: &str, dir: &Path) -> Output {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/@dbmate/linux-x64/bin/dbmate");
    assert!(bin.exists(), "{} is missing: run `npm ci` in tests/tools (cargo xtask test does)", bin.display());
    Command::new(bin)
        .args(["--no-dump-schema", "--migrations-dir"])
        .arg(dir)
        .arg("up")
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

#[tokio::test]
async fn histories_dbmate_itself_wrote_are_adopted_on_postgres_and_mariadb() {
    let file = |table: &str| {
        format!("-- migrate:up\nCREATE TABLE {table} (id int);\n\n-- migrate:down\nDROP TABLE {table};\n")
    };
    let (a, b, c) = (file("a"), file("b"), file("c"));
    // dbmate applied the first two; the project has a third since.
    let applied = [("20240101000001_a.sql", a.as_str()), ("20240101000002_b.sql", b.as_str())];
    let ours = [applied[0], applied[1], ("20240101000003_c.sql", c.as_str())];

    let pg = PgDatabase::fresh().await;
    let theirs = dir(&applied);
    let url = if pg.url.contains('?') {
        format!("{}&sslmode=disable", pg.url)
    } else {
        format!("{}?sslmode=disable", pg.url)
    };
    let made = dbmate(&url, &theirs);
    assert!(made.status.success(), "dbmate: {}", out(&made));
    let adopted = dir(&ours);
    adopt_then_apply(&pg, "dbmate", &adopted, &["20240101000001", "20240101000002"], "20240101000003").await;

    let my = MySqlDatabase::fresh().await;
    let made = dbmate(&my.url, &theirs);
    assert!(made.status.success(), "dbmate: {}", out(&made));
    let adopted = dir(&ours);
    let done = cli(&["adopt", "--from", "dbmate"], &adopted, &my.url);
    assert!(out(&done).contains("recorded=2 already=0"), "{}", out(&done));
    let applied_now = cli(&["apply"], &adopted, &my.url);
    assert!(
        out(&applied_now).contains("applied 20240101000003") && out(&applied_now).contains("applied=1 skipped=2"),
        "{}",
        out(&applied_now)
    );
    let versions: Vec<String> =
        sqlx::query_scalar("SELECT version FROM migrate_hub_history WHERE status = 'applied' ORDER BY version")
            .fetch_all(&my.pool)
            .await
            .unwrap();
    assert_eq!(versions, ["20240101000001", "20240101000002", "20240101000003"]);
    std::fs::remove_dir_all(theirs).unwrap();
    std::fs::remove_dir_all(adopted).unwrap();
}

/// Runs sql-migrate (Debian's `sql-migrate`, which `.ci/run` installs) `up` on the database of `url` with the
/// migrations of `dir`, through the config file it reads.
fn sql_migrate(url: &str, dir: &Path) -> Output {
    let url = reqwest::Url::parse(url).unwrap();
    let (host, port, user, database) =
        (url.host_str().unwrap(), url.port().unwrap(), url.username(), url.path().trim_start_matches('/'));
    let (dialect, datasource) = if url.scheme().starts_with("postgres") {
        ("postgres", format!("host={host} port={port} user={user} dbname={database} sslmode=disable"))
    } else {
        ("mysql", format!("{user}@tcp({host}:{port})/{database}?parseTime=true"))
    };
    let config = dir.with_extension("yml");
    let text = format!("test:\n  dialect: {dialect}\n  datasource: {datasource}\n  dir: {}\n", dir.display());
    std::fs::write(&config, text).unwrap();
    let bin = std::env::var("SQL_MIGRATE").unwrap_or_else(|_| "sql-migrate".into());
    let output = Command::new(&bin)
        .args(["up", "-env=test"])
        .arg(format!("-config={}", config.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("{bin}: {e}: install the Debian package sql-migrate (.ci/run does) or set SQL_MIGRATE")
        });
    std::fs::remove_file(config).unwrap();
    output
}

#[tokio::test]
async fn histories_sql_migrate_itself_wrote_are_adopted_on_postgres_and_mariadb() {
    let file = |table: &str| {
        format!("-- +migrate Up\nCREATE TABLE {table} (id int);\n\n-- +migrate Down\nDROP TABLE {table};\n")
    };
    let (a, b, c) = (file("a"), file("b"), file("c"));
    let applied = [("1_a.sql", a.as_str()), ("2_b.sql", b.as_str())];
    let ours = [applied[0], applied[1], ("3_c.sql", c.as_str())];
    let pg = PgDatabase::fresh().await;
    let theirs = dir(&applied);
    let made = sql_migrate(&pg.url, &theirs);
    assert!(made.status.success(), "sql-migrate: {}", out(&made));
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM gorp_migrations ORDER BY id").fetch_all(&pg.pool).await.unwrap();
    assert_eq!(ids, ["1_a.sql", "2_b.sql"], "as sql-migrate records them");
    adopt_then_apply(&pg, "sql-migrate", &dir(&ours), &["1", "2"], "3").await;

    let my = MySqlDatabase::fresh().await;
    let made = sql_migrate(&my.url, &theirs);
    assert!(made.status.success(), "sql-migrate: {}", out(&made));
    let adopted = dir(&ours);
    let done = cli(&["adopt", "--from", "sql-migrate"], &adopted, &my.url);
    assert!(out(&done).contains("recorded=2 already=0"), "{}", out(&done));
    let next = cli(&["apply"], &adopted, &my.url);
    assert!(out(&next).contains("applied 3") && out(&next).contains("applied=1 skipped=2"), "{}", out(&next));
    std::fs::remove_dir_all(theirs).unwrap();
    std::fs::remove_dir_all(adopted).unwrap();
}

/// A tool `cargo xtask test` builds into `target/tools` (sqlx-cli's `sqlx`, diesel_cli's `diesel`).
fn cargo_tool(bin: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin").join(bin);
    assert!(path.exists(), "{} is missing: cargo xtask test installs it", path.display());
    path
}

#[tokio::test]
async fn histories_sqlx_cli_and_diesel_cli_themselves_wrote_are_adopted() {
    // sqlx-cli, on Postgres and MariaDB: its checksums (SHA-384 of each file) are compared with ours.
    let applied = [("0001_a.sql", "CREATE TABLE a (id int);\n"), ("0002_b.sql", "CREATE TABLE b (id int);\n")];
    let ours = [applied[0], applied[1], ("0003_c.sql", "CREATE TABLE c (id int);\n")];
    let sqlx_run = |url: &str, dir: &Path| {
        // Run in the migrations' own folder, where no sqlx.toml can change what it does.
        Command::new(cargo_tool("sqlx"))
            .current_dir(dir)
            .args(["migrate", "run", "--database-url", url, "--source"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let pg = PgDatabase::fresh().await;
    let theirs = dir(&applied);
    let made = sqlx_run(&pg.url, &theirs);
    assert!(made.status.success(), "sqlx-cli: {}", out(&made));
    adopt_then_apply(&pg, "sqlx", &dir(&ours), &["0001", "0002"], "0003").await;
    // A file edited since sqlx-cli applied it is refused, naming it.
    let pg = PgDatabase::fresh().await;
    assert!(sqlx_run(&pg.url, &theirs).status.success());
    let edited = dir(&[applied[0], ("0002_b.sql", "CREATE TABLE b (id bigint);\n")]);
    let refused = cli(&["adopt", "--from", "sqlx"], &edited, &pg.url);
    assert!(!refused.status.success() && out(&refused).contains("differ from the files for 2"), "{}", out(&refused));
    let my = MySqlDatabase::fresh().await;
    let made = sqlx_run(&my.url, &theirs);
    assert!(made.status.success(), "sqlx-cli: {}", out(&made));
    let adopted = dir(&ours);
    let done = cli(&["adopt", "--from", "sqlx"], &adopted, &my.url);
    assert!(out(&done).contains("recorded=2 already=0"), "{}", out(&done));
    let next = cli(&["apply"], &adopted, &my.url);
    assert!(out(&next).contains("applied 0003") && out(&next).contains("applied=1 skipped=2"), "{}", out(&next));

    // diesel_cli, on Postgres: it records the folder's timestamp without its dashes.
    let applied = [
        ("2024-01-01-000001_a/up.sql", "CREATE TABLE a (id int);"),
        ("2024-01-01-000001_a/down.sql", "DROP TABLE a;"),
        ("2024-01-02-000001_b/up.sql", "CREATE TABLE b (id int);"),
        ("2024-01-02-000001_b/down.sql", "DROP TABLE b;"),
    ];
    let mut ours = applied.to_vec();
    ours.extend([
        ("2024-01-03-000001_c/up.sql", "CREATE TABLE c (id int);"),
        ("2024-01-03-000001_c/down.sql", "DROP TABLE c;"),
    ]);
    let pg = PgDatabase::fresh().await;
    let theirs = dir(&applied);
    let made = Command::new(cargo_tool("diesel"))
        .current_dir(&theirs)
        .args(["migration", "run", "--database-url", &pg.url, "--migration-dir"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(made.status.success(), "diesel: {}", out(&made));
    adopt_then_apply(&pg, "diesel", &dir(&ours), &["20240101000001", "20240102000001"], "20240103000001").await;
    std::fs::remove_dir_all(theirs).unwrap();
    std::fs::remove_dir_all(adopted).unwrap();
}
