//! The server and worker binaries as an operator runs them: `migrate` is idempotent, `serve` and the worker
//! refuse an out-of-date schema with a clear message, health endpoints answer, SIGTERM stops cleanly, and
//! the database password never reaches the logs.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use migrate_hub_tests::{PgDatabase, binary};

fn server() -> Command {
    let mut command = Command::new(binary("migrate-hub-server"));
    command
        .env_remove("RUST_LOG")
        .env("MIGRATE_HUB_LOG_FORMAT", "json")
        .env("MIGRATE_HUB_SERVER_SECRET", "5e".repeat(32));
    command
}

fn worker() -> Command {
    let mut command = Command::new(binary("migrate-hub-worker"));
    command.env_remove("RUST_LOG").env("MIGRATE_HUB_LOG_FORMAT", "json").env("MIGRATE_HUB_HEARTBEAT_SECS", "1");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run the binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for a child to exit, killing it after `timeout`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn child_stderr(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut out).unwrap();
    }
    out
}

async fn get(url: &str) -> Option<reqwest::Response> {
    reqwest::Client::new().get(url).timeout(Duration::from_secs(2)).send().await.ok()
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_idempotent() {
    let db = PgDatabase::fresh().await;
    // A database that does not exist yet, on the same server (dropped with `db`'s server clean-up below).
    let url = format!("{}_new", db.url);
    let first = run(server().args(["migrate", "--create-database"]).env("DATABASE_URL", &url));
    assert!(first.status.success(), "{}", stderr(&first));

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let before: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT version, installed_on FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before.len(), storage::schema::MIGRATOR.iter().count());

    let second = run(server().arg("migrate").env("DATABASE_URL", &url));
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stderr(&second).contains("schema is current"));
    let after: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT version, installed_on FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before, after, "a second migrate must change nothing");
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE "{}_new" WITH (FORCE)"#, db.name)))
        .execute(&db.pool)
        .await
        .ok();
}

#[tokio::test]
async fn serve_and_worker_refuse_an_out_of_date_schema() {
    let db = PgDatabase::fresh().await;
    let port = free_port().to_string();
    let served = run(server().args(["serve", "--bind", &format!("127.0.0.1:{port}")]).env("DATABASE_URL", &db.url));
    assert!(!served.status.success());
    let message = stderr(&served);
    assert!(message.contains("out of date") && message.contains("migrate-hub-server migrate"), "{message}");

    let worked = run(worker().env("DATABASE_URL", &db.url));
    assert!(!worked.status.success());
    assert!(stderr(&worked).contains("out of date"), "{}", stderr(&worked));

    let checked = run(server().arg("check-schema").env("DATABASE_URL", &db.url));
    assert!(!checked.status.success());

    // Without a server secret (or with a weak one) serve says what to set, and never echoes it.
    let bind = format!("127.0.0.1:{port}");
    let unkeyed = run(server()
        .args(["serve", "--bind", &bind])
        .env("DATABASE_URL", &db.url)
        .env_remove("MIGRATE_HUB_SERVER_SECRET"));
    assert!(!unkeyed.status.success());
    assert!(stderr(&unkeyed).contains("MIGRATE_HUB_SERVER_SECRET"), "{}", stderr(&unkeyed));
    let weak = run(server()
        .args(["serve", "--bind", &bind])
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_SERVER_SECRET", "abcdef12"));
    assert!(!weak.status.success());
    assert!(stderr(&weak).contains("too short") && !stderr(&weak).contains("abcdef12"), "{}", stderr(&weak));
}

#[tokio::test]
async fn the_database_password_never_reaches_the_logs() {
    let secret = "Sup3rSecretPassw0rd";
    let url = format!("postgres://postgres:{secret}@127.0.0.1:{}/nothing", free_port());
    for output in [
        run(server().args(["serve", "--bind", "127.0.0.1:0"]).env("DATABASE_URL", &url).env("RUST_LOG", "trace")),
        run(server().arg("migrate").env("DATABASE_URL", &url).env("RUST_LOG", "trace")),
        run(worker().env("DATABASE_URL", &url).env("RUST_LOG", "trace")),
        run(server().arg("migrate").env("DATABASE_URL", format!("not a url {secret}"))),
    ] {
        assert!(!output.status.success());
        let text = format!("{}{}", stderr(&output), String::from_utf8_lossy(&output.stdout));
        assert!(!text.contains(secret), "password leaked: {text}");
        assert!(text.contains("tool database") || text.contains("DATABASE_URL"), "unclear error: {text}");
    }
}

#[tokio::test]
async fn serve_answers_health_checks_and_stops_on_sigterm() {
    let db = PgDatabase::migrated().await;
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = server()
        .args(["serve", "--bind", &address])
        .env("DATABASE_URL", &db.url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Some(response) = get(&format!("http://{address}/readyz")).await {
            break response;
        }
        assert!(Instant::now() < deadline, "server did not answer: {}", child_stderr(&mut child));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let health = get(&format!("http://{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    terminate(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit {status}: {}", child_stderr(&mut child));
}

#[tokio::test]
async fn worker_registers_heartbeats_and_stops_on_sigterm() {
    let db = PgDatabase::migrated().await;
    let mut child = worker().env("DATABASE_URL", &db.url).stderr(Stdio::piped()).spawn().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let (id, first_beat) = loop {
        let row: Option<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as("SELECT id, last_heartbeat_at FROM workers WHERE status = 'running'")
                .fetch_optional(&db.pool)
                .await
                .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(Instant::now() < deadline, "worker did not register: {}", child_stderr(&mut child));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The heartbeat (every second here) moves last_heartbeat_at forward.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (beat,): (chrono::DateTime<chrono::Utc>,) =
            sqlx::query_as("SELECT last_heartbeat_at FROM workers WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if beat > first_beat {
            break;
        }
        assert!(Instant::now() < deadline, "no heartbeat");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    terminate(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    let log = child_stderr(&mut child);
    assert!(status.success(), "exit {status}: {log}");
    assert!(log.contains("SIGTERM"), "{log}");
    let (state, pid): (String, i32) =
        sqlx::query_as("SELECT status, pid FROM workers WHERE id = $1").bind(id).fetch_one(&db.pool).await.unwrap();
    assert_eq!(state, "stopped");
    assert_eq!(u32::try_from(pid).unwrap(), child.id());
}
