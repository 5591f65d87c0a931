//! Issue 16 regressions for secrets and the audit trail, through the real `migrate-hub-server` and
//! `migrate-hub-worker` binaries: secret references resolve only within the allowlist and never the hub's
//! own settings (item 1); a sealed password is bound to the connection it was entered for and never reaches
//! another host (item 2); the tool database is refused as a target, and the audit chain is keyed and its
//! published head detects a cut tail (item 5).
//!
//! Where a password could leak, the target points at a fake Postgres server ([`FakePostgres`]) that asks
//! for a cleartext password and records every byte it receives.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::secrets::{Binding, KeyRing};
use domain::enums::{Direction, Engine, FailurePolicy, TransactionMode};
use domain::ids::{RunId, TargetId};
use domain::model::RunItem;
use domain::policy::EnvironmentPolicy;
use domain::run::{RunItemStatus, RunStatus};
use migrate_hub_tests::fleet::Fleet;
use migrate_hub_tests::{PgDatabase, binary};
use reqwest::header::ORIGIN;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use storage::PageRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::Api;
use crate::hub::Browser;
use crate::secrets::wait_for_end;

const SERVER_SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";
const KEY: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";
const ADMIN: &str = "root@example.com";
const LOGIN_PASSWORD: &str = "a long enough admin password";

fn master_keys() -> String {
    format!("k1:{KEY}")
}

// --- a fake Postgres server that records what it is sent ---

/// Accepts connections, answers an SSL request with "no", asks for a cleartext password (as a hostile
/// server would, to be sent the password as it is) and records every byte it receives.
struct FakePostgres {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
}

impl FakePostgres {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (sink, count) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let sink = sink.clone();
                tokio::spawn(async move {
                    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];
                    let mut asked = false;
                    let mut buffer = [0u8; 4096];
                    loop {
                        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await;
                        let Ok(Ok(n)) = read else { break };
                        if n == 0 {
                            break;
                        }
                        sink.lock().unwrap().extend_from_slice(&buffer[..n]);
                        if asked {
                            continue;
                        }
                        let reply: &[u8] =
                            if buffer[..n] == SSL_REQUEST { b"N" } else { &[b'R', 0, 0, 0, 8, 0, 0, 0, 3] };
                        asked = reply.len() > 1;
                        if socket.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FakePostgres { port, received, connections }
    }

    fn url(&self) -> String {
        format!("postgres://app@127.0.0.1:{}/app", self.port)
    }

    fn saw(&self, needle: &str) -> bool {
        let received = self.received.lock().unwrap();
        received.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

// --- the hub's binaries ---

fn server_command(tool: &PgDatabase) -> Command {
    let mut command = Command::new(binary("migrate-hub-server"));
    command
        .env("DATABASE_URL", &tool.url)
        .env("MIGRATE_HUB_SERVER_SECRET", SERVER_SECRET)
        .env("MIGRATE_HUB_MASTER_KEYS", master_keys())
        .env("MIGRATE_HUB_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("MIGRATE_HUB_SECRET_REFS");
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `migrate-hub-server serve` on the tool database, with an admin who has a token and a login password.
struct Hub {
    child: Child,
    url: String,
    api: Api,
    log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Hub {
    async fn start(tool: &PgDatabase, env: &[(&str, &str)]) -> Self {
        let created = server_command(tool).args(["create-admin", "--email", ADMIN]).output().unwrap();
        assert!(created.status.success(), "{}", text(&created));
        let token = String::from_utf8(created.stdout).unwrap().lines().last().unwrap().trim().to_owned();
        let mut set = server_command(tool)
            .args(["set-password", "--email", ADMIN])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        set.stdin.take().unwrap().write_all(LOGIN_PASSWORD.as_bytes()).unwrap();
        let set = set.wait_with_output().unwrap();
        assert!(set.status.success(), "{}", text(&set));

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("mh-security-secrets-{}.log", uuid::Uuid::new_v4()));
        let mut command = server_command(tool);
        command
            .arg("serve")
            .env("MIGRATE_HUB_BIND", format!("127.0.0.1:{port}"))
            .env("MIGRATE_HUB_PASSWORD_LOGIN", "true")
            .env("MIGRATE_HUB_INSECURE_COOKIES", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let api = Api::new(url.clone(), token);
        Hub { child, url, api, log }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.api.call(method, path, body).await
    }

    async fn environment(&self, name: &str) -> String {
        let body = json!({"name": name, "approval_required": false});
        let (status, env) = self.call(Method::POST, "/api/v1/environments", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{env}");
        env["id"].as_str().unwrap().to_owned()
    }

    /// The admin, signed in with the password form, as the web pages need.
    async fn browser(&self) -> Browser {
        let client =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = client
            .post(format!("{}/login/password", self.url))
            .header(ORIGIN, &self.url)
            .form(&[("email", ADMIN), ("password", LOGIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        Browser { client, hub: self.url.clone() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Posts a form as the pages do (same origin, the CSRF field); returns the status and the body.
async fn post_form(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
    let response = browser.post_form(path, fields).await;
    let status = response.status();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

/// The page's connection check for target `id`: the HTML it answers with.
async fn test_connection(browser: &Browser, id: &str) -> String {
    let (status, _, html) = post_form(browser, &format!("/admin/targets/{id}/test"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    html
}

/// A worker on the tool database with `env` on top of the hub's keys and secret.
fn start_worker(tool: &PgDatabase, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(binary("migrate-hub-worker"));
    command
        .env("DATABASE_URL", &tool.url)
        .env("MIGRATE_HUB_MASTER_KEYS", master_keys())
        .env("MIGRATE_HUB_SERVER_SECRET", SERVER_SECRET)
        .env("MIGRATE_HUB_POLL_MS", "100")
        .env("MIGRATE_HUB_HEARTBEAT_SECS", "1")
        .env_remove("MIGRATE_HUB_SECRET_REFS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn item_of(pool: &sqlx::PgPool, run: RunId, target: TargetId) -> RunItem {
    let mut conn = pool.acquire().await.unwrap();
    let items = storage::run_items::list_for_run(&mut conn, run, None, &PageRequest::first(100)).await.unwrap();
    items.items.into_iter().find(|i| i.target_id == target).unwrap()
}

/// Host, port and database of a test database URL.
fn location_of(url: &str) -> (String, u16, String) {
    let url = reqwest::Url::parse(url).unwrap();
    (url.host_str().unwrap().to_owned(), url.port().unwrap(), url.path().trim_start_matches('/').to_owned())
}

fn target_body(env: &str, name: &str, url: &str) -> Value {
    let (host, port, database) = location_of(url);
    json!({
        "environment_id": env, "name": name, "engine": "postgres", "host": host, "port": port,
        "database": database, "username": "postgres", "tls_mode": "disable",
    })
}

// --- item 1 ---

#[tokio::test]
async fn secret_references_resolve_only_within_the_allowlist_and_never_the_hubs_own_settings() {
    let tool = PgDatabase::migrated().await;
    let orders = PgDatabase::fresh().await;
    let hub = Hub::start(&tool, &[("MIGRATE_HUB_SECRET_REFS", "env:TARGET_*")]).await;
    let env = hub.environment("prod").await;

    // The server refuses, with a 422 on the field, any reference outside the allowlist, and the hub's own
    // settings and /proc whatever the allowlist says.
    for reference in [
        "env:MIGRATE_HUB_MASTER_KEYS",
        "env:MIGRATE_HUB_SERVER_SECRET",
        "env:DATABASE_URL",
        "file:/proc/self/environ",
        "env:HOME",
        "file:/run/secrets/orders",
    ] {
        let mut body = target_body(&env, "stolen", &orders.url);
        body["secret_ref"] = json!(reference);
        let (status, answer) = hub.call(Method::POST, "/api/v1/targets", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reference}: {answer}");
        assert_eq!(answer["error"]["field"], "secret_ref", "{answer}");
        assert_eq!(answer["error"]["code"], "secret_ref_not_allowed", "{answer}");
    }
    let (status, malformed) =
        hub.call(Method::POST, "/api/v1/targets", Some(json!({"secret_ref": "file:/run/../proc/self/environ"}))).await;
    assert_ne!(status, StatusCode::CREATED, "{malformed}");
    let mut body = target_body(&env, "orders", &orders.url);
    body["secret_ref"] = json!("env:TARGET_ORDERS");
    let (status, created) = hub.call(Method::POST, "/api/v1/targets", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, answer) = hub
        .call(
            Method::PUT,
            &format!("/api/v1/targets/{}/secret", created["id"].as_str().unwrap()),
            Some(json!({"secret_ref": "env:MIGRATE_HUB_MASTER_KEYS"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    // References stored before the allowlist existed (or written to the database directly) are refused by
    // the worker before it connects: the fake server never hears from it, let alone receives a secret.
    let fake = FakePostgres::start().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    let keys = fleet.add_target("keys", &fake.url(), Some("MIGRATE_HUB_MASTER_KEYS")).await;
    let database_url = fleet.add_target("database-url", &fake.url(), Some("DATABASE_URL")).await;
    let environ = fleet.add_target("environ", &fake.url(), None).await;
    let outside = fleet.add_target("outside", &fake.url(), Some("HOME")).await;
    let allowed = fleet.add_target("allowed", &orders.url, Some("TARGET_ORDERS")).await;
    let mut conn = tool.pool.acquire().await.unwrap();
    storage::targets::set_secret_ref(&mut conn, environ, Some("file:/proc/self/environ")).await.unwrap();
    let version = fleet
        .migration("0001", "CREATE TABLE widgets (id int)", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 5).await;
    let _worker = Worker(start_worker(
        &tool,
        &[("MIGRATE_HUB_SECRET_REFS", "env:TARGET_*,env:HOME_NOT"), ("TARGET_ORDERS", "any (trust auth)")],
    ));
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Failed);

    for (target, expected) in [
        (keys, "hub's own settings"),
        (database_url, "hub's own settings"),
        (environ, "/proc"),
        (outside, "not allowed"),
    ] {
        let item = item_of(&tool.pool, run.id, target).await;
        assert_eq!(item.status, RunItemStatus::Failed, "{item:?}");
        assert_eq!(item.error_code.as_deref(), Some("secret"), "{item:?}");
        let message = item.error_message.unwrap_or_default();
        assert!(message.contains("refused") && message.contains(expected), "{message}");
    }
    assert_eq!(item_of(&tool.pool, run.id, allowed).await.status, RunItemStatus::Succeeded);
    assert!(orders.has_table("widgets").await);
    assert_eq!(fake.connections(), 0, "a worker connected to the fake server");
    for secret in [KEY, SERVER_SECRET, tool.url.as_str()] {
        assert!(!fake.saw(secret), "the fake server received a secret of the hub");
    }
}

// --- item 2 ---

#[tokio::test]
async fn a_sealed_password_never_reaches_a_host_it_was_not_entered_for() {
    const PASSWORD: &str = "sealed-for-orders-7c1e";
    let tool = PgDatabase::migrated().await;
    let orders = PgDatabase::fresh().await;
    let fake = FakePostgres::start().await;
    // The fake server does receive a password sent to it (so its silence below means something).
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(fake.port)
        .username("app")
        .database("app")
        .password("fake-self-check")
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let _ = tokio::time::timeout(Duration::from_secs(2), sqlx::ConnectOptions::connect(&options)).await;
    assert!(fake.saw("fake-self-check"), "the fake server records no password");
    let hub = Hub::start(&tool, &[]).await;
    let admin = hub.browser().await;
    let env = hub.environment("prod").await;
    let mut body = target_body(&env, "orders", &orders.url);
    body["password"] = json!(PASSWORD);
    let (status, target) = hub.call(Method::POST, "/api/v1/targets", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    assert_eq!(target["secret"], "sealed");
    let id = target["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/targets/{id}");

    // Pointing it at another host without the password drops the password, and the answer says so.
    let (status, moved) = hub.call(Method::PATCH, &path, Some(json!({"host": "127.0.0.1", "port": fake.port}))).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!((moved["secret_dropped"].clone(), moved["secret"].clone()), (json!(true), json!("none")), "{moved}");
    let html = test_connection(&admin, &id).await;
    assert!(html.contains("Could not connect"), "{html}");
    assert!(fake.connections() >= 1, "the check did not even reach the new host");
    assert!(!fake.saw(PASSWORD), "the sealed password was sent to a host it was not entered for");
    let dropped: Value =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'target.update' ORDER BY id DESC LIMIT 1")
            .fetch_one(&tool.pool)
            .await
            .unwrap();
    assert_eq!(dropped["secret_dropped"], true, "{dropped}");

    // Changes that do not move it, or that give the password again, keep a sealed one.
    let (host, port, _) = location_of(&orders.url);
    let back = json!({"host": host, "port": port, "password": PASSWORD});
    let (status, back) = hub.call(Method::PATCH, &path, Some(back)).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["secret"], "sealed");
    assert!(back.get("secret_dropped").is_none(), "{back}");
    let (_, renamed) = hub.call(Method::PATCH, &path, Some(json!({"name": "orders-main"}))).await;
    assert_eq!(renamed["secret"], "sealed", "{renamed}");
    assert!(test_connection(&admin, &id).await.contains("Connected."));

    // The same move written to the database directly, past the use case: the seal no longer opens, so
    // nothing is sent either (it was bound to the old host in its associated data).
    sqlx::query("UPDATE db_targets SET port = $1 WHERE id = $2::uuid")
        .bind(i32::from(fake.port))
        .bind(&id)
        .execute(&tool.pool)
        .await
        .unwrap();
    let connections = fake.connections();
    let html = test_connection(&admin, &id).await;
    assert!(html.contains("Could not connect (secret)"), "{html}");
    assert_eq!(fake.connections(), connections, "the check connected without a usable password");

    // The worker opens seals the same way: one moved under it is refused before connecting.
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    let moved_under = fleet.add_target("moved", &orders.url, None).await;
    let ring = KeyRing::parse(&SecretString::from(master_keys())).unwrap();
    let mut conn = tool.pool.acquire().await.unwrap();
    let stored = storage::targets::get(&mut conn, moved_under).await.unwrap();
    let sealed = ring.seal(&Binding::of(&stored), &SecretString::from(PASSWORD)).unwrap();
    storage::targets::set_sealed_secret(&mut conn, moved_under, &sealed).await.unwrap();
    sqlx::query("UPDATE db_targets SET port = $1 WHERE id = $2")
        .bind(i32::from(fake.port))
        .bind(moved_under.as_uuid())
        .execute(&tool.pool)
        .await
        .unwrap();
    let version = fleet
        .migration("0001", "CREATE TABLE widgets (id int)", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let _worker = Worker(start_worker(&tool, &[]));
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Failed);
    let item = item_of(&tool.pool, run.id, moved_under).await;
    assert_eq!(item.error_code.as_deref(), Some("secret"), "{item:?}");
    assert_eq!(fake.connections(), connections, "the worker connected to the new host");
    assert!(!fake.saw(PASSWORD));

    // The settings page says so when a change drops the password.
    sqlx::query("UPDATE db_targets SET port = $1 WHERE id = $2::uuid")
        .bind(i32::from(port))
        .bind(&id)
        .execute(&tool.pool)
        .await
        .unwrap();
    let (_, _, _) = post_form(&admin, &format!("/admin/targets/{id}/secret"), &[("password", PASSWORD)]).await;
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (_, _, database) = location_of(&orders.url);
    let (status, location, _) = post_form(
        &admin,
        &format!("/admin/targets/{id}"),
        &[
            ("name", "orders-main"),
            ("host", "127.0.0.1"),
            ("port", &unused),
            ("database", &database),
            ("username", "postgres"),
            ("tls_mode", "disable"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = admin.client.get(format!("{}{location}", hub.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("The sealed password was removed"), "{page}");
}

// --- item 5 ---

#[tokio::test]
async fn the_tool_database_is_refused_as_a_target_at_creation_check_and_apply() {
    let tool = PgDatabase::migrated().await;
    let hub = Hub::start(&tool, &[]).await;
    let admin = hub.browser().await;
    let env = hub.environment("prod").await;

    // By any name that leads to it.
    let (_, port, database) = location_of(&tool.url);
    for host in ["127.0.0.1", "localhost"] {
        let body = json!({
            "environment_id": env, "name": "tooldb", "engine": "postgres", "host": host, "port": port,
            "database": database, "username": "postgres", "tls_mode": "disable",
        });
        let (status, answer) = hub.call(Method::POST, "/api/v1/targets", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {answer}");
        assert_eq!(answer["error"]["code"], "tool_database", "{answer}");
    }
    // Nor by changing a target to it.
    let other = PgDatabase::fresh().await;
    let (status, created) =
        hub.call(Method::POST, "/api/v1/targets", Some(target_body(&env, "other", &other.url))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, answer) =
        hub.call(Method::PATCH, &format!("/api/v1/targets/{id}"), Some(json!({"database": database}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    // One that got there anyway (unreachable when it was set, or written directly) fails its connection
    // check and every apply, before a statement of the migration runs.
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    let target = fleet.add_target("tool", &tool.url, None).await;
    let html = test_connection(&admin, &target.to_string()).await;
    assert!(html.contains("Could not connect (tool_database)"), "{html}");
    let version = fleet
        .migration(
            "0001",
            "ALTER TABLE audit_events DISABLE TRIGGER USER; CREATE TABLE pwned (id int)",
            None,
            TransactionMode::Transaction,
            Engine::Postgres,
        )
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let _worker = Worker(start_worker(&tool, &[]));
    assert_eq!(wait_for_end(&tool.pool, run.id).await, RunStatus::Failed);
    let item = item_of(&tool.pool, run.id, target).await;
    assert_eq!(item.error_code.as_deref(), Some("tool_database"), "{item:?}");
    assert!(!tool.has_table("pwned").await, "a migration ran on the tool database");
    assert!(!tool.has_table("migrate_hub_history").await);
}

/// `migrate-hub-server audit verify` with `args`; whether it passed, and what it said.
fn verify(tool: &PgDatabase, secret: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = server_command(tool);
    command.args(["audit", "verify"]).args(args).env_remove("MIGRATE_HUB_SERVER_SECRET");
    if let Some(secret) = secret {
        command.env("MIGRATE_HUB_SERVER_SECRET", secret);
    }
    let out = command.output().unwrap();
    (out.status.success(), text(&out))
}

#[tokio::test]
async fn a_keyed_audit_chain_detects_a_cut_tail_against_its_published_head() {
    let tool = PgDatabase::migrated().await;
    let hub = Hub::start(&tool, &[("MIGRATE_HUB_AUDIT_HEAD_EVERY", "1")]).await;
    for name in ["dev", "staging", "prod", "qa"] {
        hub.environment(name).await;
    }
    let layouts: Vec<i16> =
        sqlx::query_scalar("SELECT chain_layout FROM audit_events ORDER BY id").fetch_all(&tool.pool).await.unwrap();
    assert!(layouts.len() >= 6 && layouts.iter().all(|l| *l == 2), "{layouts:?}");

    // The head, as the API publishes it and the server logs it.
    let (status, head) = hub.call(Method::GET, "/api/v1/audit/head", None).await;
    assert_eq!(status, StatusCode::OK, "{head}");
    let (sequence, hash) = (head["sequence"].as_i64().unwrap(), head["hash"].as_str().unwrap().to_owned());
    let (last, stored): (i64, String) =
        sqlx::query_as("SELECT id, encode(hash, 'hex') FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_one(&tool.pool)
            .await
            .unwrap();
    assert_eq!((sequence, hash.clone()), (last, stored));
    let expected = format!("{sequence}:{hash}");
    let mut logged = false;
    for _ in 0..100 {
        if hub.log().contains(&expected) {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged && hub.log().contains("audit chain head"), "the head was not logged: {}", hub.log());

    // Keyed: it verifies with the server secret only.
    let (ok, said) = verify(&tool, Some(SERVER_SECRET), &["--expect-head", &expected]);
    assert!(ok, "{said}");
    assert!(said.contains("reaches head"), "{said}");
    let (ok, said) = verify(&tool, Some(&"ab".repeat(32)), &[]);
    assert!(!ok && said.contains("content does not match its hash"), "{said}");
    let (ok, said) = verify(&tool, None, &[]);
    assert!(!ok && said.contains("no audit chain key"), "{said}");
    // A worker that could not extend the keyed chain refuses to start.
    let refused = Command::new(binary("migrate-hub-worker"))
        .env("DATABASE_URL", &tool.url)
        .env_remove("MIGRATE_HUB_SERVER_SECRET")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!refused.status.success() && text(&refused).contains("MIGRATE_HUB_SERVER_SECRET"), "{}", text(&refused));

    // Someone with SQL on the tool database cuts the tail: the chain that is left still links and hashes,
    // but it no longer reaches the published head.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE audit_events DISABLE TRIGGER USER; DELETE FROM audit_events WHERE id >= {}; \
         ALTER TABLE audit_events ENABLE TRIGGER USER",
        sequence - 1
    )))
    .execute(&tool.pool)
    .await
    .unwrap();
    let (ok, said) = verify(&tool, Some(SERVER_SECRET), &[]);
    assert!(ok, "without a head the cut is invisible: {said}");
    let (ok, said) = verify(&tool, Some(SERVER_SECRET), &["--expect-head", &expected]);
    assert!(!ok, "{said}");
    assert!(said.contains(&format!("ends at row {}", sequence - 2)) && said.contains("removed"), "{said}");

    // The hub goes on appending after the cut: the expected head's row is then missing.
    hub.environment("after-the-cut").await;
    let (ok, said) = verify(&tool, Some(SERVER_SECRET), &["--expect-head", &expected]);
    assert!(!ok && said.contains("missing"), "{said}");
    let (ok, said) = verify(&tool, Some(SERVER_SECRET), &["--expect-head", "not-a-head"]);
    assert!(!ok && said.contains("SEQ:HASH"), "{said}");
}

// --- the worker's own libpq settings ---

#[tokio::test]
async fn a_target_without_a_password_never_gets_the_workers_own_pgpassword() {
    let tool = PgDatabase::migrated().await;
    let fake = FakePostgres::start().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    let target = fleet.add_target("no-password", &fake.url(), None).await;
    let version = fleet
        .migration("0001", "CREATE TABLE widgets (id int)", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let canary = "pgpassword-canary-7f3a";
    let _worker = Worker(start_worker(&tool, &[("PGPASSWORD", canary)]));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.connections() == 0 {
        assert!(std::time::Instant::now() < deadline, "the worker never tried the target");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Whatever the run comes to, the password the server asked for was not the worker's environment's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!fake.saw(canary), "the worker sent its own PGPASSWORD to a target that has none");
    let item = item_of(&tool.pool, run.id, target).await;
    assert_ne!(item.status, RunItemStatus::Succeeded, "{item:?}");
}
