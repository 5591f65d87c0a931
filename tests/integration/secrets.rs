//! Sealed target passwords end to end: a MariaDB account with a real password, sealed under a master key,
//! opened only by the worker process while connecting; `migrate-hub-server rotate-key` reseals it under a
//! new key with no moment where it cannot be opened; the password and the keys appear in no log line, log
//! row, audit row or error.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use auth::secrets::{Binding, KeyRing};
use domain::enums::{Direction, Engine, FailurePolicy, TransactionMode};
use domain::ids::RunId;
use domain::policy::EnvironmentPolicy;
use domain::run::{RunItemStatus, RunStatus};
use migrate_hub_tests::fleet::Fleet;
use migrate_hub_tests::{MySqlDatabase, PgDatabase, binary, mysql_server_url};
use secrecy::SecretString;
use storage::PageRequest;

const PASSWORD: &str = "canary-9d41-Pw!";
const KEY_1: &str = "3f9a0c8e7b6d5a4f3e2d1c0b9a8f7e6d5c4b3a29180716253443526170819203";
const KEY_2: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn start_worker(tool_url: &str, keys: Option<&str>) -> Child {
    let mut command = Command::new(binary("migrate-hub-worker"));
    command
        .env("DATABASE_URL", tool_url)
        .env("RUST_LOG", "debug")
        .env("MIGRATE_HUB_POLL_MS", "100")
        .env_remove("MIGRATE_HUB_MASTER_KEYS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(keys) = keys {
        command.env("MIGRATE_HUB_MASTER_KEYS", keys);
    }
    command.spawn().unwrap()
}

/// Stops the worker and returns everything it logged.
fn stop_worker(child: Child) -> String {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) async fn wait_for_end(pool: &sqlx::PgPool, run: RunId) -> RunStatus {
    for _ in 0..600 {
        let mut conn = pool.acquire().await.unwrap();
        let status = storage::runs::get(&mut conn, run).await.unwrap().status;
        if status.is_terminal() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {run} did not end");
}

#[tokio::test]
async fn a_sealed_password_opens_only_in_the_worker_and_survives_key_rotation() {
    // A MariaDB account that only the right password opens.
    let target = MySqlDatabase::fresh().await;
    let user = format!("mh{}", &target.name[5..17]);
    for host in ["%", "localhost"] {
        for sql in [
            format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'"),
            format!("GRANT ALL ON `{}`.* TO '{user}'@'{host}'", target.name),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&target.pool).await.unwrap();
        }
    }
    let server = mysql_server_url().await;
    let address = server.rsplit_once('@').map_or(server.trim_start_matches("mysql://"), |(_, a)| a).to_owned();
    let url = format!("mysql://{user}@{address}/{}", target.name);

    let tool = PgDatabase::migrated().await;
    // 0001 never applies (no key), and the later ones go on without it.
    let policy = EnvironmentPolicy { allow_out_of_order: true, ..EnvironmentPolicy::permissive_default() };
    let mut fleet = Fleet::new(&tool.pool, policy).await;
    let id = fleet.add_target("sealed", &url, None).await;
    let old_ring = KeyRing::parse(&SecretString::from(format!("k1:{KEY_1}"))).unwrap();
    let mut conn = tool.pool.acquire().await.unwrap();
    let stored = storage::targets::get(&mut conn, id).await.unwrap();
    let sealed = old_ring.seal(&Binding::of(&stored), &SecretString::from(PASSWORD)).unwrap();
    storage::targets::set_sealed_secret(&mut conn, id, &sealed).await.unwrap();
    let mut logs = String::new();

    // A worker without the keys cannot open it, and says so.
    let first =
        fleet.migration("0001", "CREATE TABLE a (id int)", None, TransactionMode::Transaction, Engine::Mysql).await;
    let run = fleet.queue_run(&first, Direction::Up, FailurePolicy::Continue, 1).await;
    let worker = start_worker(&tool.url, None);
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Failed);
    logs += &stop_worker(worker);
    let items = storage::run_items::list_for_run(&mut conn, run.id, None, &PageRequest::first(10)).await.unwrap();
    assert_eq!(items.items[0].status, RunItemStatus::Failed);
    assert!(
        items.items[0].error_message.as_deref().unwrap_or_default().contains("no master key"),
        "{:?}",
        items.items[0]
    );

    // With the key it applies.
    let again =
        fleet.migration("0002", "CREATE TABLE b (id int)", None, TransactionMode::Transaction, Engine::Mysql).await;
    let run = fleet.queue_run(&again, Direction::Up, FailurePolicy::Continue, 1).await;
    let worker = start_worker(&tool.url, Some(&format!("k1:{KEY_1}")));
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Succeeded);
    logs += &stop_worker(worker);

    // Rotation reseals under the new key; a worker with only the new key applies the next migration.
    let rotated = Command::new(binary("migrate-hub-server"))
        .arg("rotate-key")
        .env("DATABASE_URL", &tool.url)
        .env("MIGRATE_HUB_MASTER_KEYS", format!("k1:{KEY_1},k2:{KEY_2}"))
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    logs += &String::from_utf8_lossy(&rotated.stderr);
    assert!(rotated.status.success(), "{logs}");
    let resealed = storage::targets::sealed_secret(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(resealed.key_id, "k2");
    assert_ne!(resealed.ciphertext, sealed.ciphertext);
    // Nothing left to do the second time.
    let rerun = Command::new(binary("migrate-hub-server"))
        .arg("rotate-key")
        .env("DATABASE_URL", &tool.url)
        .env("MIGRATE_HUB_MASTER_KEYS", format!("k1:{KEY_1},k2:{KEY_2}"))
        .output()
        .unwrap();
    assert!(rerun.status.success());
    assert_eq!(storage::targets::sealed_secret(&mut conn, id).await.unwrap().unwrap(), resealed);
    let third =
        fleet.migration("0003", "CREATE TABLE c (id int)", None, TransactionMode::Transaction, Engine::Mysql).await;
    let run = fleet.queue_run(&third, Direction::Up, FailurePolicy::Continue, 1).await;
    let worker = start_worker(&tool.url, Some(&format!("k2:{KEY_2}")));
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Succeeded);
    logs += &stop_worker(worker);
    let tables: Vec<String> = sqlx::query_scalar("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('a', 'b', 'c') ORDER BY table_name")
        .fetch_all(&target.pool)
        .await
        .unwrap();
    assert_eq!(tables, ["b", "c"]);

    // The canary: the password and the keys are nowhere in the logs, log rows, item errors or audit rows.
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT message FROM run_item_logs \
         UNION ALL SELECT COALESCE(error_message, '') FROM run_items \
         UNION ALL SELECT details::text || action || object_type || COALESCE(object_id, '') FROM audit_events",
    )
    .fetch_all(&tool.pool)
    .await
    .unwrap();
    assert!(logs.contains("master keys loaded"), "the worker logs were not captured: {logs}");
    let rotation_audited = rows.iter().any(|r| r.contains("secrets.rotated"));
    assert!(rotation_audited, "rotate-key left no audit event");
    for needle in [PASSWORD, KEY_1, KEY_2] {
        assert!(!logs.contains(needle), "a secret is in the process logs");
        assert!(rows.iter().all(|r| !r.contains(needle)), "a secret is in the tool database");
    }
}
