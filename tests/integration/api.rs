//! The REST API end to end, with tokens, against real servers: the whole approval story on a Postgres and a
//! MariaDB target applied by the real worker binary, the audit chain verified by the real server binary
//! (and broken by a raw UPDATE), idempotent run creation under 1,000 concurrent duplicates, size limits,
//! malformed bodies, and the OpenAPI document matching the route table.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain::enums::{Role, TokenScope};
use migrate_hub_tests::{MySqlDatabase, PgDatabase, binary};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::hub::{Hub, HubOptions};

pub(crate) const MASTER_KEYS: &str = "k1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A client that speaks to the hub with one user's token.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// A request that must succeed with `expect`.
    pub(crate) async fn ok(&self, method: Method, path: &str, body: Value, expect: StatusCode) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert_eq!(status, expect, "{method} {path}: {answer}");
        answer
    }
}

pub(crate) async fn api_for(hub: &Hub, email: &str, role: Role) -> Api {
    let user = hub.user(email, role).await;
    Api { client: reqwest::Client::new(), base: hub.url.clone(), token: hub.token(&user, TokenScope::Write).await }
}

pub(crate) fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Host, port, database and user of a test database URL.
fn parts(url: &str) -> (String, u16, String, String) {
    let url = reqwest::Url::parse(url).unwrap();
    (
        url.host_str().unwrap().to_owned(),
        url.port().unwrap(),
        url.path().trim_start_matches('/').to_owned(),
        url.username().to_owned(),
    )
}

pub(crate) fn target_body(env: &str, name: &str, engine: &str, url: &str, password: Option<&str>) -> Value {
    let (host, port, database, username) = parts(url);
    let mut body = json!({
        "environment_id": env, "name": name, "engine": engine, "host": host, "port": port,
        "database": database, "username": username, "tls_mode": "disable",
    });
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    body
}

pub(crate) struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_worker(db: &PgDatabase) -> Worker {
    let child = Command::new(binary("migrate-hub-worker"))
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_MASTER_KEYS", MASTER_KEYS)
        .env("MIGRATE_HUB_HEARTBEAT_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker(child)
}

fn audit_verify(db: &PgDatabase) -> (bool, String) {
    let out = Command::new(binary("migrate-hub-server"))
        .args(["audit", "verify"])
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn wait_for_status(api: &Api, run: &str, wanted: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let detail = api.get(&format!("/api/v1/runs/{run}")).await;
        if detail["status"] == wanted {
            return detail;
        }
        let status = detail["status"].as_str().unwrap_or_default().to_owned();
        assert!(
            !matches!(status.as_str(), "failed" | "cancelled" | "denied" | "succeeded") && Instant::now() < deadline,
            "run is {status}, wanted {wanted}: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_approval_story_end_to_end_on_postgres_and_mariadb() {
    let hub = Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), ..HubOptions::default() }).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let pg = PgDatabase::fresh().await;
    let my = MySqlDatabase::fresh().await;

    // The admin sets up the inventory and the people.
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({"name": "prod", "approval_required": true}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (env["approvals_required"].as_u64(), env["execute_roles"].clone()),
        (Some(1), json!(["manager", "admin"]))
    );
    let env_id = id(&env);
    let pg_target = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&env_id, "orders-pg", "postgres", &pg.url, Some("s3cr3t-pg-pw")),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(pg_target["secret"], "sealed");
    assert!(!pg_target.to_string().contains("s3cr3t-pg-pw"), "{pg_target}");
    let my_target = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&env_id, "orders-my", "mysql", &my.url, None),
            StatusCode::CREATED,
        )
        .await;
    let set = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({"environment_id": env_id, "name": "fleet", "target_ids": [id(&pg_target), id(&my_target)]}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(set["members"], 2);
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "shop"}), StatusCode::CREATED).await;
    let dev_user = admin
        .ok(Method::POST, "/api/v1/users", json!({"email": "dev@example.com", "role": "user"}), StatusCode::CREATED)
        .await;
    let boss_user = admin
        .ok(Method::POST, "/api/v1/users", json!({"email": "boss@example.com", "role": "manager"}), StatusCode::CREATED)
        .await;
    let token_for = |user: Value| {
        let admin = admin.clone();
        async move {
            let created = admin
                .ok(Method::POST, "/api/v1/tokens", json!({"name": "ci", "user_id": user["id"]}), StatusCode::CREATED)
                .await;
            Api { token: created["token_value"].as_str().unwrap().to_owned(), ..admin }
        }
    };
    let dev = token_for(dev_user).await;
    let boss = token_for(boss_user).await;

    // A user writes a migration and requests a prod run.
    let created = dev
        .ok(
            Method::POST,
            "/api/v1/migrations",
            json!({
                "project_id": id(&project), "version_key": "20260101_0001", "name": "create orders",
                "up_sql": "CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(100));",
                "down_sql": "DROP TABLE orders;",
            }),
            StatusCode::CREATED,
        )
        .await;
    let migration = id(&created["migration"]);
    assert_eq!(created["version"]["up_statements"].as_array().unwrap().len(), 1);
    let request =
        json!({"migration_id": migration, "environment_id": env_id, "db_set_id": id(&set), "concurrency_limit": 2});
    let run = dev.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await;
    assert_eq!(run["status"], "awaiting_approval");
    let run_id = id(&run);

    // The requester cannot approve their own run, whatever they try.
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "self_approval");
    assert_eq!(refused["error"]["message"], "the requester of a run cannot approve it or deny it");

    // A manager approves version 1.
    let approved = boss
        .ok(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/approve"),
            json!({"comment": "lgtm", "version": 1}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approval"]["state"], "approved");

    // The migration is edited after the approval: executing is refused, the approval is for other content.
    let edit = json!({"up_sql": "CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(200));", "down_sql": "DROP TABLE orders;"});
    let v2 = dev.ok(Method::POST, &format!("/api/v1/migrations/{migration}/versions"), edit, StatusCode::CREATED).await;
    assert_eq!(v2["version"]["version"], 2);
    let (status, refused) = boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "checksum_mismatch");
    assert!(refused["error"]["message"].as_str().unwrap().contains("approval was given for different content"));
    let stale = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!((stale["approval"]["stale"].as_bool(), stale["latest_version"].as_u64()), (Some(true), Some(2)));

    // Approving what one did not review is refused; approving version 2 moves the run onto it.
    let (status, refused) =
        boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), Some(json!({"version": 1}))).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("content_changed")),
        "{refused}"
    );
    let reapproved =
        boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), json!({"version": 2}), StatusCode::OK).await;
    assert_eq!((reapproved["status"].as_str(), reapproved["version"].as_u64()), (Some("approved"), Some(2)));
    assert_eq!(reapproved["up_checksum"], v2["version"]["up_checksum"]);

    // The user may not execute in prod; the manager does, and a worker applies it to both targets.
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("role_cannot_execute")));
    let queued = boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    assert_eq!(queued["status"], "queued");
    let _worker = start_worker(&hub.db);
    let done = wait_for_status(&dev, &run_id, "succeeded", Duration::from_secs(90)).await;
    assert_eq!(done["items"], json!([{"status": "succeeded", "count": 2}]), "{done}");

    // The targets hold the table, version 2's.
    assert!(pg.has_table("orders").await);
    let width: i64 = sqlx::query_scalar(
        "SELECT character_maximum_length::bigint FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'",
    )
    .fetch_one(&pg.pool)
    .await
    .unwrap();
    assert_eq!(width, 200);
    let my_width: i64 = sqlx::query_scalar(
        "SELECT CAST(character_maximum_length AS SIGNED) FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = 'orders' AND column_name = 'note'",
    )
    .fetch_one(&my.pool)
    .await
    .unwrap();
    assert_eq!(my_width, 200);

    // Items and their logs are readable.
    let items = dev.get(&format!("/api/v1/runs/{run_id}/items")).await;
    let items = items["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let logs = dev.get(&format!("/api/v1/runs/{run_id}/items/{}/logs", id(&items[0]))).await;
    assert!(!logs["lines"]["items"].as_array().unwrap().is_empty(), "{logs}");

    // Every step is in the audit log, the refusals included, and never the password.
    let audit = admin.get("/api/v1/audit?limit=500").await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "environment.create",
        "target.create",
        "db_set.create",
        "project.create",
        "migration.create",
        "run.request",
        "run.approve_refused",
        "run.approve",
        "migration.version",
        "run.execute_refused",
        "run.repin",
        "run.execute",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert!(!audit.to_string().contains("s3cr3t-pg-pw"));
    let token_writes = audit["items"].as_array().unwrap().iter().filter(|e| e["actor_kind"] == "token").count();
    assert!(token_writes >= 10, "writes by token are attributed to tokens");

    // The chain verifies, then a raw UPDATE (triggers bypassed, as only a superuser could) breaks it.
    let (intact, output) = audit_verify(&hub.db);
    assert!(intact, "{output}");
    assert!(output.contains("intact"), "{output}");
    let api_view = admin.get("/api/v1/audit/verify").await;
    assert_eq!(api_view["intact"], true);
    let mut tx = hub.db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    let tampered: i64 = sqlx::query_scalar(
        "UPDATE audit_events SET details = details || '{\"approved\": false}' \
         WHERE id = (SELECT min(id) FROM audit_events WHERE action = 'run.approve') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (intact, output) = audit_verify(&hub.db);
    assert!(!intact, "{output}");
    assert!(output.contains(&format!("row {tampered}")), "{output}");
    let api_view = admin.get("/api/v1/audit/verify").await;
    assert_eq!((api_view["intact"].as_bool(), api_view["broken_row"].as_i64()), (Some(false), Some(tampered)));
}

#[tokio::test]
async fn the_audit_table_refuses_update_and_delete_from_the_application() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    admin.ok(Method::POST, "/api/v1/projects", json!({"name": "p"}), StatusCode::CREATED).await;
    for sql in ["UPDATE audit_events SET action = 'x.y'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
        let err = sqlx::query(sql).execute(&hub.db.pool).await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

/// Setup for the run tests: an environment without approval, a Postgres target in a set, a migration.
async fn dev_env(hub: &Hub, admin: &Api, pg: &PgDatabase) -> Value {
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({"name": "dev", "approval_required": false}),
            StatusCode::CREATED,
        )
        .await;
    let target = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&id(&env), "t1", "postgres", &pg.url, None),
            StatusCode::CREATED,
        )
        .await;
    let set = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({"environment_id": id(&env), "name": "all", "target_ids": [id(&target)]}),
            StatusCode::CREATED,
        )
        .await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "app"}), StatusCode::CREATED).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/migrations",
            json!({"project_id": id(&project), "version_key": "1", "name": "one", "up_sql": "CREATE TABLE one (id int);"}),
            StatusCode::CREATED,
        )
        .await;
    let _ = hub;
    json!({"migration_id": id(&created["migration"]), "environment_id": id(&env), "db_set_id": id(&set)})
}

#[tokio::test]
async fn a_thousand_concurrent_duplicate_requests_create_one_run() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let pg = PgDatabase::fresh().await;
    let request = dev_env(&hub, &admin, &pg).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (admin, request) = (admin.clone(), request.clone());
        tasks.spawn(async move {
            let response = admin
                .client
                .post(format!("{}/api/v1/runs", admin.base))
                .bearer_auth(&admin.token)
                .header("Idempotency-Key", "release-2026-11-21")
                .json(&request)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["id"].as_str().map(str::to_owned))
        });
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, id) = result.unwrap();
        assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{status}");
        created += usize::from(status == StatusCode::CREATED);
        ids.insert(id.unwrap());
    }
    assert_eq!((ids.len(), created), (1, 1));
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs").fetch_one(&hub.db.pool).await.unwrap();
    assert_eq!(runs, 1);
    // The same key with another request is a conflict, not a silent replay.
    let mut other = request.clone();
    other["concurrency_limit"] = json!(5);
    let response = admin
        .client
        .post(format!("{}/api/v1/runs", admin.base))
        .bearer_auth(&admin.token)
        .header("Idempotency-Key", "release-2026-11-21")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn bodies_over_the_limits_malformed_json_and_unknown_fields_are_refused_clearly() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "big"}), StatusCode::CREATED).await;

    // 1 MiB of SQL is accepted; one byte more is 413.
    let sql = |len: usize| format!("SELECT 1;{}", "-".repeat(len - 9));
    let at_limit = json!({"project_id": id(&project), "version_key": "1", "name": "at limit", "up_sql": sql(1 << 20)});
    admin.ok(Method::POST, "/api/v1/migrations", at_limit, StatusCode::CREATED).await;
    let over = json!({"project_id": id(&project), "version_key": "2", "name": "over", "up_sql": sql((1 << 20) + 1)});
    let (status, body) = admin.call(Method::POST, "/api/v1/migrations", Some(over)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("1048577 bytes"), "{body}");
    // A body over the request limit is 413 before it is parsed.
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(5 << 20));
    let response = admin
        .client
        .post(format!("{}/api/v1/projects", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Malformed JSON: 400 naming where.
    let response = admin
        .client
        .post(format!("{}/api/v1/projects", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"name\": \"a\",")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(body["error"]["message"].as_str().unwrap().contains("line 1"), "{body}");

    // Unknown fields: 400 naming the field.
    let (status, body) = admin.call(Method::POST, "/api/v1/projects", Some(json!({"name": "ok", "owner": "me"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown field `owner`"), "{body}");

    // Invalid values: 422 with the field.
    let (status, body) = admin.call(Method::POST, "/api/v1/projects", Some(json!({"name": "Not A Slug"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = admin
        .call(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({"project_id": id(&project), "version_key": "3", "name": "x", "up_sql": "CREATE INDEX CONCURRENTLY i ON t (c);"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("transaction_mode")),
        "{body}"
    );
    // Text Postgres cannot store (a NUL) is the caller's mistake, not a 500.
    let (status, body) = admin
        .call(Method::PATCH, &format!("/api/v1/projects/{}", id(&project)), Some(json!({"description": "a\u{0}b"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_text")),
        "{body}"
    );
    let env = admin.ok(Method::POST, "/api/v1/environments", json!({"name": "e"}), StatusCode::CREATED).await;
    let mut target = target_body(&id(&env), "t", "postgres", "postgres://u@localhost:5432/d", None);
    target["variables"] = json!({"k\u{0}": "v"});
    let (status, body) = admin.call(Method::POST, "/api/v1/targets", Some(target)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_text")),
        "{body}"
    );
    // Nothing was created by the refused requests.
    let list = admin.get(&format!("/api/v1/migrations?project_id={}", id(&project))).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_environment_without_approval_runs_at_once_and_a_cancelled_run_stays_cancelled() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let user = api_for(&hub, "user@example.com", Role::User).await;
    let pg = PgDatabase::fresh().await;
    let request = dev_env(&hub, &admin, &pg).await;
    let run = user.ok(Method::POST, "/api/v1/runs", request.clone(), StatusCode::CREATED).await;
    assert_eq!(run["status"], "approved");
    assert_eq!(run["approval"]["state"], "not_required");
    let run_id = id(&run);
    let cancelled = user.ok(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"), json!({}), StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, body) = user.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")), "{body}");
    // Someone else's run cannot be cancelled by a user.
    let second = admin.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await;
    let (status, _) = user.call(Method::POST, &format!("/api/v1/runs/{}/cancel", id(&second)), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let listed = user.get("/api/v1/runs?status=cancelled").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_api_routes() {
    let doc = serde_json::to_value(http::openapi::document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routed: std::collections::BTreeSet<(String, String)> = http::routes::table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/") && r.path != "/api/v1/openapi.json")
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
    // And the server serves it.
    let hub = Hub::start(HubOptions::default()).await;
    let served: Value = reqwest::get(format!("{}/api/v1/openapi.json", hub.url)).await.unwrap().json().await.unwrap();
    assert_eq!(served, doc);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_runs_by_status() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    admin.get("/api/v1/environments").await;
    let text = reqwest::get(format!("{}/metrics", hub.url)).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("migrate_hub_http_requests_total{method=\"GET\",route=\"/api/v1/environments\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("migrate_hub_runs{status=\"awaiting_approval\"}"), "{text}");
    assert!(text.contains("migrate_hub_approvals_pending"), "{text}");
}
