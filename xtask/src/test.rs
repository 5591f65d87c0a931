//! `cargo xtask test`: the whole suite, against real servers.

use std::process::Command;

use crate::{DEFAULT_MYSQL, DEFAULT_PG, cargo, run_checked};

pub async fn run(extra: &[String]) -> anyhow::Result<()> {
    let pg = std::env::var("TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG.into());
    let mysql = std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL.into());
    let nextest = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
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
