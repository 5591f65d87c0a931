//! `cargo xtask test`: the whole suite, against real servers.

use std::process::Command;

use crate::{DEFAULT_MYSQL, DEFAULT_PG, cargo, run_checked, workspace_root};

pub async fn run(extra: &[String]) -> anyhow::Result<()> {
    crate::setup::run()?;
    let pg = std::env::var("TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG.into());
    let mysql = std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL.into());
    let nextest = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    install_oidc_provider()?;
    install_browser_test()?;
    install_test_tools()?;
    install_cargo_tools()?;
    // The integration suite runs the real binaries as an operator would; test builds do not produce them.
    run_checked(cargo().args([
        "build",
        "--quiet",
        "-p",
        "migrate-hub-server",
        "-p",
        "migrate-hub-worker",
        "-p",
        "migrate-hub-cli",
    ]))?;
    let mut command = cargo();
    if nextest {
        command.args(["nextest", "run", "--workspace", "--all-targets", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        command.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
    }
    command.args(extra).env("TEST_PG_URL", pg).env("TEST_MYSQL_URL", mysql);
    run_checked(&mut command)?;
    if nextest {
        // nextest does not run doctests.
        run_checked(cargo().args(["test", "--workspace", "--doc", "--quiet"]))?;
    }
    Ok(())
}

/// The login tests run a real OIDC provider (npm `oauth2-mock-server`, pinned by `tests/oidc/package-lock.json`);
/// installs it once.
pub fn install_oidc_provider() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests/oidc");
    if dir.join("node_modules/oauth2-mock-server/package.json").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the test OIDC provider (npm ci in tests/oidc)");
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
    run_checked(&mut npm).map_err(|e| {
        anyhow::anyhow!("{e}: the login tests need Node.js 20+ and npm (apt install nodejs npm) to install tests/oidc")
    })
}

/// The browser test drives the system Chromium with npm `playwright-core` and checks HTML with npm `vnu-jar`
/// (pinned by `tests/browser/package-lock.json`); installs them once. `--ignore-scripts`: vnu-jar's install
/// script would fetch a Java runtime; the system's `java` runs the jar.
fn install_browser_test() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests/browser");
    if dir.join("node_modules/playwright-core/package.json").exists()
        && dir.join("node_modules/vnu-jar/build/dist/vnu.jar").exists()
    {
        return Ok(());
    }
    eprintln!("xtask: installing the browser test's packages (npm ci in tests/browser)");
    let mut npm = Command::new("npm");
    npm.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
    run_checked(&mut npm).map_err(|e| {
        anyhow::anyhow!(
            "{e}: the browser test needs Node.js 20+ and npm (apt install nodejs npm) to install tests/browser"
        )
    })
}

/// The adoption tests let other migration tools write their own history tables: npm `dbmate` (a prebuilt
/// binary for linux-x64, pinned by `tests/tools/package-lock.json`); installs it once.
fn install_test_tools() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests/tools");
    if dir.join("node_modules/@dbmate/linux-x64/bin/dbmate").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the migration tools the adoption tests run (npm ci in tests/tools)");
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
    run_checked(&mut npm).map_err(|e| {
        anyhow::anyhow!(
            "{e}: the adoption tests need Node.js 20+ and npm (apt install nodejs npm) to install tests/tools"
        )
    })
}

/// The tools the adoption tests run from crates.io to write their own history tables (sqlx-cli's
/// `_sqlx_migrations`, diesel_cli's `__diesel_schema_migrations`), pinned and `--locked`; installed once
/// into `target/tools` (about three minutes on two cores). diesel_cli's Postgres backend links libpq
/// (Debian `libpq-dev`).
fn install_cargo_tools() -> anyhow::Result<()> {
    let root = workspace_root().join("target/tools");
    for (bin, krate, version, features) in
        [("sqlx", "sqlx-cli", "0.9.0", "postgres,mysql,rustls"), ("diesel", "diesel_cli", "2.3.14", "postgres")]
    {
        if root.join("bin").join(bin).exists() {
            continue;
        }
        eprintln!("xtask: installing {krate} {version} into target/tools (the adoption tests run it)");
        let mut install = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        // Outside the workspace, so its cargo configuration does not apply to the tool's build.
        install.current_dir(std::env::temp_dir()).args(["install", "--locked", "--quiet", "--root"]).arg(&root).args([
            krate,
            "--version",
            version,
            "--no-default-features",
            "--features",
            features,
        ]);
        run_checked(&mut install).map_err(|e| {
            anyhow::anyhow!("{e}: the adoption tests run {krate}; diesel_cli needs libpq (apt install libpq-dev)")
        })?;
    }
    Ok(())
}
