//! The `migrate-hub` command line tool in local mode, on real migration sets from `../shared/workloads`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use migrate_hub_tests::{MySqlDatabase, PgDatabase, binary};

fn workload(path: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workloads").join(path);
    assert!(dir.exists(), "workload {} missing", dir.display());
    dir
}

/// Runs the CLI on `dir` against the database at `url` (also used by `adopt.rs`).
pub(crate) fn cli(args: &[&str], dir: &Path, url: &str) -> Output {
    Command::new(binary("migrate-hub"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("MIGRATE_HUB_DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn river_applies_once_then_reports_nothing_to_do_and_refuses_an_edited_file() {
    let db = PgDatabase::fresh().await;
    let river = workload("river/riverdriver/riverpgxv5/migration/main");
    let first = cli(&["apply", "--placeholders", "river", "--var", "schema=public"], &river, &db.url);
    assert!(first.status.success(), "{}{}", stdout(&first), stderr(&first));
    assert!(stdout(&first).ends_with("applied=7 skipped=0 failed=0\n"), "{}", stdout(&first));
    let jobs: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public.river_job')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(jobs.as_deref(), Some("river_job"));

    let second = cli(&["apply", "--placeholders", "river", "--var", "schema=public"], &river, &db.url);
    assert!(stdout(&second).ends_with("applied=0 skipped=7 failed=0\n"), "{}", stdout(&second));
    let status = cli(&["status", "--placeholders", "river", "--var", "schema=public"], &river, &db.url);
    assert!(stdout(&status).ends_with("pending=0 applied=7\n"), "{}", stdout(&status));

    // Down two versions, then apply brings them back.
    let down = cli(&["down", "--steps", "2", "--placeholders", "river", "--var", "schema=public"], &river, &db.url);
    assert!(down.status.success(), "{}{}", stdout(&down), stderr(&down));
    assert!(stdout(&down).contains("reverted 007") && stdout(&down).contains("reverted 006"), "{}", stdout(&down));
    let outbox: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public.river_notification')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(outbox, None, "007's table is gone");
    let again = cli(&["apply", "--placeholders", "river", "--var", "schema=public"], &river, &db.url);
    assert!(stdout(&again).ends_with("applied=2 skipped=5 failed=0\n"), "{}", stdout(&again));

    // An applied file edited afterwards: status and apply both refuse.
    let copy = std::env::temp_dir().join(format!("river-{}", db.name));
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&river).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let edited = copy.join("003_river_job_tags_non_null.up.sql");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, format!("{text}\n-- edited after it was applied\n")).unwrap();
    let drift = cli(&["status", "--placeholders", "river", "--var", "schema=public"], &copy, &db.url);
    assert!(!drift.status.success());
    assert!(stdout(&drift).contains("drifted  003"), "{}", stdout(&drift));
    let refused = cli(&["apply", "--placeholders", "river", "--var", "schema=public"], &copy, &db.url);
    assert!(!refused.status.success());
    assert!(stdout(&refused).ends_with("applied=0 skipped=2 failed=1\n"), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains(
            "003_river_job_tags_non_null.up.sql: version 003: version 003 was applied with different content"
        ),
        "{}",
        stderr(&refused)
    );
    std::fs::remove_dir_all(&copy).unwrap();
}

#[tokio::test]
async fn ranger_mysql_baseline_with_delimiters_applies_and_patches_are_read() {
    let db = MySqlDatabase::fresh().await;
    let patches = workload("apache-ranger/security-admin/db/mysql/patches");
    // Ranger's loader runs the `audit/` subfolder's patches on their own: without the flag the CLI stops
    // and names them rather than skip them silently.
    let refused = cli(&["status"], &patches, &db.url);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("skipping audit/"), "{}", stderr(&refused));
    let plan = cli(&["status", "--allow-unknown-files"], &patches, &db.url);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let files = std::fs::read_dir(&patches).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count();
    let pending = stdout(&plan).lines().filter(|l| l.starts_with("pending ")).count();
    assert_eq!(pending, files, "{}", stdout(&plan));

    // The baseline schema (DELIMITER $$ procedures, commit; lines) under a versioned name.
    let baseline = workload("apache-ranger/security-admin/db/mysql/optimized/current/ranger_core_db_mysql.sql");
    let dir = std::env::temp_dir().join(format!("ranger-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&baseline, dir.join("000-baseline.sql")).unwrap();
    let applied = cli(&["apply"], &dir, &db.url);
    assert!(applied.status.success(), "{}{}", stdout(&applied), stderr(&applied));
    assert!(stdout(&applied).ends_with("applied=1 skipped=0 failed=0\n"), "{}", stdout(&applied));
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'x\\_%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(tables > 50, "ranger tables: {tables}");
    let again = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&again).ends_with("applied=0 skipped=1 failed=0\n"), "{}", stdout(&again));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory holding one four-statement migration, as a no-transaction migration when `no_transaction`.
fn four_statements(name: &str, no_transaction: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let header = if no_transaction { "-- no-transaction\n" } else { "" };
    let body: String = (1..=4).map(|i| format!("CREATE TABLE crash_{i} (id int);\n")).collect();
    std::fs::write(dir.join("0001_four_tables.sql"), format!("{header}{body}")).unwrap();
    dir
}

fn crash_before(dir: &Path, url: &str, statement: usize) -> Output {
    Command::new(binary("migrate-hub"))
        .args(["apply", "--dir"])
        .arg(dir)
        .env("MIGRATE_HUB_DATABASE_URL", url)
        .env("MIGRATE_HUB_FAILPOINT_ABORT_BEFORE_STATEMENT", statement.to_string())
        .output()
        .unwrap()
}

async fn pg_tables(db: &PgDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'crash\\_%'")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn pg_history(db: &PgDatabase) -> Vec<(String, i32)> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('migrate_hub_history') IS NOT NULL").fetch_one(&db.pool).await.unwrap();
    if !exists {
        return Vec::new();
    }
    sqlx::query_as("SELECT status, statements_done FROM migrate_hub_history").fetch_all(&db.pool).await.unwrap()
}

#[tokio::test]
async fn a_crash_in_a_postgres_transaction_leaves_all_or_nothing() {
    // A Postgres migration in a transaction is one message (statements, history row, COMMIT): the client can
    // die before it is sent, or while the server runs it.
    let dir = four_statements(&format!("crash-tx-{}", uuid::Uuid::new_v4()), false);
    let db = PgDatabase::fresh().await;
    let crashed = crash_before(&dir, &db.url, 0);
    assert!(!crashed.status.success(), "the failpoint must abort");
    assert!(stderr(&crashed).contains("aborting before statement 0"), "{}", stderr(&crashed));
    assert_eq!(pg_tables(&db).await, 0, "nothing may remain");
    assert_eq!(pg_history(&db).await, vec![], "no history row");
    let retried = cli(&["apply"], &dir, &db.url);
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert_eq!((pg_tables(&db).await, pg_history(&db).await), (4, vec![("applied".to_owned(), 4)]));
    std::fs::remove_dir_all(&dir).unwrap();

    // Killed while the server sleeps in the middle of the migration: whatever the server did with the rest
    // of the message, the tables and the history agree, and applying again completes it exactly once.
    let dir = std::env::temp_dir().join(format!("crash-tx-sleep-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = "CREATE TABLE crash_1 (id int);\nCREATE TABLE crash_2 (id int);\nSELECT pg_sleep(0.6);\n\
                CREATE TABLE crash_3 (id int);\nCREATE TABLE crash_4 (id int);\n";
    std::fs::write(dir.join("0001_four_tables.sql"), body).unwrap();
    let db = PgDatabase::fresh().await;
    let mut child = Command::new(binary("migrate-hub"))
        .args(["apply", "--dir"])
        .arg(&dir)
        .env("MIGRATE_HUB_DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    // The server finishes (or abandons) the message on its own; wait until its session is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'migrate-hub'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if busy == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the killed client's session never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tables, history) = (pg_tables(&db).await, pg_history(&db).await);
    assert!(
        (tables, history.clone()) == (0, vec![]) || (tables, history.clone()) == (4, vec![("applied".to_owned(), 5)]),
        "all or nothing: {tables} tables, history {history:?}"
    );
    let retried = cli(&["apply"], &dir, &db.url);
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert_eq!((pg_tables(&db).await, pg_history(&db).await), (4, vec![("applied".to_owned(), 5)]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_crash_without_a_transaction_is_recorded_and_needs_recovery() {
    let dir = four_statements(&format!("crash-none-{}", uuid::Uuid::new_v4()), true);
    for i in 1..4 {
        let db = PgDatabase::fresh().await;
        assert!(!crash_before(&dir, &db.url, i).status.success());
        assert_eq!(pg_tables(&db).await, i64::try_from(i).unwrap());
        assert_eq!(pg_history(&db).await, vec![("running".to_owned(), i32::try_from(i).unwrap())]);
        let refused = cli(&["apply"], &dir, &db.url);
        assert!(!refused.status.success());
        assert!(stderr(&refused).contains("needs recovery"), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("migrate-hub repair --version 0001"), "{}", stderr(&refused));
        assert!(stdout(&refused).ends_with("applied=0 skipped=0 failed=1\n"), "{}", stdout(&refused));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_crash_on_mysql_is_recorded_and_needs_recovery() {
    let dir = four_statements(&format!("crash-my-{}", uuid::Uuid::new_v4()), false);
    for i in 1..4 {
        let db = MySqlDatabase::fresh().await;
        assert!(!crash_before(&dir, &db.url, i).status.success());
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'crash\\_%'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(tables, i64::try_from(i).unwrap());
        let history: Vec<(String, i32)> = sqlx::query_as("SELECT status, statements_done FROM migrate_hub_history")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(history, vec![("running".to_owned(), i32::try_from(i).unwrap())]);
        let refused = cli(&["apply"], &dir, &db.url);
        assert!(stderr(&refused).contains("needs recovery"), "{}", stderr(&refused));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn commit_lines_are_refused_in_a_transaction_and_run_with_no_transaction() {
    let db = PgDatabase::fresh().await;
    let dir = std::env::temp_dir().join(format!("commit-lines-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("001-with-commits.sql"), "CREATE TABLE a (id int);\ncommit;\nCREATE TABLE b (id int);\n")
        .unwrap();
    let refused = cli(&["apply"], &dir, &db.url);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(
            "statement 2 (COMMIT) cannot run inside a transaction: mark the migration no-transaction (nothing was run)"
        ),
        "{}",
        stderr(&refused)
    );
    let a: Option<String> = sqlx::query_scalar("SELECT to_regclass('a')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(a, None);
    let applied = cli(&["apply", "--no-transaction"], &dir, &db.url);
    assert!(stdout(&applied).ends_with("applied=1 skipped=0 failed=0\n"), "{}{}", stdout(&applied), stderr(&applied));
    let b: Option<String> = sqlx::query_scalar("SELECT to_regclass('b')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(b.as_deref(), Some("b"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn own_set(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(name)
}

/// Our own sets in the layouts the shared workloads do not cover: each applies, applies again as all
/// skipped, and (where it has downs) reverts completely.
#[tokio::test]
async fn diesel_morph_refinery_pop_option_and_sql_migrate_sets_apply_as_published() {
    let cases: [(&str, &[&str], usize, bool); 5] = [
        ("diesel-blog", &[], 4, true),
        ("morph-shop", &[], 2, true),
        ("refinery-notes", &[], 3, false),
        ("pop-options", &["--placeholders", "go", "--var", "Namespace=public"], 2, true),
        ("sql-migrate-tasks", &[], 3, true),
    ];
    for (set, extra, count, downs) in cases {
        let db = PgDatabase::fresh().await;
        let dir = own_set(set);
        let args = |verb: &[&'static str]| -> Vec<&'static str> { [verb, extra].concat() };
        let first = cli(&args(&["apply"]), &dir, &db.url);
        assert!(first.status.success(), "{set}: {}{}", stdout(&first), stderr(&first));
        assert!(
            stdout(&first).ends_with(&format!("applied={count} skipped=0 failed=0\n")),
            "{set}: {}",
            stdout(&first)
        );
        let again = cli(&args(&["apply"]), &dir, &db.url);
        assert!(
            stdout(&again).ends_with(&format!("applied=0 skipped={count} failed=0\n")),
            "{set}: {}",
            stdout(&again)
        );
        if downs {
            let steps = count.to_string();
            let mut down_args = vec!["down", "--steps", steps.as_str()];
            down_args.extend_from_slice(extra);
            let down = cli(&down_args, &dir, &db.url);
            assert!(down.status.success(), "{set}: {}{}", stdout(&down), stderr(&down));
            let rows: i64 =
                sqlx::query_scalar("SELECT count(*) FROM migrate_hub_history").fetch_one(&db.pool).await.unwrap();
            assert_eq!(rows, 0, "{set}: every version reverted");
        }
    }
    // diesel's version is the folder's timestamp without dashes, as diesel records it; the index built
    // outside a transaction (metadata.toml) is there.
    let db = PgDatabase::fresh().await;
    assert!(cli(&["apply"], &own_set("diesel-blog"), &db.url).status.success());
    let versions: Vec<String> = sqlx::query_scalar("SELECT version FROM migrate_hub_history ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(versions, ["00000000000000", "20240110120000", "20240111090000", "20240112080000"]);
    let index: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('blog_posts_author')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(index.as_deref(), Some("blog_posts_author"));
}

/// A directory with files its layout does not read stops before the database, naming each one; an empty
/// one says there is nothing to run. Neither is a silent `applied=0`.
#[tokio::test]
async fn unread_files_and_empty_directories_are_never_a_silent_no_op() {
    let db = PgDatabase::fresh().await;
    let dir = std::env::temp_dir().join(format!("unread-{}", db.name));
    std::fs::create_dir_all(dir.join("versioned/v1.2")).unwrap();
    std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE unread_a (id int);").unwrap();
    std::fs::write(dir.join("versioned/v1.2/0002_b.sql"), "CREATE TABLE unread_b (id int);").unwrap();
    std::fs::write(dir.join("notes.txt"), "why").unwrap();
    let refused = cli(&["apply"], &dir, &db.url);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    let err = stderr(&refused);
    assert!(err.contains("skipping versioned/v1.2/0002_b.sql") && err.contains("skipping notes.txt"), "{err}");
    assert!(err.contains("--allow-unknown-files"), "{err}");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'unread%'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(tables, 0, "nothing ran");
    let allowed = cli(&["apply", "--allow-unknown-files"], &dir, &db.url);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert!(stdout(&allowed).ends_with("applied=1 skipped=0 failed=0\n"), "{}", stdout(&allowed));

    let empty = std::env::temp_dir().join(format!("empty-{}", db.name));
    std::fs::create_dir_all(&empty).unwrap();
    let nothing = cli(&["apply"], &empty, &db.url);
    assert!(!nothing.status.success());
    assert!(stderr(&nothing).contains("no migration found"), "{}", stderr(&nothing));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}

#[tokio::test]
async fn a_dirty_postgres_target_is_resumed_or_marked_and_down_refuses_it_meanwhile() {
    let dir = four_statements(&format!("repair-pg-{}", uuid::Uuid::new_v4()), true);
    // Resume: the two statements left run, and the version is applied.
    let db = PgDatabase::fresh().await;
    assert!(!crash_before(&dir, &db.url, 2).status.success());
    assert_eq!(pg_history(&db).await, vec![("running".to_owned(), 2)]);
    let down = cli(&["down", "--steps", "1"], &dir, &db.url);
    assert!(!down.status.success());
    assert!(
        stderr(&down).contains("0001 is dirty") && stderr(&down).contains("migrate-hub repair"),
        "{}",
        stderr(&down)
    );
    assert_eq!(pg_tables(&db).await, 2, "down reverted nothing");
    let resumed = cli(&["repair", "--version", "0001", "--resume"], &dir, &db.url);
    assert!(resumed.status.success(), "{}{}", stdout(&resumed), stderr(&resumed));
    assert_eq!(stdout(&resumed), "repaired 0001: resumed, 2 statement(s) ran, applied\n");
    assert_eq!(pg_tables(&db).await, 4);
    assert_eq!(pg_history(&db).await, vec![("applied".to_owned(), 4)]);
    let again = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&again).ends_with("applied=0 skipped=1 failed=0\n"), "{}", stdout(&again));
    // A row that is not dirty is refused, and says why.
    let refused = cli(&["repair", "--version", "0001", "--mark-rolled-back"], &dir, &db.url);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("0001 is applied, not dirty"), "{}", stderr(&refused));

    // Marked rolled back after undoing by hand: the version is pending again and applies whole.
    let db = PgDatabase::fresh().await;
    assert!(!crash_before(&dir, &db.url, 1).status.success());
    sqlx::raw_sql("DROP TABLE crash_1").execute(&db.pool).await.unwrap();
    let marked = cli(&["repair", "--version", "0001", "--mark-rolled-back"], &dir, &db.url);
    assert!(marked.status.success(), "{}", stderr(&marked));
    assert!(pg_history(&db).await.is_empty());
    let applied = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&applied).ends_with("applied=1 skipped=0 failed=0\n"), "{}", stdout(&applied));

    // Marked applied after finishing by hand.
    let db = PgDatabase::fresh().await;
    assert!(!crash_before(&dir, &db.url, 3).status.success());
    sqlx::raw_sql("CREATE TABLE crash_4 (id int)").execute(&db.pool).await.unwrap();
    let marked = cli(&["repair", "--version", "0001", "--mark-applied"], &dir, &db.url);
    assert!(marked.status.success(), "{}", stderr(&marked));
    assert_eq!(pg_history(&db).await, vec![("applied".to_owned(), 4)]);
    // Exactly one resolution.
    let none = cli(&["repair", "--version", "0001"], &dir, &db.url);
    assert!(!none.status.success() && stderr(&none).contains("required"), "{}", stderr(&none));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_dirty_mariadb_target_is_resumed_and_an_edited_file_is_not() {
    let dir = four_statements(&format!("repair-my-{}", uuid::Uuid::new_v4()), false);
    let db = MySqlDatabase::fresh().await;
    assert!(!crash_before(&dir, &db.url, 1).status.success());
    let history = || async {
        sqlx::query_as::<_, (String, i32)>("SELECT status, statements_done FROM migrate_hub_history")
            .fetch_all(&db.pool)
            .await
            .unwrap()
    };
    assert_eq!(history().await, vec![("running".to_owned(), 1)]);
    // Other content than what ran: refused, nothing changed.
    let edited = four_statements(&format!("repair-my-edited-{}", uuid::Uuid::new_v4()), false);
    let path = edited.join("0001_four_tables.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("crash_4 (id int)", "crash_4 (id bigint)")).unwrap();
    let refused = cli(&["repair", "--version", "0001", "--resume"], &edited, &db.url);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("its content differs from what ran"), "{}", stderr(&refused));
    assert_eq!(history().await, vec![("running".to_owned(), 1)]);
    let resumed = cli(&["repair", "--version", "0001", "--resume"], &dir, &db.url);
    assert!(resumed.status.success(), "{}{}", stdout(&resumed), stderr(&resumed));
    assert_eq!(stdout(&resumed), "repaired 0001: resumed, 3 statement(s) ran, applied\n");
    assert_eq!(history().await, vec![("applied".to_owned(), 4)]);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&edited).unwrap();
}

#[tokio::test]
async fn every_command_says_what_it_did_or_why_it_did_nothing() {
    let db = PgDatabase::fresh().await;
    let river = workload("river/riverdriver/riverpgxv5/migration/main");
    // River's markers without --placeholders river: said before anything runs, naming the variable.
    let unsubstituted = cli(&["apply"], &river, &db.url);
    assert!(!unsubstituted.status.success());
    assert!(
        stderr(&unsubstituted).contains("River's `/* TEMPLATE: name */` placeholders (schema)")
            && stderr(&unsubstituted).contains("--placeholders river"),
        "{}",
        stderr(&unsubstituted)
    );
    let river_args = ["--placeholders", "river", "--var", "schema=public"];
    let dry = cli(&[&["apply", "--dry-run"][..], &river_args].concat(), &river, &db.url);
    assert!(stdout(&dry).ends_with("would_apply=7 skipped=0 failed=0\n"), "{}", stdout(&dry));
    let nothing = cli(&[&["down", "--steps", "1"][..], &river_args].concat(), &river, &db.url);
    assert!(nothing.status.success());
    assert!(stdout(&nothing).ends_with("reverted=0 skipped=0 failed=0\n"), "{}", stdout(&nothing));
    assert!(
        stderr(&nothing).contains("nothing to roll back: no version of the directory is applied"),
        "{}",
        stderr(&nothing)
    );
    assert!(cli(&[&["apply"][..], &river_args].concat(), &river, &db.url).status.success());
    let down = cli(&[&["down", "--steps", "1"][..], &river_args].concat(), &river, &db.url);
    assert!(stdout(&down).ends_with("reverted=1 skipped=0 failed=0\n"), "{}", stdout(&down));
}

#[test]
fn new_makes_the_next_file_in_the_directory_layout() {
    let made = |files: &[(&str, &str)], args: &[&str]| {
        let dir = std::env::temp_dir().join(format!("new-{}", uuid::Uuid::new_v4()));
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let output = cli(&[&["new"][..], args].concat(), &dir, "postgres://unused@127.0.0.1:1/none");
        assert!(output.status.success(), "{}", stderr(&output));
        let created: Vec<String> = stdout(&output)
            .lines()
            .map(|l| l.strip_prefix("created ").unwrap().strip_prefix(dir.to_str().unwrap()).unwrap()[1..].to_owned())
            .collect();
        for path in &created {
            assert!(dir.join(path).is_file(), "{path}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        created
    };
    assert_eq!(made(&[("0009_a.sql", "SELECT 1;")], &["Add Email!"]), ["0010_add_email.sql"]);
    assert_eq!(
        made(&[("1_a.up.sql", "SELECT 1;"), ("1_a.down.sql", "SELECT 1;")], &["b"]),
        ["2_b.up.sql", "2_b.down.sql"]
    );
    assert_eq!(made(&[("V1_1__a.sql", "SELECT 1;")], &["b"]), ["V2__b.sql"]);
    assert_eq!(made(&[], &["first", "--sequential"]), ["0001_first.sql"]);
    let goose = made(&[("00003_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 1;\n")], &["b"]);
    assert_eq!(goose, ["00004_b.sql"]);
    // Timestamps where the directory uses them (diesel's with its dashes), always after the newest.
    let diesel = made(&[("2019-02-26-002946_a/up.sql", "SELECT 1;")], &["b"]);
    assert!(diesel[0].ends_with("_b/up.sql") && diesel[1].ends_with("_b/down.sql"), "{diesel:?}");
    assert!(diesel[0].as_str() > "2019-02-26-002946", "{diesel:?}");
    let future = made(&[("29990101000000_a.sql", "SELECT 1;")], &["b"]);
    assert_eq!(future, ["29990101000001_b.sql"]);
    let dbmate = made(&[("20200101000001_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n")], &["b"]);
    assert!(dbmate[0].len() == "20261204000000_b.sql".len() && dbmate[0].as_str() > "20200101000001", "{dbmate:?}");
    // A name with nothing in it is refused, nothing made.
    let dir = std::env::temp_dir().join(format!("new-{}", uuid::Uuid::new_v4()));
    let refused = cli(&["new", "!-!"], &dir, "postgres://unused@127.0.0.1:1/none");
    assert!(
        !refused.status.success() && stderr(&refused).contains("the name needs letters or digits"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn flyway_repeatables_run_after_the_versions_and_again_when_they_change() {
    let db = PgDatabase::fresh().await;
    let dir = std::env::temp_dir().join(format!("repeatable-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("V1__a.sql", "CREATE TABLE a (x int);\n");
    write("V2__b.sql", "INSERT INTO a VALUES (1);\n");
    write("R__view.sql", "CREATE OR REPLACE VIEW v AS SELECT x FROM a;\n");
    let first = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&first).ends_with("applied=3 skipped=0 failed=0\n"), "{}{}", stdout(&first), stderr(&first));
    assert!(stdout(&first).lines().nth(2).unwrap().starts_with("applied R__view"), "{}", stdout(&first));
    let again = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&again).ends_with("applied=0 skipped=3 failed=0\n"), "{}", stdout(&again));
    // Changed: pending again (not drift), and it runs again; its row is replaced.
    write("R__view.sql", "CREATE OR REPLACE VIEW v AS SELECT x, x * 2 AS y FROM a;\n");
    let status = cli(&["status"], &dir, &db.url);
    assert!(stdout(&status).contains("pending  R__view"), "{}", stdout(&status));
    let rerun = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&rerun).ends_with("applied=1 skipped=2 failed=0\n"), "{}{}", stdout(&rerun), stderr(&rerun));
    let y: i32 = sqlx::query_scalar("SELECT y FROM v").fetch_one(&db.pool).await.unwrap();
    assert_eq!(y, 2);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM migrate_hub_history WHERE version = 'R__view'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // A new version after it is not out of order; a down never reverts the repeatable.
    write("V3__c.sql", "CREATE TABLE c (id int);\n");
    write("U3__c.sql", "DROP TABLE c;\n");
    let more = cli(&["apply"], &dir, &db.url);
    assert!(stdout(&more).ends_with("applied=1 skipped=3 failed=0\n"), "{}{}", stdout(&more), stderr(&more));
    let down = cli(&["down", "--steps", "1"], &dir, &db.url);
    assert!(
        stdout(&down).contains("reverted 3 c") && stdout(&down).ends_with("reverted=1 skipped=0 failed=0\n"),
        "{}{}",
        stdout(&down),
        stderr(&down)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `migrate-hub lint`: the hub's SQL review on a directory, before anything runs. No database is involved.
#[test]
fn lint_finds_a_typo_before_it_runs_names_risky_statements_and_annotates_for_ci() {
    let dir = std::env::temp_dir().join(format!("lint-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("0001_customers.sql", "CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, name text);\n");
    write(
        "0002_orders.sql",
        "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY);\nCREAT INDEX orders_id ON orders (id);\n",
    );
    write(
        "0003_cleanup.sql",
        "-- migrate-hub:ignore ban-drop-column\nALTER TABLE customers DROP COLUMN name;\nDROP TABLE orders;\n",
    );
    let lint = |args: &[&str]| {
        Command::new(binary("migrate-hub"))
            .arg("lint")
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let text = lint(&[]);
    assert!(!text.status.success(), "a syntax error fails the lint: {}", stdout(&text));
    let out = stdout(&text);
    assert!(out.contains("0002_orders.sql:2:1: error syntax-error: "), "{out}");
    assert!(out.contains("0003_cleanup.sql:3:1: warning ban-drop-table: "), "{out}");
    assert!(out.contains("0003_cleanup.sql:2:23: info ban-drop-column: ") && out.contains("[ignored]"), "{out}");
    assert!(out.trim_end().ends_with("linted=3 scripts=3 errors=1 warnings=1 ignored=1"), "{out}");
    let github = stdout(&lint(&["--format", "github"]));
    assert!(github.contains("::error file=0002_orders.sql,line=2,col=1,title=syntax-error::"), "{github}");
    assert!(github.contains("::warning file=0003_cleanup.sql,line=3,col=1,title=ban-drop-table::"), "{github}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&lint(&["--format", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3, "{json}");
    assert_eq!((json[0]["rule"].as_str(), json[0]["statement"].as_u64()), (Some("syntax-error"), Some(2)), "{json}");
    // Fixed, it passes (warnings do not fail it).
    write("0002_orders.sql", "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY);\n");
    let fixed = lint(&[]);
    assert!(fixed.status.success(), "{}", stdout(&fixed));
    // An empty directory is never a silent pass.
    let empty = std::env::temp_dir().join(format!("lint-empty-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&empty).unwrap();
    let nothing = Command::new(binary("migrate-hub")).args(["lint", "--dir"]).arg(&empty).output().unwrap();
    assert!(
        !nothing.status.success() && stderr(&nothing).contains("holds no migration to lint"),
        "{}",
        stderr(&nothing)
    );
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(empty).unwrap();
}

#[tokio::test]
async fn apply_reviews_first_and_runs_nothing_while_a_statement_does_not_parse() {
    let db = PgDatabase::fresh().await;
    let dir = std::env::temp_dir().join(format!("lint-apply-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE lint_a (id bigint PRIMARY KEY);\n").unwrap();
    std::fs::write(
        dir.join("0002_b.sql"),
        "CREATE TABLE lint_b (id bigint PRIMARY KEY);\nCREAT INDEX b_id ON lint_b (id);\n",
    )
    .unwrap();
    let refused = cli(&["apply"], &dir, &db.url);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    let said = stderr(&refused);
    assert!(said.contains("0002_b.sql:2:1: error syntax-error") && said.contains("nothing was applied"), "{said}");
    assert!(pg_history(&db).await.is_empty(), "nothing ran");
    let a: bool = sqlx::query_scalar("SELECT to_regclass('lint_a') IS NOT NULL").fetch_one(&db.pool).await.unwrap();
    assert!(!a, "not even the first migration");
    // Asked for, it runs: 0001 applies, and 0002 fails on the server at its second statement.
    let forced = cli(&["apply", "--no-lint"], &dir, &db.url);
    assert!(
        !forced.status.success() && stdout(&forced).contains("applied=1 skipped=0 failed=1"),
        "{}",
        stdout(&forced)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
