//! `cargo xtask api-fuzz`: schemathesis (property-based API testing) against the server's OpenAPI document,
//! on a throwaway tool database. Fails on any 5xx, undocumented status code or content type, response that
//! does not match its schema, or a document schemathesis cannot fully resolve.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::migrate::MigrateDatabase;

use crate::dev::{
    Children, binary, build_binaries, create_admin, dev_secret, http_status_as, migrate, random_hex, wait_ready,
};
use crate::{DEFAULT_PG, run_checked, target_dir};

/// The schemathesis release line the run is written for (`st run` flags and configuration keys).
const SCHEMATHESIS: &str = "schemathesis>=4,<5";

/// What a response is checked for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Test cases per operation and phase: the whole run stays within a few minutes on two cores.
const MAX_EXAMPLES: &str = "50";

/// Warnings that fail the run: every operation answering 401/403 means the run tested nothing (the token
/// stopped working), and an unresolvable `$ref` means parts of the document are silently never checked.
const CONFIG: &str = "[warnings]\nfail-on = [\"missing_auth\", \"unresolvable_reference\"]\n";

/// Operations that can take the fuzzer's own credentials away (revoke its token; demote or disable its
/// admin once another admin exists). They are left out of the main run and each gets a run of its own
/// afterwards, with a fresh token.
const SELF_DESTRUCTIVE: [&str; 2] = ["DELETE /api/v1/tokens/{id}", "PATCH /api/v1/users/{id}"];

const ADMIN_EMAIL: &str = "admin@example.com";

/// `cargo xtask api-fuzz [-- ST_RUN_ARGS…]`.
pub async fn run(extra: &[String]) -> anyhow::Result<()> {
    let st = schemathesis()?;
    build_binaries()?;
    let base = std::env::var("TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG.into());
    let url = database_url(&base, &format!("migrate_hub_fuzz_{}", std::process::id()));
    let work = target_dir().join("api-fuzz");
    std::fs::create_dir_all(&work)?;
    let result = fuzz(&st, &url, &work, extra);
    if sqlx::Postgres::database_exists(&url).await.unwrap_or(false)
        && let Err(e) = sqlx::Postgres::force_drop_database(&url).await
    {
        eprintln!("xtask: could not drop the fuzz database: {e}");
    }
    result
}

/// `base` (any database on the server) with its database name replaced by `name`.
fn database_url(base: &str, name: &str) -> String {
    let (without_query, query) = base.split_once('?').map_or((base, None), |(url, query)| (url, Some(query)));
    let server = match without_query.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => server,
        _ => without_query.trim_end_matches('/'),
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// The `st` program of the project's virtual environment, made and filled on first use.
fn schemathesis() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = Path::new(&home).join(".cache/migrate-hub-venv");
    let st = venv.join("bin/st");
    if st.is_file() {
        return Ok(st);
    }
    eprintln!("xtask: installing schemathesis into {}", venv.display());
    run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .map_err(|e| anyhow::anyhow!("{e}: api-fuzz needs Python 3 with venv (apt install python3 python3-venv)"))?;
    run_checked(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", SCHEMATHESIS])
            .stdout(Stdio::null()),
    )?;
    if !st.is_file() {
        bail!("pip installed schemathesis but {} is missing", st.display());
    }
    Ok(st)
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn fuzz(st: &Path, url: &str, work: &Path, extra: &[String]) -> anyhow::Result<()> {
    migrate(url)?;
    let secret = dev_secret()?;
    let config = work.join("schemathesis.toml");
    std::fs::write(&config, CONFIG)?;
    let log_path = work.join("server.log");
    let log = std::fs::File::create(&log_path)?;
    let bind = format!("127.0.0.1:{}", free_port()?);
    let mut children = Children(Vec::new());
    let server = Command::new(binary("migrate-hub-server"))
        .args(["serve", "--bind", &bind])
        .env("DATABASE_URL", url)
        .env("MIGRATE_HUB_SERVER_SECRET_FILE", &secret)
        .env("MIGRATE_HUB_MASTER_KEYS", format!("k1:{}", random_hex()?))
        .env("MIGRATE_HUB_INSECURE_COOKIES", "true")
        .env("NO_COLOR", "1")
        // Keep the 5xx (logged as errors), not the thousands of 4xx warnings the fuzzer provokes.
        .env("RUST_LOG", "info,tracing_actix_web=error")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the server")?;
    children.0.push(("server", server));
    let result = (|| {
        wait_ready(&bind, Duration::from_secs(30), &mut children)?;
        let st_run = |token: &str| {
            let mut command = Command::new(st);
            command
                .arg("--config-file")
                .arg(&config)
                .args(["run", &format!("http://{bind}/api/v1/openapi.json"), "--url", &format!("http://{bind}")])
                .args(["--header", &format!("Authorization: Bearer {token}")])
                .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--no-color"])
                // Reports and the example database stay under target/, out of the source tree.
                .current_dir(work);
            command
        };
        let mut failed = Vec::new();
        let token = create_admin(url, &secret, ADMIN_EMAIL)?;
        let mut main = st_run(&token);
        for name in SELF_DESTRUCTIVE {
            main.args(["--exclude-name", name]);
        }
        run_st(main.args(extra), "every operation but the self-destructive ones", &mut failed)?;
        if http_status_as(&bind, "/api/v1/me", Some(&token))? != 200 {
            failed.push("the API token stopped working during the main run: its results are void".to_owned());
        }
        for name in SELF_DESTRUCTIVE {
            run_st(
                st_run(&create_admin(url, &secret, ADMIN_EMAIL)?).args(["--include-name", name]).args(extra),
                name,
                &mut failed,
            )?;
        }
        if children.exited().is_some() {
            failed.push("the server exited during the run".to_owned());
        }
        if !failed.is_empty() {
            bail!("api-fuzz failed: {}", failed.join("; "));
        }
        Ok(())
    })();
    children.stop();
    if result.is_err() {
        print_log_tail(&log_path, 80)?;
    }
    result
}

/// Runs one `st run`, recording it in `failed` if it fails.
fn run_st(command: &mut Command, what: &str, failed: &mut Vec<String>) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "\n==> schemathesis: {what}")?;
    let status = command.status().context("cannot run schemathesis (st)")?;
    if !status.success() {
        failed.push(format!("schemathesis on {what} exited with {status}"));
    }
    Ok(())
}

fn print_log_tail(path: &Path, lines: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\n==> server log, last {lines} lines ({})", path.display())?;
    for line in &all[all.len().saturating_sub(lines)..] {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "fuzz"),
            "postgres://postgres@127.0.0.1:5432/fuzz"
        );
        assert_eq!(
            database_url("postgres://u:p@h:5432/db?sslmode=disable", "f"),
            "postgres://u:p@h:5432/f?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432", "fuzz"),
            "postgres://postgres@127.0.0.1:5432/fuzz"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/", "fuzz"),
            "postgres://postgres@127.0.0.1:5432/fuzz"
        );
    }
}
