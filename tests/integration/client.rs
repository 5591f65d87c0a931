//! The `migrate-hub` command line tool in client mode (issue "The first hour", SPEC §8): the real CLI binary
//! against a real server and worker, as a CI pipeline runs it: `login`, `push` of River's directory,
//! `request`, `approve` by a second person, `execute`, `watch` until the per-target table, with the exit
//! codes a pipeline branches on (0 succeeded, 1 failed, 2 refused, 3 waiting for approval).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;

use domain::enums::{Role, TokenScope};
use migrate_hub_tests::{PgDatabase, binary};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, MASTER_KEYS, id, start_worker, target_body};
use crate::hub::{Hub, HubOptions};

const RIVER: &str = "river/riverdriver/riverpgxv5/migration/main";

fn river_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workloads").join(RIVER)
}

/// The CLI with its config directory at `home` and, when given, `MIGRATE_HUB_TOKEN`; `stdin` is written to
/// its standard input. Awaited, not blocked on: the hub serves from this test's runtime.
async fn cli(home: &Path, token: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut command = tokio::process::Command::new(binary("migrate-hub"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("MIGRATE_HUB_TOKEN")
        .env_remove("MIGRATE_HUB_SERVER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("MIGRATE_HUB_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).await.unwrap();
    child.wait_with_output().await.unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_pipeline_pushes_requests_and_watches_a_release_that_a_second_person_approves() {
    let dbs = [PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await];
    let hub =
        Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), password_login: true, ..HubOptions::default() })
            .await;
    let admin_user = hub.user("admin@example.com", Role::Admin).await;
    let admin_token = hub.token(&admin_user, TokenScope::Write).await;
    let admin = Api::new(hub.url.clone(), admin_token.clone());
    let dev_user = hub.user("dev@example.com", Role::User).await;
    let dev_token = hub.token(&dev_user, TokenScope::Write).await;
    let boss_user = hub.user("boss@example.com", Role::Manager).await;
    let boss_token = hub.token(&boss_user, TokenScope::Write).await;
    let body = json!({"name": "prod", "approval_required": true, "high_risk_approvals": 0});
    let env_id = id(&admin.ok(Method::POST, "/api/v1/environments", body, StatusCode::CREATED).await);
    let mut fleet = Vec::new();
    for (i, db) in dbs.iter().enumerate() {
        let mut body = target_body(&env_id, &format!("t-0{}", i + 1), "postgres", &db.url, None);
        body["variables"] = json!({"schema": "public"});
        fleet.push(id(&admin.ok(Method::POST, "/api/v1/targets", body, StatusCode::CREATED).await));
    }
    let body = json!({"environment_id": env_id, "name": "fleet", "target_ids": fleet});
    admin.ok(Method::POST, "/api/v1/db-sets", body, StatusCode::CREATED).await;
    admin.ok(Method::POST, "/api/v1/projects", json!({"name": "river"}), StatusCode::CREATED).await;
    let _worker = start_worker(&hub.db);
    let home = tempfile_dir();
    let server = hub.url.as_str();

    // Without a hub or a token: refused as usage, saying what to do.
    let none = cli(home.path(), None, &["runs"], "").await;
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("migrate-hub login --server"), "{}", text(&none));

    // `login` checks the token with the hub and keeps it readable by the user only.
    let wrong = cli(home.path(), None, &["login", "--server", server], "not-a-token\n").await;
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(!home.path().join("migrate-hub/credentials.json").exists(), "a refused token is not stored");
    let login = cli(home.path(), None, &["login", "--server", server], &format!("{dev_token}\n")).await;
    assert_eq!(login.status.code(), Some(0), "{}", text(&login));
    assert!(stdout(&login).contains("signed in to") && stdout(&login).contains("dev@example.com"), "{}", text(&login));
    assert!(!stdout(&login).contains(&dev_token), "the token is never printed");
    let stored = home.path().join("migrate-hub/credentials.json");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // `push` imports River's directory: seven migrations created; again, all unchanged.
    let dir = river_dir();
    let dir = dir.to_str().unwrap();
    let push = cli(home.path(), None, &["push", "--project", "river", "--dir", dir], "").await;
    assert_eq!(push.status.code(), Some(0), "{}", text(&push));
    assert!(
        stdout(&push).contains("created      001") && stdout(&push).contains("created=7 new_versions=0 unchanged=0"),
        "{}",
        text(&push)
    );
    let again = cli(home.path(), None, &["push", "--project", "river", "--dir", dir], "").await;
    assert!(stdout(&again).contains("created=0 new_versions=0 unchanged=7"), "{}", text(&again));
    let unknown = cli(home.path(), None, &["push", "--project", "nope", "--dir", dir], "").await;
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no project named `nope` (known: river)"),
        "{}",
        text(&unknown)
    );

    // `request` prints the run and its migrations, and exits 3: it waits for approval.
    let request = cli(
        home.path(),
        None,
        &["request", "--project", "river", "--env", "prod", "--set", "fleet", "--format", "json", "--comment", "ci"],
        "",
    )
    .await;
    assert_eq!(request.status.code(), Some(3), "{}", text(&request));
    let run: Value = serde_json::from_slice(&request.stdout).unwrap();
    let run_id = id(&run);
    assert_eq!(run["migrations"].as_array().unwrap().len(), 7, "{run}");
    let shown = cli(
        home.path(),
        None,
        &["request", "--project", "river", "--env", "prod", "--set", "fleet", "--up-to", "002"],
        "",
    )
    .await;
    assert_eq!(shown.status.code(), Some(3), "{}", text(&shown));
    assert!(stdout(&shown).contains("2 migrations") && stdout(&shown).contains("  002 "), "{}", text(&shown));

    // The requester's own approval is refused: exit 2 with the API's code; a second person's is taken.
    let own = cli(home.path(), None, &["approve", &run_id], "").await;
    assert_eq!(own.status.code(), Some(2), "{}", text(&own));
    assert!(String::from_utf8_lossy(&own.stderr).contains("error: self_approval"), "{}", text(&own));
    let watch_waiting = cli(home.path(), None, &["watch", &run_id, "--timeout", "1"], "").await;
    assert_eq!(watch_waiting.status.code(), Some(3), "{}", text(&watch_waiting));
    let approve = cli(home.path(), Some(&boss_token), &["approve", &run_id, "--comment", "river 0.7"], "").await;
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    assert!(stdout(&approve).contains("approved run") && stdout(&approve).contains("execute"), "{}", text(&approve));

    // `execute` (by a role the environment allows), then `watch` exits 0 with the table of every target.
    let not_allowed = cli(home.path(), None, &["execute", &run_id], "").await;
    assert_eq!(not_allowed.status.code(), Some(2), "{}", text(&not_allowed));
    assert!(
        String::from_utf8_lossy(&not_allowed.stderr).contains("error: role_cannot_execute"),
        "{}",
        text(&not_allowed)
    );
    let execute = cli(home.path(), Some(&boss_token), &["execute", &run_id], "").await;
    assert_eq!(execute.status.code(), Some(0), "{}", text(&execute));
    let watch = cli(home.path(), None, &["watch", &run_id, "--timeout", "120"], "").await;
    assert_eq!(watch.status.code(), Some(0), "{}", text(&watch));
    let out = stdout(&watch);
    assert!(out.contains("TARGET  STATUS     MIGRATIONS"), "{out}");
    for target in ["t-01", "t-02", "t-03"] {
        assert!(out.lines().any(|l| l.starts_with(target) && l.contains("succeeded") && l.contains("7/7")), "{out}");
    }
    assert!(out.contains("succeeded: succeeded=3 skipped=0 failed=0 cancelled=0"), "{out}");
    for db in &dbs {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM migrate_hub_history WHERE status = 'applied'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(applied, 7);
    }

    // `runs` lists it by project and environment name; `status --target` reads the target's history (admins).
    let runs = cli(home.path(), None, &["runs", "--status", "succeeded"], "").await;
    assert!(
        stdout(&runs).lines().any(|l| l.starts_with(&run_id) && l.contains("river") && l.contains("prod")),
        "{}",
        text(&runs)
    );
    let denied = cli(home.path(), None, &["status", "--target", "t-01", "--env", "prod"], "").await;
    assert_eq!(denied.status.code(), Some(2), "{}", text(&denied));
    let status = cli(home.path(), Some(&admin_token), &["status", "--target", "t-01", "--env", "prod"], "").await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let rows = stdout(&status).lines().filter(|l| l.starts_with("river") && l.contains("applied")).count();
    assert_eq!(rows, 7, "{}", text(&status));

    // An edit makes the smaller release (001, 002) stale: `refresh` re-pins it and it waits for approval
    // again; `cancel` ends it.
    let waiting = admin.get("/api/v1/runs?status=awaiting_approval").await;
    let small = id(&waiting["items"][0]);
    let m001 = run["migrations"][0]["migration_id"].as_str().unwrap().to_owned();
    let v1 = admin.get(&format!("/api/v1/migrations/{m001}/versions/1")).await;
    let edited =
        json!({"up_sql": format!("-- reviewed again\n{}", v1["up_sql"].as_str().unwrap()), "down_sql": v1["down_sql"]});
    admin.ok(Method::POST, &format!("/api/v1/migrations/{m001}/versions"), edited, StatusCode::CREATED).await;
    let stale = cli(home.path(), None, &["runs", "--status", "awaiting_approval", "--format", "json"], "").await;
    assert_eq!(serde_json::from_slice::<Value>(&stale.stdout).unwrap()["items"][0]["id"], small.as_str());
    let refresh = cli(home.path(), None, &["refresh", &small], "").await;
    assert_eq!(refresh.status.code(), Some(3), "{}", text(&refresh));
    assert!(stdout(&refresh).contains("refreshed run") && stdout(&refresh).contains("001 "), "{}", text(&refresh));
    let refreshed = admin.get(&format!("/api/v1/runs/{small}")).await;
    assert_eq!((refreshed["revision"].as_u64(), refreshed["migrations"][0]["version_no"].as_u64()), (Some(2), Some(2)));
    let cancel = cli(home.path(), None, &["cancel", &small], "").await;
    assert_eq!(cancel.status.code(), Some(0), "{}", text(&cancel));
    assert!(stdout(&cancel).contains("cancelled"), "{}", text(&cancel));

    // The per-database view: the target's page lists per project what the runs left there, and a
    // migration's page shows it per target.
    let browser = hub.password_session(admin_user.id, "admin@example.com").await;
    let page = browser.html(&format!("/admin/targets/{}", fleet[0])).await;
    let applied = &page[page.find("id=\"applied\"").expect("an Applied here section")..];
    let applied = &applied[..applied.find("</section>").unwrap()];
    assert!(applied.contains(">river</a>"), "{applied}");
    assert_eq!(applied.matches("state-applied").count(), 7, "{applied}");
    assert!(applied.contains(&format!("/runs/{run_id}")), "{applied}");
    let migrations =
        admin.get(&format!("/api/v1/migrations?project_id={}&limit=50", run["project_id"].as_str().unwrap())).await;
    let first = migrations["items"].as_array().unwrap().iter().find(|m| m["version_key"] == "001").unwrap().clone();
    let page = browser.html(&format!("/migrations/{}", id(&first))).await;
    let on_targets = &page[page.find("id=\"targets\"").expect("an On targets section")..];
    let on_targets = &on_targets[..on_targets.find("</section>").unwrap()];
    assert_eq!(on_targets.matches("state-applied").count(), 3, "{on_targets}");
    for (target, name) in fleet.iter().zip(["t-01", "t-02", "t-03"]) {
        assert!(on_targets.contains(&format!("/admin/targets/{target}\">{name}</a>")), "{on_targets}");
    }

    // In waves: 001 was edited above, so the canary finds it applied with other content (drift) and fails;
    // the wave's budget is 0, so the run halts and nothing beyond the canary runs. `watch` exits 1 at once,
    // naming `continue` and `cancel`.
    let staged = cli(
        home.path(),
        None,
        &["request", "--project", "river", "--env", "prod", "--set", "fleet", "--waves", "1,100%", "--format", "json"],
        "",
    )
    .await;
    assert_eq!(staged.status.code(), Some(3), "{}", text(&staged));
    let staged = id(&serde_json::from_slice::<Value>(&staged.stdout).unwrap());
    let bad = cli(
        home.path(),
        None,
        &["request", "--project", "river", "--env", "prod", "--set", "fleet", "--waves", "1,ten%"],
        "",
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ten%"), "{}", text(&bad));
    assert_eq!(cli(home.path(), Some(&boss_token), &["approve", &staged], "").await.status.code(), Some(0));
    assert_eq!(cli(home.path(), Some(&boss_token), &["execute", &staged], "").await.status.code(), Some(0));
    let halted = cli(home.path(), None, &["watch", &staged, "--timeout", "120"], "").await;
    assert_eq!(halted.status.code(), Some(1), "{}", text(&halted));
    let out = stdout(&halted);
    assert!(out.contains("halted at wave 1 of 2 (1 target)") && out.contains("migrate-hub continue"), "{out}");
    assert!(out.contains("t-02 waiting for a worker") && out.contains("t-03 waiting for a worker"), "{out}");
    let refused = cli(home.path(), None, &["continue", &staged], "").await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    // The run page says so, with the wave bands and the Continue button for an admin.
    let browser = hub.password_session(admin_user.id, "admin@example.com").await;
    let page = browser.html(&format!("/runs/{staged}")).await;
    let waves = &page[page.find(r#"<div id="waves" data-state="halted">"#).expect("a halted waves panel")..];
    assert!(waves.contains("Halted at wave 1 of 2: 1 target failed"), "{waves}");
    assert!(waves.contains("Continue despite the failures</button>"), "{waves}");
    assert_eq!(page.matches(r#"class="wave-band""#).count(), 2, "{page}");
    assert_eq!(cli(home.path(), None, &["cancel", &staged], "").await.status.code(), Some(0));

    // `logout` forgets the token.
    let logout = cli(home.path(), None, &["logout"], "").await;
    assert_eq!(logout.status.code(), Some(0), "{}", text(&logout));
    assert!(!stored.exists());
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("migrate-hub-client-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}
