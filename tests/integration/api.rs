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
    /// A client of the hub at `base` with the API token `token`.
    pub(crate) fn new(base: String, token: String) -> Self {
        Api { client: reqwest::Client::new(), base, token }
    }

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

pub(crate) struct Worker {
    child: Child,
    /// Where it serves its Prometheus metrics (`host:port`).
    pub(crate) metrics: String,
}

impl Worker {
    /// What its metrics endpoint serves now.
    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics)).await.unwrap().text().await.unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The values of `series` (a metric's name and suffix) in a Prometheus text `body`, one per line that
/// has every one of `labels` (`key="value"`), in the body's order.
pub(crate) fn counts(body: &str, series: &str, labels: &[&str]) -> Vec<String> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{series}{{")) && labels.iter().all(|label| l.contains(label)))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
        .collect()
}

pub(crate) fn start_worker(db: &PgDatabase) -> Worker {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{port}");
    let child = Command::new(binary("migrate-hub-worker"))
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_MASTER_KEYS", MASTER_KEYS)
        .env("MIGRATE_HUB_HEARTBEAT_SECS", "1")
        .env("MIGRATE_HUB_METRICS_ADDR", &metrics)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker { child, metrics }
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
    // Each of them mints their own token: nobody, not even an admin, mints one for someone else.
    let token_for = |user: Value| {
        let (admin, hub) = (admin.clone(), &hub);
        async move {
            let email = domain::values::Email::parse(user["email"].as_str().unwrap()).unwrap();
            let mut conn = hub.db.pool.acquire().await.unwrap();
            let user = storage::users::find_by_email(&mut conn, &email).await.unwrap().unwrap();
            Api { token: hub.token(&user, TokenScope::Write).await, ..admin }
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
    // A release of one migration, pinned at revision 1 to version 1.
    assert_eq!((run["project_id"].as_str(), run["project"].as_str()), (project["id"].as_str(), Some("shop")));
    assert_eq!((run["revision"].as_u64(), &run["retry_of"]), (Some(1), &Value::Null));
    let pinned = run["migrations"].as_array().unwrap();
    assert_eq!(pinned.len(), 1, "{run}");
    assert_eq!(
        (pinned[0]["migration_id"].as_str(), pinned[0]["version_key"].as_str(), pinned[0]["version_no"].as_u64()),
        (Some(migration.as_str()), Some("20260101_0001"), Some(1))
    );
    assert_eq!(pinned[0]["up_checksum"], created["version"]["up_checksum"]);
    let v1_content = run["content_checksum"].as_str().unwrap().to_owned();
    assert_eq!(v1_content.len(), 64, "{run}");
    assert_eq!(run["newest_content_checksum"], v1_content);
    assert_eq!(run["approval"], json!({"state": "pending", "have": 0, "need": 1, "stale": false}));

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
    let first = &approved["approvals"][0];
    assert_eq!(
        (first["revision"].as_u64(), first["content_checksum"].as_str(), first["current"].as_bool()),
        (Some(1), Some(v1_content.as_str()), Some(true))
    );

    // The migration is edited after the approval: the run still pins version 1 and is stale, so executing is
    // refused (the approval is for other content than the newest).
    let edit = json!({"up_sql": "CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(200));", "down_sql": "DROP TABLE orders;"});
    let v2 = dev.ok(Method::POST, &format!("/api/v1/migrations/{migration}/versions"), edit, StatusCode::CREATED).await;
    assert_eq!(v2["version"]["version"], 2);
    let (status, refused) = boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "checksum_mismatch");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("refresh the run to the newest versions"),
        "{refused}"
    );
    let stale = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!((stale["status"].as_str(), stale["approval"]["stale"].as_bool()), (Some("approved"), Some(true)));
    assert_eq!((stale["revision"].as_u64(), stale["migrations"][0]["version_no"].as_u64()), (Some(1), Some(1)));
    assert_eq!(stale["content_checksum"], v1_content);
    let v2_content = stale["newest_content_checksum"].as_str().unwrap().to_owned();
    assert_ne!(v2_content, v1_content);
    // Someone who is neither the requester nor a manager may not refresh it.
    let other = api_for(&hub, "other@example.com", Role::User).await;
    let (status, refused) = other.call(Method::POST, &format!("/api/v1/runs/{run_id}/refresh"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("role_too_low")));

    // The requester refreshes it: revision 2, version 2, awaiting approval again; the old approval stays on
    // record and no longer counts.
    let refreshed = dev.ok(Method::POST, &format!("/api/v1/runs/{run_id}/refresh"), json!({}), StatusCode::OK).await;
    assert_eq!((refreshed["status"].as_str(), refreshed["revision"].as_u64()), (Some("awaiting_approval"), Some(2)));
    assert_eq!(refreshed["migrations"][0]["version_no"], 2);
    assert_eq!(refreshed["migrations"][0]["up_checksum"], v2["version"]["up_checksum"]);
    assert_eq!(
        (refreshed["content_checksum"].as_str(), refreshed["newest_content_checksum"].as_str()),
        (Some(v2_content.as_str()), Some(v2_content.as_str()))
    );
    assert_eq!(refreshed["approval"], json!({"state": "pending", "have": 0, "need": 1, "stale": false}));
    let old = &refreshed["approvals"][0];
    assert_eq!(
        (old["revision"].as_u64(), old["content_checksum"].as_str(), old["current"].as_bool()),
        (Some(1), Some(v1_content.as_str()), Some(false))
    );
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/refresh"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not_stale")), "{refused}");
    let (status, refused) = boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")), "{refused}");

    // Approving what one did not review is refused; approving the new content counts.
    for reviewed in [json!({"version": 1}), json!({"content_checksum": v1_content})] {
        let (status, refused) =
            boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), Some(reviewed)).await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("content_changed")),
            "{refused}"
        );
    }
    let reapproved = boss
        .ok(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/approve"),
            json!({"version": 2, "content_checksum": v2_content.to_uppercase()}),
            StatusCode::OK,
        )
        .await;
    assert_eq!((reapproved["status"].as_str(), reapproved["revision"].as_u64()), (Some("approved"), Some(2)));
    assert_eq!(reapproved["approval"], json!({"state": "approved", "have": 1, "need": 1, "stale": false}));
    let current: Vec<_> = reapproved["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["revision"].as_u64(), a["content_checksum"].as_str(), a["current"].as_bool()))
        .collect();
    assert_eq!(
        current,
        [(Some(1), Some(v1_content.as_str()), Some(false)), (Some(2), Some(v2_content.as_str()), Some(true))]
    );

    // The user may not execute in prod; the manager does, and a worker applies it to both targets.
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("role_cannot_execute")));
    let queued = boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    assert_eq!(queued["status"], "queued");
    let worker = start_worker(&hub.db);
    let done = wait_for_status(&dev, &run_id, "succeeded", Duration::from_secs(90)).await;
    assert_eq!(done["items"], json!([{"status": "succeeded", "count": 2}]), "{done}");
    // The worker's metrics tell the items' overhead and each of its phases, for both items, as first
    // releases (neither target held a history row of the project).
    let metrics = worker.metrics().await;
    let first = "first_release=\"true\"";
    assert_eq!(counts(&metrics, "migrate_hub_item_overhead_seconds_count", &[first]), ["2"], "{metrics}");
    assert_eq!(counts(&metrics, "migrate_hub_item_overhead_seconds_count", &[]), ["2"], "one kind of item: {metrics}");
    for phase in ["prepare", "connect", "lock_and_history", "release_beyond_sql", "record"] {
        let labels = [format!("phase=\"{phase}\"")];
        let labels = [labels[0].as_str(), first];
        assert_eq!(counts(&metrics, "migrate_hub_item_phase_seconds_count", &labels), ["2"], "{phase} in {metrics}");
    }

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
    for item in items {
        assert_eq!((item["migrations_done"].as_u64(), item["migrations_total"].as_u64()), (Some(1), Some(1)), "{item}");
    }
    let logs = dev.get(&format!("/api/v1/runs/{run_id}/items/{}/logs", id(&items[0]))).await;
    let lines = logs["lines"]["items"].as_array().unwrap();
    // The statement's line names its migration and counts from 1.
    let statement = lines.iter().find(|l| !l["statement_index"].is_null()).unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(
        (statement["version_key"].as_str(), statement["statement_index"].as_u64()),
        (Some("20260101_0001"), Some(1)),
        "{logs}"
    );
    assert!(statement["message"].as_str().unwrap().starts_with("20260101_0001 statement 1: CREATE TABLE orders"));

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
        "run.refresh_refused",
        "run.refresh",
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

/// Approvals count for one revision of a run's content: an edit makes a run that awaits its second approval
/// stale, so that approval is refused (409 `checksum_mismatch`) until the run is refreshed, and the refresh
/// asks both approvers again. A cancelled run is retried with its approvals carried over.
#[tokio::test]
async fn a_stale_run_takes_no_approval_until_refreshed_and_a_cancelled_one_is_retried() {
    let hub = Hub::start(HubOptions::default()).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let dev = api_for(&hub, "dev@example.com", Role::User).await;
    let ann = api_for(&hub, "ann@example.com", Role::Manager).await;
    let bob = api_for(&hub, "bob@example.com", Role::Manager).await;
    let pg = PgDatabase::fresh().await;
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({"name": "prod", "approval_required": true, "approvals_required": 2}),
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
    let created = dev
        .ok(
            Method::POST,
            "/api/v1/migrations",
            json!({"project_id": id(&project), "version_key": "1", "name": "one", "up_sql": "CREATE TABLE one (id int);"}),
            StatusCode::CREATED,
        )
        .await;
    let migration = id(&created["migration"]);
    let request = json!({"migration_id": migration, "environment_id": id(&env), "db_set_id": id(&set)});
    let run = dev.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await;
    let run_id = id(&run);
    let approve = |who: &Api| {
        let (who, path) = (who.clone(), format!("/api/v1/runs/{run_id}/approve"));
        async move { who.call(Method::POST, &path, Some(json!({}))).await }
    };
    let (status, first) = approve(&ann).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["approval"], json!({"state": "pending", "have": 1, "need": 2, "stale": false}));

    // An edit before the second approval: the run is stale, and approving it is refused.
    let edit = json!({"up_sql": "CREATE TABLE one (id bigint);"});
    dev.ok(Method::POST, &format!("/api/v1/migrations/{migration}/versions"), edit, StatusCode::CREATED).await;
    let (status, refused) = approve(&bob).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checksum_mismatch")),
        "{refused}"
    );
    let stale = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(stale["status"], "awaiting_approval");
    assert_eq!(stale["approval"], json!({"state": "pending", "have": 1, "need": 2, "stale": true}));
    assert_eq!(stale["approvals"].as_array().unwrap().len(), 1, "the refused approval is not recorded: {stale}");
    assert_ne!(stale["newest_content_checksum"], stale["content_checksum"]);

    // A manager refreshes it (not only its requester may): Ann's approval of revision 1 no longer counts, and
    // she may decide again on revision 2, once.
    let refreshed = bob.ok(Method::POST, &format!("/api/v1/runs/{run_id}/refresh"), json!({}), StatusCode::OK).await;
    assert_eq!(refreshed["revision"], 2);
    assert_eq!(refreshed["approval"], json!({"state": "pending", "have": 0, "need": 2, "stale": false}));
    let (status, again) = approve(&ann).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["approval"]["have"], 1);
    let (status, twice) = approve(&ann).await;
    assert_eq!((status, twice["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_decided")), "{twice}");
    let (status, approved) = approve(&bob).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        (approved["status"].as_str(), approved["approval"]["state"].as_str()),
        (Some("approved"), Some("approved"))
    );
    let content = approved["content_checksum"].clone();
    assert_eq!(content, approved["newest_content_checksum"]);

    // Only a failed or cancelled run is retried.
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/retry"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")), "{refused}");
    ann.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    dev.ok(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"), json!({}), StatusCode::OK).await;
    let (status, refused) = dev.call(Method::POST, &format!("/api/v1/runs/{run_id}/refresh"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")), "{refused}");
    let other = api_for(&hub, "other@example.com", Role::User).await;
    let (status, refused) = other.call(Method::POST, &format!("/api/v1/runs/{run_id}/retry"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("role_too_low")), "{refused}");

    // The retry: the same content for the target that never ran, approved by the two carried approvals of
    // the original's current revision (not Ann's of revision 1).
    let retry = dev.ok(Method::POST, &format!("/api/v1/runs/{run_id}/retry"), json!({}), StatusCode::CREATED).await;
    assert_eq!((retry["retry_of"].as_str(), retry["status"].as_str()), (Some(run_id.as_str()), Some("approved")));
    assert_eq!((&retry["content_checksum"], retry["revision"].as_u64()), (&content, Some(1)));
    assert_eq!(retry["items"], json!([{"status": "pending", "count": 1}]), "{retry}");
    let carried = retry["approvals"].as_array().unwrap();
    assert_eq!(carried.len(), 2, "{retry}");
    let original = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    let current: Vec<&Value> =
        original["approvals"].as_array().unwrap().iter().filter(|a| a["revision"] == 2).collect();
    for approval in carried {
        assert_eq!((&approval["content_checksum"], approval["current"].as_bool()), (&content, Some(true)));
        assert!(current.iter().any(|a| a["id"] == approval["carried_from"]), "{approval} not carried from {original}");
    }
    assert_eq!(original["retries"], json!([id(&retry)]));
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

#[tokio::test]
async fn fleet_operations_over_http_waves_windows_webhooks_and_drift_are_admin_gated_and_shaped() {
    let hub = Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), ..HubOptions::default() }).await;
    let pg = PgDatabase::fresh().await;
    let admin = api_for(&hub, "root@example.com", Role::Admin).await;
    let user = api_for(&hub, "dev@example.com", Role::User).await;
    let ids = dev_env(&hub, &admin, &pg).await;
    let env = ids["environment_id"].as_str().unwrap().to_owned();

    // Windows: admins set them, everyone reads; a bad zone is named.
    let path = format!("/api/v1/environments/{env}/windows");
    let (status, _) = user.call(Method::PUT, &path, Some(json!({"windows": ["Sat 02:00-05:00 UTC"]}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) =
        admin.call(Method::PUT, &path, Some(json!({"windows": ["Sat 02:00-05:00 Nowhere/City"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_window")));
    let set = admin.ok(Method::PUT, &path, json!({"windows": ["daily 00:00-24:00 UTC"]}), StatusCode::OK).await;
    assert_eq!(
        (set["windows"][0].as_str(), set["open"].as_bool()),
        (Some("Mon,Tue,Wed,Thu,Fri,Sat,Sun 00:00-24:00 UTC"), Some(true))
    );
    assert_eq!(user.get(&path).await["open"], true);

    // Waves: a plan of one wave is refused at request (nothing to stage).
    let mut request = ids.clone();
    request["waves"] = json!([{"percent": 100}]);
    let (status, body) = user.call(Method::POST, "/api/v1/runs", Some(request.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_waves")));
    request["waves"] = json!([{"targets": 1}, {"percent": 100}]);
    request["not_before"] = json!("2030-01-01T00:00:00Z");
    let run = user.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await;
    assert_eq!(run["waves"]["state"], "not_started");
    assert_eq!(run["waves"]["waves"][0]["spec"], "1 target");
    assert_eq!(run["not_before"], "2030-01-01T00:00:00Z");
    assert_eq!(run["window"]["open"], true);
    let (status, body) = user.call(Method::POST, &format!("/api/v1/runs/{}/continue", id(&run)), Some(json!({}))).await;
    // Nothing to continue: the run has not started.
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")));

    // Webhooks: admins only; the secret is in the creation answer only, the URL's path never.
    let hooks = format!("/api/v1/environments/{env}/webhooks");
    let (status, _) = user.call(Method::GET, &hooks, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let own = format!("{}/api/v1/runs", hub.url);
    let (status, body) = admin.call(Method::POST, &hooks, Some(json!({"url": own, "events": ["run.failed"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("refused_url")));
    let made = admin
        .ok(
            Method::POST,
            &hooks,
            json!({"url": "https://hooks.example.com/T000/secret-path", "events": ["run.failed"]}),
            StatusCode::CREATED,
        )
        .await;
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    let listed = admin.get(&hooks).await;
    assert_eq!(listed[0]["url"], "https://hooks.example.com/…");
    assert!(!listed.to_string().contains("secret-path") && !listed.to_string().contains("whsec_"));
    let hook = id(&made["webhook"]);
    admin.ok(Method::POST, &format!("/api/v1/webhooks/{hook}/test"), json!({}), StatusCode::ACCEPTED).await;
    let log = admin.get(&format!("/api/v1/environments/{env}/webhook-deliveries")).await;
    assert_eq!((log[0]["event"].as_str(), log[0]["status"].as_str()), (Some("webhook.test"), Some("pending")));
    let (status, _) = admin.call(Method::DELETE, &format!("/api/v1/webhooks/{hook}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Drift: off until scheduled; a target never fingerprinted is `unknown` and has nothing to accept.
    let (status, _) = user
        .call(Method::PUT, &format!("/api/v1/environments/{env}/drift"), Some(json!({"check_every_minutes": 60})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = admin
        .call(Method::PUT, &format!("/api/v1/environments/{env}/drift"), Some(json!({"check_every_minutes": 60})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let targets = admin.get(&format!("/api/v1/targets?environment_id={env}")).await;
    let target = id(&targets["items"][0]);
    assert_eq!(user.get(&format!("/api/v1/targets/{target}/drift")).await["state"], "unknown");
    let (status, body) =
        admin.call(Method::POST, &format!("/api/v1/targets/{target}/drift/accept"), Some(json!({}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("nothing_to_accept")));
}
