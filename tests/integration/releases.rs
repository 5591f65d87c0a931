//! Releases end to end through the real server and worker binaries (issue "Releases", SPEC §4): a project
//! of seven migrations goes to a fleet in one request, one approval and one execute, on Postgres (River's
//! own migration files, with its `schema` placeholder set per target) and on MariaDB; a finished run never
//! changes what it shows; an edit before execute makes the run stale until it is refreshed and approved
//! again; pre-flight refuses a missing variable at request; a failed target is retried without a new
//! approval; a down release reverts in reverse order.

use std::path::Path;
use std::time::{Duration, Instant};

use domain::enums::Role;
use migrate_hub_tests::{MySqlDatabase, PgDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, MASTER_KEYS, api_for, counts, id, start_worker, target_body};
use crate::hub::{Hub, HubOptions};

const RIVER: &str = "river/riverdriver/riverpgxv5/migration/main";

/// River's migration files, as a directory import sends them.
fn river_files() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workloads").join(RIVER);
    let mut files: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .map(|path| {
            json!({
                "path": path.file_name().unwrap().to_str().unwrap(),
                "content": std::fs::read_to_string(&path).unwrap(),
            })
        })
        .collect();
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    files
}

/// Seven MariaDB migrations of our own, as `NNN_name.up.sql` / `.down.sql` files.
fn mariadb_files() -> Vec<Value> {
    let set = [
        (
            "001_accounts",
            "CREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, email varchar(255) NOT NULL);",
            "DROP TABLE accounts;",
        ),
        (
            "002_accounts_email",
            "CREATE UNIQUE INDEX accounts_email ON accounts (email);",
            "DROP INDEX accounts_email ON accounts;",
        ),
        (
            "003_orders",
            "CREATE TABLE orders (id bigint PRIMARY KEY AUTO_INCREMENT, account_id bigint NOT NULL, total decimal(12,2) NOT NULL);",
            "DROP TABLE orders;",
        ),
        (
            "004_orders_status",
            "ALTER TABLE orders ADD COLUMN status varchar(16) NOT NULL DEFAULT 'new';",
            "ALTER TABLE orders DROP COLUMN status;",
        ),
        (
            "005_order_totals",
            "CREATE VIEW order_totals AS SELECT account_id, SUM(total) AS total FROM orders GROUP BY account_id;",
            "DROP VIEW order_totals;",
        ),
        (
            "006_audit",
            "CREATE TABLE order_audit (id bigint PRIMARY KEY AUTO_INCREMENT, order_id bigint NOT NULL);\nCREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW BEGIN INSERT INTO order_audit (order_id) VALUES (NEW.id); END;",
            "DROP TRIGGER orders_audit;\nDROP TABLE order_audit;",
        ),
        (
            "007_accounts_name",
            "ALTER TABLE accounts ADD COLUMN display_name varchar(100) NULL;",
            "ALTER TABLE accounts DROP COLUMN display_name;",
        ),
    ];
    set.iter()
        .flat_map(|(name, up, down)| {
            [
                json!({"path": format!("{name}.up.sql"), "content": up}),
                json!({"path": format!("{name}.down.sql"), "content": down}),
            ]
        })
        .collect()
}

async fn wait_until_finished(api: &Api, run: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let detail = api.get(&format!("/api/v1/runs/{run}")).await;
        if matches!(detail["status"].as_str(), Some("succeeded" | "failed" | "cancelled" | "denied")) {
            return detail;
        }
        assert!(Instant::now() < deadline, "run still {} after {within:?}: {detail}", detail["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state-changing requests people made about `run`, from the audit log (workers' events left out).
async fn people_actions(admin: &Api, run: &str) -> Vec<String> {
    let events = admin.get(&format!("/api/v1/audit?object_type=run&object_id={run}&limit=500")).await;
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_kind"] != "worker")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// The version keys the lines of an item's log are about, in log order, without repeats in a row.
async fn logged_versions(api: &Api, run: &str, item: &str) -> Vec<String> {
    let logs = api.get(&format!("/api/v1/runs/{run}/items/{item}/logs?limit=500")).await;
    let mut keys: Vec<String> = Vec::new();
    for line in logs["lines"]["items"].as_array().unwrap() {
        if let Some(key) = line["version_key"].as_str()
            && keys.last().map(String::as_str) != Some(key)
        {
            keys.push(key.to_owned());
        }
    }
    keys
}

async fn pg_history(db: &PgDatabase) -> Vec<String> {
    sqlx::query_scalar("SELECT version FROM migrate_hub_history WHERE status = 'applied' ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

async fn my_history(db: &MySqlDatabase) -> Vec<String> {
    sqlx::query_scalar("SELECT version FROM migrate_hub_history WHERE status = 'applied' ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

fn keys(run: &Value) -> Vec<String> {
    run["migrations"].as_array().unwrap().iter().map(|m| m["version_key"].as_str().unwrap().to_owned()).collect()
}

/// The parts of a run resource that a finished run must keep showing.
fn record_of(run: &Value) -> Value {
    json!({
        "status": run["status"], "migrations": run["migrations"], "content_checksum": run["content_checksum"],
        "revision": run["revision"], "approval": run["approval"], "approvals": run["approvals"], "items": run["items"],
    })
}

/// A hub with an admin, a user and a manager, a `prod` environment needing one approval, and a db set
/// `fleet` of one target per database (`<prefix>-01`…, with `variables`).
struct Setup {
    hub: Hub,
    admin: Api,
    dev: Api,
    boss: Api,
    env_id: String,
    fleet: Vec<String>,
    set_id: String,
}

async fn setup(engine: &str, prefix: &str, urls: &[&str], variables: Option<Value>) -> Setup {
    let hub = Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), ..HubOptions::default() }).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let dev = api_for(&hub, "dev@example.com", Role::User).await;
    let boss = api_for(&hub, "boss@example.com", Role::Manager).await;
    // One approval whatever the SQL review's risk (River's indexes are high-risk): these tests are about the
    // release; the extra approval a high-risk release needs is `hub_actions`'.
    let body = json!({"name": "prod", "approval_required": true, "high_risk_approvals": 0});
    let env_id = id(&admin.ok(Method::POST, "/api/v1/environments", body, StatusCode::CREATED).await);
    let mut fleet = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let mut body = target_body(&env_id, &format!("{prefix}-0{}", i + 1), engine, url, None);
        if let Some(variables) = &variables {
            body["variables"] = variables.clone();
        }
        fleet.push(id(&admin.ok(Method::POST, "/api/v1/targets", body, StatusCode::CREATED).await));
    }
    let body = json!({"environment_id": env_id, "name": "fleet", "target_ids": fleet});
    let set_id = id(&admin.ok(Method::POST, "/api/v1/db-sets", body, StatusCode::CREATED).await);
    Setup { hub, admin, dev, boss, env_id, fleet, set_id }
}

#[tokio::test]
async fn a_release_of_river_goes_to_three_postgres_targets_with_one_approval() {
    let dbs = [PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await];
    let spare = PgDatabase::fresh().await;
    let variables = json!({"schema": "public"});
    let urls: Vec<&str> = dbs.iter().map(|d| d.url.as_str()).collect();
    let Setup { hub, admin, dev, boss, env_id, fleet, set_id } = setup("postgres", "t", &urls, Some(variables)).await;
    // A target without the `schema` variable River's files use.
    let bare = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&env_id, "t-04", "postgres", &spare.url, None),
            StatusCode::CREATED,
        )
        .await;
    let broken = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({"environment_id": env_id, "name": "broken", "target_ids": [id(&bare)]}),
            StatusCode::CREATED,
        )
        .await;

    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "river"}), StatusCode::CREATED).await;
    let project_id = id(&project);
    let imported = dev
        .ok(
            Method::POST,
            &format!("/api/v1/projects/{project_id}/import"),
            json!({"files": river_files()}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(imported["created"].as_array().unwrap().len(), 7, "{imported}");

    // Pre-flight at request: a target of the set lacks the variable; nothing is made.
    let release = |set: &str| json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set, "failure_policy": "continue", "concurrency_limit": 3});
    let (status, refused) = dev.call(Method::POST, "/api/v1/runs", Some(release(&id(&broken)))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "missing_variable", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("`schema`") && message.contains("t-04"), "{message}");
    assert_eq!(dev.get("/api/v1/runs").await["items"].as_array().unwrap().len(), 0);

    // Three requests roll the seven migrations out to three targets.
    let run = dev.ok(Method::POST, "/api/v1/runs", release(&set_id), StatusCode::CREATED).await;
    let run_id = id(&run);
    assert_eq!(keys(&run), ["001", "002", "003", "004", "005", "006", "007"]);
    assert_eq!(run["status"], "awaiting_approval");
    assert_eq!(run["content_checksum"].as_str().unwrap().len(), 64);
    boss.ok(
        Method::POST,
        &format!("/api/v1/runs/{run_id}/approve"),
        json!({"content_checksum": run["content_checksum"], "comment": "river 0.7"}),
        StatusCode::OK,
    )
    .await;
    let worker = start_worker(&hub.db);
    boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    let done = wait_until_finished(&dev, &run_id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["items"], json!([{"status": "succeeded", "count": 3}]), "{done}");
    assert_eq!(people_actions(&admin, &run_id).await, ["run.execute", "run.approve", "run.request"]);
    for db in &dbs {
        assert_eq!(pg_history(db).await, ["001", "002", "003", "004", "005", "006", "007"]);
    }
    let items = dev.get(&format!("/api/v1/runs/{run_id}/items")).await;
    let first_item = id(&items["items"][0]);
    assert_eq!(items["items"][0]["migrations_done"], 7, "{items}");
    assert_eq!(logged_versions(&dev, &run_id, &first_item).await, ["001", "002", "003", "004", "005", "006", "007"]);
    let logs = dev.get(&format!("/api/v1/runs/{run_id}/items/{first_item}/logs?limit=500")).await;
    let first_statement =
        logs["lines"]["items"].as_array().unwrap().iter().find(|l| l["statement_index"].is_number()).unwrap().clone();
    assert_eq!(first_statement["statement_index"], 1, "statements are numbered from 1: {first_statement}");
    assert!(first_statement["message"].as_str().unwrap().starts_with("001 statement 1: "), "{first_statement}");

    // An edit afterwards changes nothing the finished run shows.
    let before = record_of(&done);
    let migrations = dev.get(&format!("/api/v1/migrations?project_id={project_id}&limit=50")).await;
    let m007 = migrations["items"].as_array().unwrap().iter().find(|m| m["version_key"] == "007").unwrap().clone();
    let v1 = dev.get(&format!("/api/v1/migrations/{}/versions/1", id(&m007))).await;
    let down_v2 = format!("-- reviewed again\n{}", v1["down_sql"].as_str().unwrap());
    dev.ok(
        Method::POST,
        &format!("/api/v1/migrations/{}/versions", id(&m007)),
        json!({"up_sql": v1["up_sql"], "down_sql": down_v2}),
        StatusCode::CREATED,
    )
    .await;
    let after = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(record_of(&after), before);
    assert_eq!(after["approval"]["stale"], false);

    // A down release back to 005; 006 is edited before it executes: stale, 409, refresh, approve again.
    let down = dev
        .ok(
            Method::POST,
            "/api/v1/runs",
            json!({"project_id": project_id, "direction": "down", "down_to": "005", "environment_id": env_id, "db_set_id": set_id, "concurrency_limit": 3}),
            StatusCode::CREATED,
        )
        .await;
    let down_id = id(&down);
    assert_eq!(keys(&down), ["007", "006"], "newest first");
    assert_eq!(down["migrations"][0]["version_no"], 2, "the newest version of 007");
    boss.ok(Method::POST, &format!("/api/v1/runs/{down_id}/approve"), json!({}), StatusCode::OK).await;
    let m006 = migrations["items"].as_array().unwrap().iter().find(|m| m["version_key"] == "006").unwrap().clone();
    let v006 = dev.get(&format!("/api/v1/migrations/{}/versions/1", id(&m006))).await;
    dev.ok(
        Method::POST,
        &format!("/api/v1/migrations/{}/versions", id(&m006)),
        json!({"up_sql": v006["up_sql"], "down_sql": format!("-- revert bulk unique\n{}", v006["down_sql"].as_str().unwrap())}),
        StatusCode::CREATED,
    )
    .await;
    let stale = dev.get(&format!("/api/v1/runs/{down_id}")).await;
    assert_eq!(stale["approval"]["stale"], true, "{stale}");
    let (status, refused) = boss.call(Method::POST, &format!("/api/v1/runs/{down_id}/execute"), None).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checksum_mismatch")),
        "{refused}"
    );
    let refreshed = dev.ok(Method::POST, &format!("/api/v1/runs/{down_id}/refresh"), json!({}), StatusCode::OK).await;
    assert_eq!((refreshed["status"].as_str(), refreshed["revision"].as_u64()), (Some("awaiting_approval"), Some(2)));
    assert_eq!(refreshed["migrations"][1]["version_no"], 2, "006 is re-pinned to its newest version");
    assert_ne!(refreshed["content_checksum"], down["content_checksum"]);
    assert_eq!(refreshed["approval"]["stale"], false);
    assert!(refreshed["approvals"].as_array().unwrap().iter().all(|a| a["current"] == false), "{refreshed}");
    // Back in the approver's inbox.
    let inbox = boss.get("/api/v1/runs?status=awaiting_approval").await;
    assert!(inbox["items"].as_array().unwrap().iter().any(|r| r["id"] == down_id.as_str()), "{inbox}");
    boss.ok(
        Method::POST,
        &format!("/api/v1/runs/{down_id}/approve"),
        json!({"content_checksum": refreshed["content_checksum"]}),
        StatusCode::OK,
    )
    .await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{down_id}/execute"), json!({}), StatusCode::OK).await;
    let reverted = wait_until_finished(&dev, &down_id, Duration::from_secs(120)).await;
    assert_eq!(reverted["status"], "succeeded", "{reverted}");
    for db in &dbs {
        assert_eq!(pg_history(db).await, ["001", "002", "003", "004", "005"]);
    }
    let down_items = dev.get(&format!("/api/v1/runs/{down_id}/items")).await;
    assert_eq!(logged_versions(&dev, &down_id, &id(&down_items["items"][0])).await, ["007", "006"]);
    // The worker tells first releases (no history row of the project on the target) from later ones.
    let metrics = worker.metrics().await;
    for (first, count) in [("true", "3"), ("false", "3")] {
        let label = format!("first_release=\"{first}\"");
        assert_eq!(counts(&metrics, "migrate_hub_item_overhead_seconds_count", &[&label]), [count], "{metrics}");
        let labels = ["phase=\"lock_and_history\"", label.as_str()];
        assert_eq!(counts(&metrics, "migrate_hub_item_phase_seconds_count", &labels), [count], "{metrics}");
    }

    // Up again to 007 while t-03's schema variable points nowhere: t-03 fails, the others succeed.
    let t03 = &fleet[2];
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/targets/{t03}"),
            json!({"variables": {"schema": "nowhere"}}),
            StatusCode::OK,
        )
        .await;
    let again = dev.ok(Method::POST, "/api/v1/runs", release(&set_id), StatusCode::CREATED).await;
    let again_id = id(&again);
    boss.ok(Method::POST, &format!("/api/v1/runs/{again_id}/approve"), json!({}), StatusCode::OK).await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{again_id}/execute"), json!({}), StatusCode::OK).await;
    let failed = wait_until_finished(&dev, &again_id, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(pg_history(&dbs[2]).await, ["001", "002", "003", "004", "005"]);

    // The admin fixes the variable; a retry covers t-03 alone, approved by carrying the approval over.
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/targets/{t03}"),
            json!({"variables": {"schema": "public"}}),
            StatusCode::OK,
        )
        .await;
    let retry = dev.ok(Method::POST, &format!("/api/v1/runs/{again_id}/retry"), json!({}), StatusCode::CREATED).await;
    let retry_id = id(&retry);
    assert_eq!(retry["retry_of"], again_id.as_str());
    assert_eq!(retry["status"], "approved", "{retry}");
    assert_eq!(retry["content_checksum"], again["content_checksum"]);
    assert_eq!(retry["items"], json!([{"status": "pending", "count": 1}]), "{retry}");
    let carried = &retry["approvals"][0];
    assert!(carried["carried_from"].is_string() && carried["current"] == true, "{retry}");
    boss.ok(Method::POST, &format!("/api/v1/runs/{retry_id}/execute"), json!({}), StatusCode::OK).await;
    let retried = wait_until_finished(&dev, &retry_id, Duration::from_secs(120)).await;
    assert_eq!(retried["status"], "succeeded", "{retried}");
    for db in &dbs {
        assert_eq!(pg_history(db).await, ["001", "002", "003", "004", "005", "006", "007"]);
    }
    let actions = people_actions(&admin, &retry_id).await;
    assert!(
        actions.contains(&"run.approval_carried".to_owned()) && actions.contains(&"run.retry".to_owned()),
        "{actions:?}"
    );
    assert!(!actions.contains(&"run.approve".to_owned()), "no new approval: {actions:?}");
    assert_eq!(dev.get(&format!("/api/v1/runs/{again_id}")).await["retries"], json!([retry_id]));
}

#[tokio::test]
async fn a_release_goes_to_three_mariadb_targets_and_a_down_release_reverts_in_reverse_order() {
    let dbs = [MySqlDatabase::fresh().await, MySqlDatabase::fresh().await, MySqlDatabase::fresh().await];
    let urls: Vec<&str> = dbs.iter().map(|d| d.url.as_str()).collect();
    let Setup { hub, admin, dev, boss, env_id, set_id, .. } = setup("mysql", "m", &urls, None).await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "shop"}), StatusCode::CREATED).await;
    let project_id = id(&project);
    dev.ok(
        Method::POST,
        &format!("/api/v1/projects/{project_id}/import"),
        json!({"files": mariadb_files(), "engine": "mysql"}),
        StatusCode::OK,
    )
    .await;
    let _worker = start_worker(&hub.db);

    let run = dev
        .ok(
            Method::POST,
            "/api/v1/runs",
            json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id, "concurrency_limit": 3}),
            StatusCode::CREATED,
        )
        .await;
    let run_id = id(&run);
    assert_eq!(keys(&run), ["001", "002", "003", "004", "005", "006", "007"]);
    boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), json!({}), StatusCode::OK).await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    let done = wait_until_finished(&dev, &run_id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(people_actions(&admin, &run_id).await, ["run.execute", "run.approve", "run.request"]);
    for db in &dbs {
        assert_eq!(my_history(db).await, ["001", "002", "003", "004", "005", "006", "007"]);
    }

    // Up to a version that is not the project's: refused, naming it.
    let (status, refused) = dev
        .call(
            Method::POST,
            "/api/v1/runs",
            Some(json!({"project_id": project_id, "up_to": "099", "environment_id": env_id, "db_set_id": set_id})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("up_to")),
        "{refused}"
    );

    // Down to 003: 007, 006, 005, 004 in that order.
    let down = dev
        .ok(
            Method::POST,
            "/api/v1/runs",
            json!({"project_id": project_id, "direction": "down", "down_to": "003", "environment_id": env_id, "db_set_id": set_id, "concurrency_limit": 3}),
            StatusCode::CREATED,
        )
        .await;
    let down_id = id(&down);
    assert_eq!(keys(&down), ["007", "006", "005", "004"]);
    boss.ok(Method::POST, &format!("/api/v1/runs/{down_id}/approve"), json!({}), StatusCode::OK).await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{down_id}/execute"), json!({}), StatusCode::OK).await;
    let reverted = wait_until_finished(&dev, &down_id, Duration::from_secs(120)).await;
    assert_eq!(reverted["status"], "succeeded", "{reverted}");
    let items = dev.get(&format!("/api/v1/runs/{down_id}/items")).await;
    for item in items["items"].as_array().unwrap() {
        assert_eq!(logged_versions(&dev, &down_id, &id(item)).await, ["007", "006", "005", "004"]);
    }
    for db in &dbs {
        assert_eq!(my_history(db).await, ["001", "002", "003"]);
        let orders_columns: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'orders'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(orders_columns, 3, "004's column is gone");
    }
}

/// Import through the API follows the CLI's rules: files the layout does not read are refused by name
/// unless allowed, a directory without a migration is refused, and diesel's folders import.
#[tokio::test]
async fn an_import_refuses_unread_files_by_name_and_reads_diesel_folders() {
    let db = PgDatabase::fresh().await;
    let Setup { hub: _hub, admin, dev, .. } = setup("postgres", "i", &[db.url.as_str()], None).await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "blog"}), StatusCode::CREATED).await;
    let path = format!("/api/v1/projects/{}/import", id(&project));
    let mut files = vec![json!({"path": "0001_a.sql", "content": "CREATE TABLE a (id int);"})];
    files.push(json!({"path": "versioned/v1.2/0002_b.sql", "content": "CREATE TABLE b (id int);"}));
    let (status, refused) = dev.call(Method::POST, &path, Some(json!({"files": files}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "unreadable", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("versioned/v1.2/0002_b.sql"), "{refused}");
    let listed = dev.get(&format!("/api/v1/migrations?project_id={}", id(&project))).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "nothing was stored: {listed}");
    let allowed =
        dev.ok(Method::POST, &path, json!({"files": files, "allow_unknown_files": true}), StatusCode::OK).await;
    assert_eq!(allowed["created"], json!(["0001"]), "{allowed}");
    assert_eq!(allowed["skipped"][0]["path"], "versioned/v1.2/0002_b.sql", "{allowed}");

    let (status, refused) =
        dev.call(Method::POST, &path, Some(json!({"files": [{"path": "notes.txt", "content": "x"}]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("no migration found"), "{refused}");

    let diesel = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "diesel"}), StatusCode::CREATED).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/diesel-blog");
    let mut files = Vec::new();
    for folder in std::fs::read_dir(&dir).unwrap() {
        let folder = folder.unwrap().path();
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap().path();
            let name = format!(
                "{}/{}",
                folder.file_name().unwrap().to_str().unwrap(),
                file.file_name().unwrap().to_str().unwrap()
            );
            files.push(json!({"path": name, "content": std::fs::read_to_string(&file).unwrap()}));
        }
    }
    let imported = dev
        .ok(Method::POST, &format!("/api/v1/projects/{}/import", id(&diesel)), json!({"files": files}), StatusCode::OK)
        .await;
    assert_eq!(imported["layout"], "diesel", "{imported}");
    assert_eq!(imported["created"].as_array().unwrap().len(), 4, "{imported}");

    // A Flyway repeatable is named as not imported (the CLI applies it), never silently dropped.
    let flyway = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "fly"}), StatusCode::CREATED).await;
    let files = json!([
        {"path": "V1__a.sql", "content": "CREATE TABLE a (id int);"},
        {"path": "R__views.sql", "content": "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;"},
    ]);
    let path = format!("/api/v1/projects/{}/import", id(&flyway));
    let (status, refused) = dev.call(Method::POST, &path, Some(json!({"files": files}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("R__views.sql (a repeatable migration"),
        "{refused}"
    );
    let allowed =
        dev.ok(Method::POST, &path, json!({"files": files, "allow_unknown_files": true}), StatusCode::OK).await;
    assert_eq!(allowed["created"], json!(["1"]), "{allowed}");
}
