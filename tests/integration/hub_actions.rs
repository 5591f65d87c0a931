//! Recovery, adoption and baseline as approved hub runs (issue "Recovery, adoption and layouts", SPEC §4),
//! end to end through the real server and worker binaries on real MariaDB and Postgres targets: the dirty
//! row is read at request and pinned, approved by someone else, carried out by a worker under the target's
//! lock only while the row is still the one seen, and audited; an adoption reads the other tool's history at
//! request and again on the target; then the hub goes on, nothing re-applied.

use std::time::{Duration, Instant};

use domain::enums::Role;
use migrate_hub_tests::{MySqlDatabase, PgDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, MASTER_KEYS, api_for, id, start_worker, target_body};
use crate::hub::{Hub, HubOptions};

struct Setup {
    hub: Hub,
    admin: Api,
    dev: Api,
    boss: Api,
    other_boss: Api,
    env_id: String,
    targets: Vec<String>,
    set_id: String,
    project_id: String,
}

/// A hub with an environment needing one approval, one target per URL in a db set, and a project holding
/// `files` (an import).
async fn setup(engine: &str, urls: &[&str], files: Value) -> Setup {
    let hub = Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), ..HubOptions::default() }).await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let dev = api_for(&hub, "dev@example.com", Role::User).await;
    let boss = api_for(&hub, "boss@example.com", Role::Manager).await;
    let other_boss = api_for(&hub, "other-boss@example.com", Role::Manager).await;
    let body = json!({"name": "prod", "approval_required": true});
    let env_id = id(&admin.ok(Method::POST, "/api/v1/environments", body, StatusCode::CREATED).await);
    let mut targets = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let body = target_body(&env_id, &format!("t-0{}", i + 1), engine, url, None);
        targets.push(id(&admin.ok(Method::POST, "/api/v1/targets", body, StatusCode::CREATED).await));
    }
    let body = json!({"environment_id": env_id, "name": "fleet", "target_ids": targets});
    let set_id = id(&admin.ok(Method::POST, "/api/v1/db-sets", body, StatusCode::CREATED).await);
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "shop"}), StatusCode::CREATED).await;
    let project_id = id(&project);
    let path = format!("/api/v1/projects/{project_id}/import");
    dev.ok(Method::POST, &path, json!({"files": files}), StatusCode::OK).await;
    Setup { hub, admin, dev, boss, other_boss, env_id, targets, set_id, project_id }
}

fn files(set: &[(&str, &str)]) -> Value {
    set.iter().map(|(path, content)| json!({"path": path, "content": content})).collect()
}

async fn wait_until_finished(api: &Api, run: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = api.get(&format!("/api/v1/runs/{run}")).await;
        if matches!(detail["status"].as_str(), Some("succeeded" | "failed" | "cancelled" | "denied")) {
            return detail;
        }
        assert!(Instant::now() < deadline, "run still {}: {detail}", detail["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Approves `run` as `approver` and executes it as `executor`; returns the finished run.
async fn approve_and_execute(approver: &Api, executor: &Api, run: &Value) -> Value {
    let run_id = id(run);
    let body = json!({"content_checksum": run["content_checksum"]});
    approver.ok(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), body, StatusCode::OK).await;
    executor.ok(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), json!({}), StatusCode::OK).await;
    wait_until_finished(executor, &run_id).await
}

/// The one item of `run`, with its log lines joined.
async fn only_item(api: &Api, run: &str) -> (Value, String) {
    let items = api.get(&format!("/api/v1/runs/{run}/items")).await;
    let item = items["items"][0].clone();
    let logs = api.get(&format!("/api/v1/runs/{run}/items/{}/logs?limit=500", id(&item))).await;
    let text: Vec<String> =
        logs["lines"]["items"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap().to_owned()).collect();
    (item, text.join("\n"))
}

/// The target's history rows (through the server's read), by version.
async fn history_row(admin: &Api, target: &str, version: &str) -> Option<Value> {
    let read = admin.get(&format!("/api/v1/targets/{target}/history")).await;
    read["tables"][0]["rows"].as_array().unwrap().iter().find(|r| r["version"] == version).cloned()
}

async fn actions_on(admin: &Api, run: &str) -> Vec<String> {
    let events = admin.get(&format!("/api/v1/audit?object_type=run&object_id={run}&limit=500")).await;
    events["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_dirty_mariadb_row_is_resumed_through_an_approved_recovery() {
    let db = MySqlDatabase::fresh().await;
    let set = files(&[
        ("001_a.up.sql", "CREATE TABLE a (id int);"),
        ("002_b.up.sql", "CREATE TABLE b (id int);\nINSERT INTO lookup VALUES (1);\nCREATE TABLE c (id int);"),
    ]);
    let Setup { hub, admin, dev, boss, other_boss, env_id, targets, set_id, project_id } =
        setup("mysql", &[&db.url], set).await;
    let target = &targets[0];
    let _worker = start_worker(&hub.db);

    // The release stops at 002's second statement: MariaDB committed `b`, the row is dirty.
    let release = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id});
    let run = dev.ok(Method::POST, "/api/v1/runs", release.clone(), StatusCode::CREATED).await;
    let failed = approve_and_execute(&boss, &boss, &run).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let row = history_row(&admin, target, "002").await.unwrap();
    assert_eq!((row["status"].as_str(), row["statements_done"].as_i64()), (Some("failed"), Some(1)), "{row}");

    // A user may not ask for one; a manager's request naming another row than the one there is refused.
    let recovery = |seen_done: i64| {
        json!({
            "kind": "recovery", "project_id": project_id, "environment_id": env_id, "target_id": target,
            "version_key": "002", "resolution": "resume",
            "seen_statements_done": seen_done, "seen_checksum": row["checksum"],
            "comment": "lookup created by hand",
        })
    };
    let (status, body) = dev.call(Method::POST, "/api/v1/runs", Some(recovery(1))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("role_too_low")), "{body}");
    let (status, body) = boss.call(Method::POST, "/api/v1/runs", Some(recovery(0))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("row_changed")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("failed at statement 1 of 3"), "{body}");
    // Version 001 is applied: nothing to recover.
    let mut applied = recovery(1);
    applied["version_key"] = json!("001");
    let (status, body) = boss.call(Method::POST, "/api/v1/runs", Some(applied)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not_dirty")), "{body}");

    // The request pins the row as read; the requester cannot approve it.
    let asked = boss.ok(Method::POST, "/api/v1/runs", recovery(1), StatusCode::CREATED).await;
    let asked_id = id(&asked);
    assert_eq!((asked["kind"].as_str(), asked["status"].as_str()), (Some("recovery"), Some("awaiting_approval")));
    assert_eq!(asked["target_id"], json!(target));
    assert_eq!(asked["db_set_id"], Value::Null);
    assert_eq!(asked["recovery"]["resolution"], "resume");
    assert_eq!(asked["recovery"]["seen"]["statements_done"], 1);
    assert_eq!(asked["recovery"]["seen"]["checksum"], row["checksum"]);
    assert!(asked["recovery"]["seen"]["error"].as_str().unwrap().contains("lookup"), "{asked}");
    assert_eq!(asked["migrations"][0]["version_key"], "002");
    let (status, body) = boss.call(Method::POST, &format!("/api/v1/runs/{asked_id}/approve"), Some(json!({}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("self_approval")), "{body}");
    // Refresh and retry are for releases.
    let (status, body) = boss.call(Method::POST, &format!("/api/v1/runs/{asked_id}/refresh"), None).await;
    assert_eq!(body["error"]["code"], "not_a_release", "{status} {body}");

    // The operator fixes what made it fail, a second person approves, the worker resumes from statement 2.
    sqlx::query("CREATE TABLE lookup (id int)").execute(&db.pool).await.unwrap();
    let done = approve_and_execute(&other_boss, &boss, &asked).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (item, log) = only_item(&boss, &asked_id).await;
    assert_eq!(item["status"], "succeeded", "{item}");
    assert!(log.contains("recovery (resume)") && log.contains("002 resumed"), "{log}");
    let row = history_row(&admin, target, "002").await.unwrap();
    assert_eq!((row["status"].as_str(), row["statements_done"].as_i64()), (Some("applied"), Some(3)), "{row}");
    let c: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'c'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(c, 1);
    let actions = actions_on(&admin, &asked_id).await;
    for wanted in ["run.request", "run.approve_refused", "run.approve", "run.execute", "run.succeeded"] {
        assert!(actions.iter().any(|a| a == wanted), "{wanted} in {actions:?}");
    }

    // The hub goes on: a new release has nothing left to apply there.
    let again = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    let again = approve_and_execute(&boss, &boss, &again).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    let (item, _) = only_item(&dev, &id(&again)).await;
    assert_eq!(item["status"], "skipped", "{item}");
}

#[tokio::test]
async fn a_postgres_recovery_is_refused_when_the_row_changed_after_the_request() {
    let db = PgDatabase::fresh().await;
    let set = files(&[(
        "001_a.up.sql",
        "-- no-transaction\nCREATE TABLE p1 (id int);\nINSERT INTO missing VALUES (1);\nCREATE TABLE p2 (id int);",
    )]);
    let Setup { hub, admin, dev, boss, other_boss, env_id, targets, set_id, project_id } =
        setup("postgres", &[&db.url], set).await;
    let target = &targets[0];
    let _worker = start_worker(&hub.db);
    let release = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id});
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    assert_eq!(approve_and_execute(&boss, &boss, &run).await["status"], "failed");
    let row = history_row(&admin, target, "001").await.unwrap();
    assert_eq!((row["status"].as_str(), row["statements_done"].as_i64()), (Some("failed"), Some(1)), "{row}");

    let mark = |resolution: &str| {
        json!({
            "kind": "recovery", "project_id": project_id, "environment_id": env_id, "target_id": target,
            "version_key": "001", "resolution": resolution,
        })
    };
    let asked = boss.ok(Method::POST, "/api/v1/runs", mark("mark_applied"), StatusCode::CREATED).await;
    // Meanwhile someone else changes the row on the target: the approved decision no longer fits it.
    sqlx::query("UPDATE migrate_hub_history SET statements_done = 2 WHERE version = '001'")
        .execute(&db.pool)
        .await
        .unwrap();
    let done = approve_and_execute(&other_boss, &boss, &asked).await;
    assert_eq!(done["status"], "failed", "{done}");
    let (item, log) = only_item(&boss, &id(&asked)).await;
    assert_eq!(item["error_code"], "row_changed", "{item}");
    assert!(log.contains("changed since it was seen"), "{log}");
    let row = history_row(&admin, target, "001").await.unwrap();
    assert_eq!(
        (row["status"].as_str(), row["statements_done"].as_i64()),
        (Some("failed"), Some(2)),
        "unchanged: {row}"
    );

    // Read afresh and marked rolled back: the row goes, the version is pending again.
    let asked = boss.ok(Method::POST, "/api/v1/runs", mark("mark_rolled_back"), StatusCode::CREATED).await;
    assert_eq!(asked["recovery"]["seen"]["statements_done"], 2);
    let done = approve_and_execute(&other_boss, &boss, &asked).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(history_row(&admin, target, "001").await.is_none());
    // A recovery is for one target, never a db set.
    let (status, body) = boss
        .call(
            Method::POST,
            "/api/v1/runs",
            Some(json!({
                "kind": "recovery", "project_id": project_id, "environment_id": env_id, "db_set_id": set_id,
                "version_key": "001", "resolution": "mark_applied",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "target_id", "a recovery is for one target: {body}");
}

#[tokio::test]
async fn goose_history_is_adopted_through_the_hub_then_only_the_new_version_runs() {
    let (adopted, refused) = (PgDatabase::fresh().await, PgDatabase::fresh().await);
    for (db, versions) in [(&adopted, "(0, true), (1, true), (2, true)"), (&refused, "(0, true), (1, true), (9, true)")]
    {
        let sql = format!(
            "CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, \
             version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now()); \
             INSERT INTO goose_db_version (version_id, is_applied) VALUES {versions}; \
             CREATE TABLE a (id int); CREATE TABLE b (id int);"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&db.pool).await.unwrap();
    }
    let set = files(&[
        ("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"),
        ("00002_b.sql", "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"),
        ("00003_c.sql", "-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n"),
    ]);
    let Setup { hub, admin, dev, boss, other_boss, env_id, targets, project_id, .. } =
        setup("postgres", &[&adopted.url, &refused.url], set).await;
    let _worker = start_worker(&hub.db);
    let adopt = |target: &str| json!({"kind": "adopt", "from": "goose", "project_id": project_id, "environment_id": env_id, "target_id": target});

    // Refused at request, naming the target and the version the project lacks; nothing is made.
    let (status, body) = boss.call(Method::POST, "/api/v1/runs", Some(adopt(&targets[1]))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("adopt_refused")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("t-02") && message.contains('9'), "{message}");

    let asked = boss.ok(Method::POST, "/api/v1/runs", adopt(&targets[0]), StatusCode::CREATED).await;
    assert_eq!(asked["kind"], "adopt");
    assert_eq!(asked["adopt"]["from"], "goose");
    let pinned: Vec<&str> =
        asked["migrations"].as_array().unwrap().iter().map(|m| m["version_key"].as_str().unwrap()).collect();
    assert_eq!(pinned, ["00001", "00002"], "what goose applied is what the approval covers");
    let done = approve_and_execute(&other_boss, &boss, &asked).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, log) = only_item(&boss, &id(&asked)).await;
    assert!(log.contains("2 versions recorded as applied (adopted from goose)"), "{log}");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT version, worker, run_id FROM migrate_hub_history WHERE status = 'applied' ORDER BY version",
    )
    .fetch_all(&adopted.pool)
    .await
    .unwrap();
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["00001", "00002"]);
    assert!(
        rows.iter().all(|r| r.1.starts_with("adopted from goose by ") && r.2.as_deref() == Some(id(&asked).as_str())),
        "{rows:?}"
    );

    // The hub goes on from there: a release to that target applies 00003 only.
    let release = json!({"project_id": project_id, "environment_id": env_id, "target_id": targets[0]});
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    let run = approve_and_execute(&boss, &boss, &run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, log) = only_item(&dev, &id(&run)).await;
    assert!(log.contains("1 of 3 migrations applied, 2 skipped"), "{log}");
    let audit = admin.get(&format!("/api/v1/audit?object_type=run&object_id={}&limit=50", id(&asked))).await;
    let request = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "run.request").unwrap().clone();
    assert_eq!(
        (request["details"]["kind"].as_str(), request["details"]["from"].as_str()),
        (Some("adopt"), Some("goose"))
    );
}

#[tokio::test]
async fn a_baseline_of_a_mariadb_set_records_without_running_then_the_next_version_applies() {
    let dbs = [MySqlDatabase::fresh().await, MySqlDatabase::fresh().await];
    let set = files(&[
        ("001_a.up.sql", "CREATE TABLE a (id int);"),
        ("002_b.up.sql", "CREATE TABLE b (id int);"),
        ("003_c.up.sql", "CREATE TABLE c (id int);"),
    ]);
    let urls: Vec<&str> = dbs.iter().map(|d| d.url.as_str()).collect();
    let Setup { hub, dev, boss, other_boss, env_id, set_id, project_id, .. } = setup("mysql", &urls, set).await;
    let _worker = start_worker(&hub.db);
    let baseline = json!({
        "kind": "baseline", "project_id": project_id, "environment_id": env_id, "db_set_id": set_id, "up_to": "002",
    });
    let asked = boss.ok(Method::POST, "/api/v1/runs", baseline, StatusCode::CREATED).await;
    assert_eq!(asked["kind"], "baseline");
    assert_eq!(asked["migrations"].as_array().unwrap().len(), 2);
    let done = approve_and_execute(&other_boss, &boss, &asked).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    for db in &dbs {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT version, worker FROM migrate_hub_history WHERE status = 'applied' ORDER BY version")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["001", "002"]);
        assert!(rows.iter().all(|r| r.1.starts_with("baseline by ")), "{rows:?}");
        let tables: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('a', 'b')")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(tables, 0, "a baseline runs nothing");
    }
    let release =
        json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id, "concurrency_limit": 2});
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    assert_eq!(approve_and_execute(&boss, &boss, &run).await["status"], "succeeded");
    for db in &dbs {
        let c: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'c'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(c, 1);
    }
}

/// Locks table `t` of `db` exclusively until `held` has passed.
async fn hold_table_lock(db: &PgDatabase, held: Duration) -> tokio::task::JoinHandle<()> {
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE t IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(held).await;
        tx.commit().await.unwrap();
    })
}

#[tokio::test]
async fn a_release_blocked_by_a_table_lock_is_retried_by_the_worker_and_fails_with_lock_timeout_when_held() {
    let db = PgDatabase::fresh().await;
    sqlx::raw_sql("CREATE TABLE t (id int)").execute(&db.pool).await.unwrap();
    let set = files(&[
        ("001_a.up.sql", "ALTER TABLE t ADD COLUMN a int;"),
        ("002_b.up.sql", "ALTER TABLE t ADD COLUMN b int;"),
    ]);
    let Setup { hub, admin, dev, boss, env_id, set_id, project_id, .. } = setup("postgres", &[&db.url], set).await;
    // A short lock timeout, and five retries waiting at most 300 ms each.
    let policy = json!({"lock_timeout_ms": 100, "lock_retries": 5, "lock_retry_max_delay_ms": 300});
    let env = admin.ok(Method::PATCH, &format!("/api/v1/environments/{env_id}"), policy, StatusCode::OK).await;
    assert_eq!((env["lock_retries"].as_u64(), env["lock_retry_max_delay_ms"].as_u64()), (Some(5), Some(300)));
    let (status, body) =
        admin.call(Method::PATCH, &format!("/api/v1/environments/{env_id}"), Some(json!({"lock_retries": 11}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("out_of_range")));
    let _worker = start_worker(&hub.db);

    // Held for a moment: the worker's tries give up, wait, and the migration goes in once the lock is gone.
    let release = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id, "up_to": "001"});
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    let body = json!({"content_checksum": run["content_checksum"]});
    boss.ok(Method::POST, &format!("/api/v1/runs/{}/approve", id(&run)), body, StatusCode::OK).await;
    let holder = hold_table_lock(&db, Duration::from_millis(800)).await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{}/execute", id(&run)), json!({}), StatusCode::OK).await;
    let done = wait_until_finished(&boss, &id(&run)).await;
    holder.await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, log) = only_item(&boss, &id(&run)).await;
    assert!(log.contains("001 statement 1 gave up waiting for a lock") && log.contains("try 2 of 6"), "{log}");

    // Held past the tries: the item fails with the lock-timeout code, once (no further attempts).
    let policy = json!({"lock_retries": 1});
    admin.ok(Method::PATCH, &format!("/api/v1/environments/{env_id}"), policy, StatusCode::OK).await;
    let release = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id});
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    let body = json!({"content_checksum": run["content_checksum"]});
    boss.ok(Method::POST, &format!("/api/v1/runs/{}/approve", id(&run)), body, StatusCode::OK).await;
    let holder = hold_table_lock(&db, Duration::from_secs(4)).await;
    boss.ok(Method::POST, &format!("/api/v1/runs/{}/execute", id(&run)), json!({}), StatusCode::OK).await;
    let done = wait_until_finished(&boss, &id(&run)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let (item, log) = only_item(&boss, &id(&run)).await;
    assert_eq!((item["error_code"].as_str(), item["attempts"].as_u64()), (Some("lock_timeout"), Some(1)), "{item}");
    assert!(log.contains("try 2 of 2"), "{log}");
    holder.await.unwrap();
}

#[tokio::test]
async fn a_projects_dialects_and_switched_off_rules_and_the_environments_lint_block_decide_what_is_refused() {
    let db = PgDatabase::fresh().await;
    let set = files(&[("001_a.up.sql", "CREATE TABLE a (id bigint PRIMARY KEY, at timestamp);\nDROP TABLE legacy;\n")]);
    let Setup { hub: _hub, admin, dev, boss, env_id, set_id, project_id, .. } =
        setup("postgres", &[&db.url], set).await;
    let project_path = format!("/api/v1/projects/{project_id}");
    let release = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id});

    // A project written for MySQL only is not released to Postgres targets.
    let patch = json!({"dialects": ["mysql"]});
    let project = admin.ok(Method::PATCH, &project_path, patch, StatusCode::OK).await;
    assert_eq!(project["dialects"], json!(["mysql"]), "{project}");
    let (status, body) = dev.call(Method::POST, "/api/v1/runs", Some(release.clone())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("dialect_not_declared"))
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("target t-01 is postgres"), "{body}");
    let (status, body) = admin.call(Method::PATCH, &project_path, Some(json!({"dialects": []}))).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("dialects")),
        "{body}"
    );
    admin.ok(Method::PATCH, &project_path, json!({"dialects": ["postgres"]}), StatusCode::OK).await;

    // `lint_block: warning` refuses the warnings too, naming each one.
    let env_path = format!("/api/v1/environments/{env_id}");
    admin.ok(Method::PATCH, &env_path, json!({"lint_block": "warning"}), StatusCode::OK).await;
    let (status, body) = dev.call(Method::POST, "/api/v1/runs", Some(release.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("lint_warning")));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("ban-drop-table") && message.contains("prefer-timestamp-tz"), "{message}");

    // Switched off for the project, a rule neither refuses nor counts: the drop was the only high-risk finding.
    let (status, body) =
        admin.call(Method::PATCH, &project_path, Some(json!({"lint_rules_off": ["syntax-error"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_rule")));
    let patch = json!({"lint_rules_off": ["ban-drop-table", "prefer-timestamp-tz"]});
    admin.ok(Method::PATCH, &project_path, patch, StatusCode::OK).await;
    let run = dev.ok(Method::POST, "/api/v1/runs", release.clone(), StatusCode::CREATED).await;
    assert_eq!(run["risk"], "low", "{run}");
    let detail = dev.get(&format!("/api/v1/runs/{}", id(&run))).await;
    assert_eq!((&detail["review"], &detail["approval"]["need"]), (&json!([]), &json!(1)), "{detail}");
    // What the run pinned stays, whatever the project switches on again later.
    admin.ok(Method::PATCH, &project_path, json!({"lint_rules_off": []}), StatusCode::OK).await;
    let again = dev.get(&format!("/api/v1/runs/{}", id(&run))).await;
    assert_eq!((&again["risk"], &again["review"]), (&json!("low"), &json!([])), "{again}");
    // `never` lets even the warnings through; they are still shown, and the risk still asks its approval.
    dev.ok(Method::POST, &format!("/api/v1/runs/{}/cancel", id(&run)), json!({}), StatusCode::OK).await;
    admin.ok(Method::PATCH, &env_path, json!({"lint_block": "never"}), StatusCode::OK).await;
    let run = dev.ok(Method::POST, "/api/v1/runs", release, StatusCode::CREATED).await;
    let detail = dev.get(&format!("/api/v1/runs/{}", id(&run))).await;
    assert_eq!((&detail["risk"], &detail["approval"]["need"]), (&json!("high"), &json!(2)), "{detail}");
    assert_eq!(detail["review"].as_array().unwrap().len(), 2, "{detail}");
    let approve = json!({"content_checksum": run["content_checksum"]});
    boss.ok(Method::POST, &format!("/api/v1/runs/{}/approve", id(&run)), approve, StatusCode::OK).await;
    assert_eq!(dev.get(&format!("/api/v1/runs/{}", id(&run))).await["status"], "awaiting_approval");
}

#[tokio::test]
async fn the_sql_review_refuses_a_syntax_error_asks_more_of_high_risk_and_an_admin_override_is_audited() {
    let db = PgDatabase::fresh().await;
    let set = files(&[
        ("001_a.up.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\nDROP TABLE legacy;\n"),
        ("002_b.up.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\nCREAT INDEX b_id ON b (id);\n"),
    ]);
    // The hub lives as long as the test (its tool database goes with it).
    let Setup { hub: _hub, admin, dev, boss, other_boss, env_id, set_id, project_id, .. } =
        setup("postgres", &[&db.url], set).await;
    // What the reviewer sees on each version: the risky statement, and the typo, with statement and line.
    let migrations = dev.get(&format!("/api/v1/migrations?project_id={project_id}")).await;
    let by_key = |key: &str| {
        migrations["items"].as_array().unwrap().iter().find(|m| m["version_key"] == key).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let v1 = dev.get(&format!("/api/v1/migrations/{}/versions/1", by_key("001"))).await;
    let drop = v1["lint"].as_array().unwrap().iter().find(|f| f["rule"] == "ban-drop-table").expect("ban-drop-table");
    assert_eq!(
        (&drop["severity"], &drop["statement"], &drop["line"], &drop["engine"]),
        (&json!("warning"), &json!(2), &json!(2), &json!("postgres")),
        "{v1}"
    );
    assert!(drop["message"].as_str().is_some_and(|m| m.contains("table")) && drop.get("help").is_some(), "{drop}");
    assert_eq!(v1["risk"], "high", "{v1}");
    let v2 = dev.get(&format!("/api/v1/migrations/{}/versions/1", by_key("002"))).await;
    let typo = &v2["lint"].as_array().unwrap().iter().find(|f| f["rule"] == "syntax-error").expect("syntax-error");
    assert_eq!((&typo["severity"], &typo["line"], &typo["column"]), (&json!("error"), &json!(2), &json!(1)), "{v2}");

    // Up to 002 is refused before anyone approves, naming the version and the rule.
    let release =
        |up_to: &str| json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id, "up_to": up_to});
    let (status, body) = dev.call(Method::POST, "/api/v1/runs", Some(release("002"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lint_error")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("002") && message.contains("syntax-error") && message.contains("line 2"), "{message}");

    // Up to 001 goes (a warning does not block under `lint_block: error`), but it is high-risk: the prod
    // environment asks one approval more of it, and the run pins its review.
    let run = dev.ok(Method::POST, "/api/v1/runs", release("001"), StatusCode::CREATED).await;
    assert_eq!(run["risk"], "high", "{run}");
    let run_id = id(&run);
    let body = json!({"content_checksum": run["content_checksum"]});
    boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), body.clone(), StatusCode::OK).await;
    let detail = dev.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(
        (&detail["status"], &detail["approval"]["have"], &detail["approval"]["need"]),
        (&json!("awaiting_approval"), &json!(1), &json!(2)),
        "{detail}"
    );
    assert!(
        detail["review"].as_array().unwrap().iter().any(|f| f["rule"] == "ban-drop-table" && f["version_key"] == "001")
    );
    let (status, refused) = boss.call(Method::POST, &format!("/api/v1/runs/{run_id}/execute"), Some(json!({}))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_status")), "{refused}");
    other_boss.ok(Method::POST, &format!("/api/v1/runs/{run_id}/approve"), body, StatusCode::OK).await;
    assert_eq!(dev.get(&format!("/api/v1/runs/{run_id}")).await["status"], "approved");
    dev.ok(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"), json!({}), StatusCode::OK).await;

    // Only an admin may override the review, with a reason; the override is kept on the run and audited.
    let overridden = json!({"project_id": project_id, "environment_id": env_id, "db_set_id": set_id,
                            "lint_override": "002's typo is fixed by hand on the one target; tracked in OPS-12"});
    let (status, body) = dev.call(Method::POST, "/api/v1/runs", Some(overridden.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_admin")), "{body}");
    let run = admin.ok(Method::POST, "/api/v1/runs", overridden, StatusCode::CREATED).await;
    assert_eq!(run["lint_override"]["reason"], "002's typo is fixed by hand on the one target; tracked in OPS-12");
    let events = admin.get(&format!("/api/v1/audit?object_type=run&object_id={}&limit=50", id(&run))).await;
    let request = events["items"].as_array().unwrap().iter().find(|e| e["action"] == "run.request").unwrap();
    let details = &request["details"];
    assert_eq!(details["lint_override"]["reason"], run["lint_override"]["reason"], "{request}");
    assert!(details["lint_override"]["refused"][0].as_str().unwrap().contains("syntax-error"), "{request}");
    assert_eq!((&details["risk"], &details["approvals_needed"]), (&json!("high"), &json!(2)), "{request}");
}
