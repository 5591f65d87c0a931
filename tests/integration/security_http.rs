//! Issue 16 regressions at the HTTP edge: bounded metrics labels, trusted proxies for client addresses, bounded imports.
//!
//! Each test runs the real `migrate-hub-server serve` binary on a fresh tool database, configured through
//! its environment as an operator would, and speaks to it over HTTP (or raw TCP where a client library
//! would refuse to send what an attacker sends).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migrate_hub_tests::{PgDatabase, binary};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SERVER_SECRET: &str = "5ec0dd005ec0dd005ec0dd005ec0dd005ec0dd005ec0dd005ec0dd005ec0dd01";

/// A `migrate-hub-server serve` process on a fresh tool database; killed when dropped.
struct Served {
    url: String,
    db: PgDatabase,
    child: Child,
    http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_command(db: &PgDatabase) -> Command {
    let mut command = Command::new(binary("migrate-hub-server"));
    command
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_SERVER_SECRET", SERVER_SECRET)
        .env_remove("MIGRATE_HUB_TRUSTED_PROXIES")
        .env_remove("MIGRATE_HUB_OIDC_CLIENT_ID")
        .env_remove("MIGRATE_HUB_OIDC_ISSUER")
        .env_remove("MIGRATE_HUB_DB_MAX_CONNECTIONS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
    command
}

impl Served {
    /// Starts the server with these extra environment variables and waits until it answers.
    async fn start(env: &[(&str, &str)]) -> Self {
        let db = PgDatabase::migrated().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let child = server_command(&db)
            .arg("serve")
            .env("MIGRATE_HUB_BIND", format!("127.0.0.1:{port}"))
            .env("MIGRATE_HUB_INSECURE_COOKIES", "true")
            .envs(env.iter().copied())
            .spawn()
            .unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let served = Self { url, db, child, http };
        for _ in 0..400 {
            if served.http.get(format!("{}/healthz", served.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("migrate-hub-server did not answer on {} within 20 s", served.url);
    }

    /// A new admin and their API token, made by the binary's own `create-admin`.
    fn admin(&self, email: &str) -> String {
        let out =
            server_command(&self.db).args(["create-admin", "--email", email]).stdout(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "create-admin {email} failed");
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_owned()
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.url)).send().await.unwrap().text().await.unwrap()
    }
}

// --- 4. metrics labels ---

/// Sends one raw HTTP/1.1 request and returns the status line of the answer.
fn raw_request(url: &str, method: &str, path: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

/// `name="value"` label values of the HTTP request series in the exposition text.
fn label_values(text: &str, name: &str) -> BTreeSet<String> {
    let needle = format!("{name}=\"");
    let mut found = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("migrate_hub_http_")) {
        let mut rest = line;
        while let Some(at) = rest.find(&needle) {
            let value = &rest[at + needle.len()..];
            let end = value.find('"').unwrap_or(value.len());
            found.insert(value[..end].to_owned());
            rest = &value[end..];
        }
    }
    found
}

#[tokio::test]
async fn metrics_labels_stay_bounded_whatever_method_or_path_a_client_sends() {
    let served = Served::start(&[]).await;
    let before = served.metrics().await;

    // Fifty different 30,000-letter methods, on an unknown path, a route with an id and a known route.
    let url = served.url.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        (0..50)
            .map(|i: usize| {
                // Letters only (a method is an HTTP token), different for each request.
                let suffix: String =
                    [i / 26, i % 26].iter().map(|d| char::from(b'A' + u8::try_from(*d).unwrap())).collect();
                let method = format!("{}{suffix}", "Q".repeat(29_998));
                let path = match i % 3 {
                    0 => format!("/no/such/page/{i}"),
                    1 => format!("/api/v1/runs/{i}"),
                    _ => "/healthz".to_owned(),
                };
                raw_request(&url, &method, &path)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // The requests went through routing (404 or 405), so the metrics middleware saw every one of them.
    for status in &statuses {
        assert!(status.starts_with("HTTP/1.1 404") || status.starts_with("HTTP/1.1 405"), "{status}");
    }
    // Odd but ordinary methods and paths.
    for (method, path) in [
        ("PROPFIND", "/".to_owned()),
        ("BREW", "/coffee%00pot".to_owned()),
        ("TRACE", "/api/v1/runs/..%2F..%2Fetc%2Fpasswd".to_owned()),
        ("get", "/metrics".to_owned()),
        ("GET", format!("/x/{}", "y".repeat(8_000))),
        ("GET", "/api/v1/runs/not-a-uuid".to_owned()),
        ("DELETE", "/healthz".to_owned()),
    ] {
        served
            .http
            .request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", served.url))
            .send()
            .await
            .unwrap();
    }

    let text = served.metrics().await;
    eprintln!("/metrics: {} bytes before the flood, {} bytes after", before.len(), text.len());
    assert!(!text.contains(&"Q".repeat(100)), "a client's method became a label");
    assert!(!text.contains(&"y".repeat(100)), "a client's path became a label");
    assert!(text.len() < 256 * 1024, "/metrics grew to {} bytes", text.len());
    let methods = label_values(&text, "method");
    let known: BTreeSet<String> =
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"].map(String::from).into();
    assert!(methods.is_subset(&known), "method labels {methods:?}");
    assert!(methods.contains("other"), "unknown methods are counted as `other`: {methods:?}");
    let mut routes: BTreeSet<String> = http::routes::table().into_iter().map(|r| r.path.to_owned()).collect();
    routes.insert("unmatched".to_owned());
    let seen = label_values(&text, "route");
    assert!(seen.is_subset(&routes), "route labels outside the route table: {:?}", seen.difference(&routes));
    for status in label_values(&text, "status") {
        assert!(status == "other" || status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)), "{status}");
    }
    assert!(
        text.contains("migrate_hub_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"}"),
        "{text}"
    );
    let series = text.lines().filter(|l| l.starts_with("migrate_hub_http_requests_total{")).count();
    assert!(series <= 20, "{series} request-count series");
}

// --- 12. client addresses behind a trusted proxy ---

/// Starts an OIDC login from `forwarded_for` until the per-address limit answers 429; returns how many
/// starts it took. The provider is unreachable, so every start that passes the limiter answers 503.
async fn starts_until_limited(served: &Served, forwarded_for: &str) -> usize {
    for attempt in 1..=40 {
        let response = served
            .http
            .get(format!("{}/login/oidc", served.url))
            .header("X-Forwarded-For", forwarded_for)
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => return attempt,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("a login start answered {other}"),
        }
    }
    panic!("40 login starts from {forwarded_for} were never rate-limited")
}

async fn one_start(served: &Served, forwarded_for: &str) -> StatusCode {
    served
        .http
        .get(format!("{}/login/oidc", served.url))
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

/// The address the audit row of creating project `name` (sent with `X-Forwarded-For: forwarded_for`)
/// recorded.
async fn audited_address(served: &Served, token: &str, name: &str, forwarded_for: &str) -> String {
    let response = served
        .http
        .post(format!("{}/api/v1/projects", served.url))
        .bearer_auth(token)
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let project: Value = response.json().await.unwrap();
    sqlx::query_scalar::<_, String>(
        "SELECT host(ip) FROM audit_events WHERE action = 'project.create' AND object_id = $1",
    )
    .bind(project["id"].as_str().unwrap())
    .fetch_one(&served.db.pool)
    .await
    .unwrap()
}

/// An OIDC issuer nobody listens on.
fn unreachable_issuer() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit_and_audit_address() {
    let issuer = unreachable_issuer();
    let served = Served::start(&[
        ("MIGRATE_HUB_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("MIGRATE_HUB_OIDC_CLIENT_ID", "hub"),
        ("MIGRATE_HUB_OIDC_ISSUER", &issuer),
    ])
    .await;
    let first = starts_until_limited(&served, "203.0.113.7").await;
    assert!(first > 20, "limited after {first} starts");
    // Another client behind the same proxy has a limit of its own, and so is not refused...
    assert_eq!(one_start(&served, "203.0.113.8").await, StatusCode::SERVICE_UNAVAILABLE);
    // ...while the first one still is, whatever it claims left of the proxy's entry.
    assert_eq!(one_start(&served, "203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(one_start(&served, "198.51.100.1, 203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);

    let token = served.admin("root@example.com");
    assert_eq!(audited_address(&served, &token, "forwarded", "203.0.113.9").await, "203.0.113.9");
    // The right-most address the proxy did not vouch for: a client-written entry on the left is not believed.
    assert_eq!(audited_address(&served, &token, "spoofed", "10.9.9.9, 203.0.113.10").await, "203.0.113.10");
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let issuer = unreachable_issuer();
    let served = Served::start(&[("MIGRATE_HUB_OIDC_CLIENT_ID", "hub"), ("MIGRATE_HUB_OIDC_ISSUER", &issuer)]).await;
    starts_until_limited(&served, "203.0.113.7").await;
    // Every request comes from the TCP peer: a new header does not buy a new limit.
    assert_eq!(one_start(&served, "203.0.113.8").await, StatusCode::TOO_MANY_REQUESTS);

    let token = served.admin("root@example.com");
    assert_eq!(audited_address(&served, &token, "direct", "203.0.113.9").await, "127.0.0.1");
}

#[tokio::test]
async fn a_bad_trusted_proxy_setting_stops_the_server_with_its_name() {
    let db = PgDatabase::migrated().await;
    let mut child = server_command(&db)
        .arg("serve")
        .env("MIGRATE_HUB_BIND", "127.0.0.1:0")
        .env("MIGRATE_HUB_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the server started with a bad MIGRATE_HUB_TRUSTED_PROXIES");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MIGRATE_HUB_TRUSTED_PROXIES") && stderr.contains("\"10.0.0.0/33\""), "{stderr}");
}

// --- 7. bounded imports ---

/// `count` plain migration files, `00001_create_t1.sql` and on, with keys from `first`.
fn files(first: usize, count: usize) -> Vec<Value> {
    (first..first + count)
        .map(|i| json!({ "path": format!("{i:06}_create_t{i}.sql"), "content": format!("CREATE TABLE t{i} (id int);\n") }))
        .collect()
}

/// Sessions of the tool database waiting for a lock.
async fn waiting(db: &PgDatabase) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

async fn wait_for_waiting(db: &PgDatabase, n: i64) {
    for _ in 0..600 {
        if waiting(db).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} imports reached the tool database within 30 s");
}

fn import_body(files: &[Value]) -> Value {
    json!({ "files": files, "layout": "plain" })
}

#[tokio::test]
async fn imports_are_one_per_user_and_bounded_and_ten_thousand_files_take_a_few_statements() {
    let served = std::sync::Arc::new(Served::start(&[]).await);
    let tokens: Vec<String> = (1..=4).map(|i| served.admin(&format!("importer{i}@example.com"))).collect();
    let (status, project) =
        served.call(&tokens[0], Method::POST, "/api/v1/projects", Some(json!({"name": "big"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project = project["id"].as_str().unwrap().to_owned();
    let import_path = format!("/api/v1/projects/{project}/import");

    // Hold the project's row, so that imports into it wait inside their transaction (creating a migration
    // checks the project reference) and stay "running" for as long as this test wants.
    let mut holder = served.db.pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM projects WHERE id = $1::uuid FOR UPDATE")
        .bind(&project)
        .execute(&mut *holder)
        .await
        .unwrap();

    let spawn_import = |token: String, body: Value| {
        let served = served.clone();
        let path = import_path.clone();
        tokio::spawn(async move { served.call(&token, Method::POST, &path, Some(body)).await })
    };
    let big = spawn_import(tokens[0].clone(), import_body(&files(1, 10_000)));
    wait_for_waiting(&served.db, 1).await;

    // The same user again: refused at once, with a code saying why.
    let (status, refused) =
        served.call(&tokens[0], Method::POST, &import_path, Some(import_body(&files(20_001, 1)))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["error"]["code"], "import_in_progress", "{refused}");

    // Other users' imports run, up to the bound on imports in all; past it they are refused too.
    let second = spawn_import(tokens[1].clone(), import_body(&files(30_001, 2)));
    let third = spawn_import(tokens[2].clone(), import_body(&files(40_001, 3)));
    wait_for_waiting(&served.db, 3).await;
    let (status, refused) =
        served.call(&tokens[3], Method::POST, &import_path, Some(import_body(&files(50_001, 1)))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["error"]["code"], "imports_busy", "{refused}");

    // The hub still serves everyone else meanwhile: the imports hold a few connections, not all of them.
    for _ in 0..20 {
        let (status, body) = served.call(&tokens[3], Method::GET, "/api/v1/projects", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    holder.rollback().await.unwrap();
    let (status, report) = big.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 10_000);
    assert_eq!(report["created"][0], "000001");
    assert_eq!(report["created"][9_999], "010000");
    for (task, n) in [(second, 2), (third, 3)] {
        let (status, report) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["created"].as_array().unwrap().len(), n, "{report}");
    }
    // The places are given back: the first user may import again.
    let (status, report) =
        served.call(&tokens[0], Method::POST, &import_path, Some(import_body(&files(20_001, 1)))).await;
    assert_eq!(status, StatusCode::OK, "{report}");

    // Timing, unhindered: a fresh project of 10,000 files, then the same files again with one changed.
    let (_, other) = served.call(&tokens[0], Method::POST, "/api/v1/projects", Some(json!({"name": "timed"}))).await;
    let other_path = format!("/api/v1/projects/{}/import", other["id"].as_str().unwrap());
    let started = Instant::now();
    let (status, report) =
        served.call(&tokens[0], Method::POST, &other_path, Some(import_body(&files(1, 10_000)))).await;
    let fresh = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 10_000);
    let mut again = files(1, 10_000);
    again[4_999]["content"] = json!("CREATE TABLE t5000 (id bigint);\n");
    let started = Instant::now();
    let (status, report) = served.call(&tokens[0], Method::POST, &other_path, Some(import_body(&again))).await;
    let reimport = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["updated"], json!(["005000"]));
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 9_999);
    eprintln!(
        "10,000-file import: {} ms new, {} ms again with one file changed",
        fresh.as_millis(),
        reimport.as_millis()
    );

    // One row per migration and version, numbered as one at a time would have been.
    let rows: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT m.version_key, v.version_no, v.up_sql
         FROM migrations m JOIN migration_versions v ON v.migration_id = m.id
         WHERE m.project_id = $1::uuid ORDER BY m.version_key, v.version_no",
    )
    .bind(other["id"].as_str().unwrap())
    .fetch_all(&served.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 10_001);
    let changed: Vec<_> = rows.iter().filter(|(key, ..)| key == "005000").collect();
    assert_eq!(changed.len(), 2);
    assert_eq!((changed[1].1, changed[1].2.as_str()), (2, "CREATE TABLE t5000 (id bigint);\n"));
    assert!(rows.iter().filter(|(key, ..)| key != "005000").all(|(_, no, _)| *no == 1));
}
