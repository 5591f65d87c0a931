//! The web UI end to end in a real browser: headless Chromium (the system's, driven by `playwright-core`)
//! runs `tests/browser/flow.mjs` against a hub with the real OIDC provider and the real worker: a user signs
//! in, writes a migration and requests a prod run, cannot approve it herself, a manager approves and
//! executes, the grid goes live to succeeded, the target's logs show what ran; the manager then creates a
//! project on its page, uploads a folder of migrations into it and requests a release of it, which a second
//! person (the admin) approves and executes while the header turns succeeded in place; the audit page shows
//! what happened. Every
//! page must render without a console error or a failed request; the W3C Nu checker (vnu) must find no
//! error in the HTML of the main pages; the target database must hold the migration's table. Screenshots of
//! the main pages land in `docs/screenshots/` (`SCREENSHOT_DIR` overrides). See `tests/browser/README.md`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use domain::enums::Role;
use migrate_hub_tests::PgDatabase;
use migrate_hub_tests::oidc::Provider;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{MASTER_KEYS, api_for, id, start_worker, target_body};
use crate::hub::{Hub, HubOptions};

const TABLE: &str = "browser_flow_orders";
const TARGET: &str = "orders-pg";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn browser_dir() -> PathBuf {
    repo_root().join("tests/browser")
}

/// The browser: `CHROMIUM`, else Debian's `/usr/bin/chromium`. Missing is a failure, never a skip.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser tests need Chromium at {}: install the Debian package `chromium` (apt-get install chromium; \
         .ci/run does) or point CHROMIUM at a Chromium binary",
        path.display()
    );
    path
}

/// `java`, for the vnu HTML checker. Missing is a failure, never a skip.
fn java() -> &'static str {
    let works = std::process::Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "the HTML check (vnu) needs Java: install the Debian package `default-jre-headless` \
         (apt-get install default-jre-headless; .ci/run does)"
    );
    "java"
}

fn vnu_jar() -> PathBuf {
    let jar = browser_dir().join("node_modules/vnu-jar/build/dist/vnu.jar");
    assert!(
        jar.is_file() && browser_dir().join("node_modules/playwright-core/package.json").is_file(),
        "the browser test's npm packages are not installed: run `cargo xtask test` (or `npm ci --ignore-scripts` in {})",
        browser_dir().display()
    );
    jar
}

/// The HTML files saved by the flow, sorted.
fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html") && !p.ends_with("failure.html"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_migration_is_written_requested_approved_and_applied_through_the_web_ui() {
    let chromium = chromium();
    let java = java();
    let vnu = vnu_jar();

    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions { master_keys: Some(MASTER_KEYS.into()), ..HubOptions::oidc(&provider) }).await;
    // Pre-provisioned people: each one's first OIDC login binds to the account and its role.
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    hub.user("alice@example.com", Role::User).await;
    hub.user("bob@example.com", Role::Manager).await;

    // The inventory: prod needs one approval; one Postgres target in a set; a project.
    let target_db = PgDatabase::fresh().await;
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({"name": "prod", "approval_required": true}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(env["approvals_required"].as_u64(), Some(1), "{env}");
    let target = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&id(&env), TARGET, "postgres", &target_db.url, None),
            StatusCode::CREATED,
        )
        .await;
    let set = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({"environment_id": id(&env), "name": "orders-fleet", "target_ids": [id(&target)]}),
            StatusCode::CREATED,
        )
        .await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "shop"}), StatusCode::CREATED).await;
    let _worker = start_worker(&hub.db);

    let screenshots =
        std::env::var_os("SCREENSHOT_DIR").map_or_else(|| repo_root().join("docs/screenshots"), PathBuf::from);
    let html_dir = std::env::temp_dir().join(format!("migrate-hub-browser-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&html_dir).unwrap();
    let result_file = html_dir.join("result.json");

    let flow = tokio::process::Command::new("node")
        .arg(browser_dir().join("flow.mjs"))
        .current_dir(browser_dir())
        .env("HUB_URL", &hub.url)
        .env("OIDC_ISSUER", &provider.issuer)
        .env("PROJECT_ID", id(&project))
        .env("ENVIRONMENT_ID", id(&env))
        .env("DB_SET_ID", id(&set))
        .env("TARGET_NAME", TARGET)
        .env("MIGRATION_TABLE", TABLE)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("HTML_DIR", &html_dir)
        .env("RESULT_FILE", &result_file)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), flow)
        .await
        .expect("the browser flow did not finish within 5 minutes")
        .expect("run `node tests/browser/flow.mjs` (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser flow failed ({}); its HTML and a screenshot of the failure are in {}:\n{stdout}\n{stderr}",
        out.status,
        html_dir.display()
    );

    // The W3C Nu checker over the raw HTML of every main page.
    let pages = html_files(&html_dir);
    assert!(pages.len() >= 10, "the flow saved only {} pages: {pages:?}", pages.len());
    let checked = tokio::process::Command::new(java)
        .arg("-jar")
        .arg(&vnu)
        .args(["--errors-only", "--format", "text"])
        .args(&pages)
        .output()
        .await
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(
        checked.status.success() && !report.contains("Error:"),
        "vnu found errors in the HTML of the main pages (files in {}):\n{report}",
        html_dir.display()
    );

    // What the browser did really happened: the run succeeded and the target holds the table.
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result_file).unwrap()).unwrap();
    let run = admin.get(&format!("/api/v1/runs/{}", result["run_id"].as_str().unwrap())).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(target_db.has_table(TABLE).await, "the target database has no table {TABLE}");
    for table in ["browser_flow_items", "browser_flow_stock"] {
        assert!(target_db.has_table(table).await, "the uploaded release did not create {table}");
    }
    std::fs::remove_dir_all(&html_dir).unwrap();
}
