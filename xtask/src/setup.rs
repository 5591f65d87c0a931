//! `cargo xtask setup` (and the first step of `cargo xtask test`): what a fresh machine of this kind lacks
//! for the suite. It installs the Debian packages the tests run (Chromium and a Java runtime for the browser
//! test, Node.js and npm for the OIDC provider and the browser driver, sql-migrate and libpq for the
//! adoption tests, the database clients) and starts the installed Postgres and MariaDB when nothing answers
//! on the default URLs. It says what it installs or starts, asks for nothing, and fails with the command to
//! run where it cannot (not root, no apt).

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{DEFAULT_MYSQL, DEFAULT_PG, run_checked};

/// A command the suite runs, and the Debian package that provides it.
const NEEDED: &[(&str, &str, &str)] = &[
    ("chromium", "chromium", "the browser test drives it"),
    ("java", "default-jre-headless", "the browser test checks HTML with vnu, a Java program"),
    ("node", "nodejs", "the login tests run a real OIDC provider on Node.js"),
    ("npm", "npm", "the OIDC provider and the browser driver are npm packages"),
    ("sql-migrate", "sql-migrate", "the adoption tests let sql-migrate write its own history"),
    ("pg_config", "libpq-dev", "diesel_cli, built for the adoption tests, links libpq"),
    ("pg_isready", "postgresql-client", "to see whether Postgres is up"),
    ("mariadb-admin", "mariadb-client", "to see whether MariaDB is up"),
];

pub fn run() -> anyhow::Result<()> {
    let missing: Vec<&(&str, &str, &str)> = NEEDED.iter().filter(|(command, _, _)| !on_path(command)).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, package, _)| *package).collect();
    for (command, package, why) in &missing {
        eprintln!("xtask setup: `{command}` is missing ({why}): installing the Debian package {package}");
    }
    // The servers themselves, when the tests use the local defaults and none is installed.
    let pg_local = uses_default("TEST_PG_URL", DEFAULT_PG);
    let mysql_local = uses_default("TEST_MYSQL_URL", DEFAULT_MYSQL);
    if pg_local && !answers(5432) && !std::path::Path::new("/etc/postgresql").exists() {
        eprintln!("xtask setup: no Postgres answers on 127.0.0.1:5432 and none is installed: installing postgresql");
        packages.push("postgresql");
    }
    if mysql_local && !answers(3306) && !on_path("mariadbd") && !std::path::Path::new("/usr/sbin/mariadbd").exists() {
        eprintln!("xtask setup: no MariaDB answers on 127.0.0.1:3306 and none is installed: installing mariadb-server");
        packages.push("mariadb-server");
    }
    if !packages.is_empty() {
        apt_install(&packages)?;
    }
    if pg_local && !answers(5432) {
        let version = newest_cluster()?;
        eprintln!("xtask setup: starting the installed Postgres {version} (cluster main) on 127.0.0.1:5432");
        run_checked(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "start"]))?;
    }
    if mysql_local && !answers(3306) {
        eprintln!("xtask setup: starting the installed MariaDB on 127.0.0.1:3306");
        run_checked(Command::new("start-stop-daemon").args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ]))?;
    }
    for (local, port, name) in [(pg_local, 5432, "Postgres"), (mysql_local, 3306, "MariaDB")] {
        if local {
            wait_for(port, name)?;
        }
    }
    Ok(())
}

/// Whether `command` is on the `PATH`.
fn on_path(command: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

/// Whether the tests use the local default server (the variable unset, or set to the default).
fn uses_default(variable: &str, default: &str) -> bool {
    std::env::var(variable).map_or(true, |url| url == default)
}

fn answers(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

fn wait_for(port: u16, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(port) {
        if Instant::now() > deadline {
            bail!(
                "{name} does not answer on 127.0.0.1:{port}; start it, or point the tests elsewhere with TEST_PG_URL / TEST_MYSQL_URL"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// The newest installed Postgres cluster version (`/etc/postgresql/<version>`).
fn newest_cluster() -> anyhow::Result<String> {
    let mut versions: Vec<(u32, String)> = std::fs::read_dir("/etc/postgresql")
        .context("Postgres is not installed (no /etc/postgresql)")?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| Some((name.split('.').next()?.parse().ok()?, name)))
        .collect();
    versions.sort();
    versions.pop().map(|(_, name)| name).context("no Postgres cluster under /etc/postgresql")
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let command = format!("apt-get install -y {}", packages.join(" "));
    if !on_path("apt-get") {
        bail!("this machine has no apt-get: install {} yourself, then run the tests again", packages.join(", "));
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if !root {
        bail!("installing needs root: run `sudo apt-get update && sudo {command}`, then the tests again");
    }
    eprintln!("xtask setup: {command}");
    run_checked(Command::new("apt-get").args(["update", "-qq"]))?;
    run_checked(
        Command::new("apt-get").args(["install", "-y", "-qq"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
