//! `cargo xtask api-fuzz`: schemathesis (property-based API testing) against the server's OpenAPI document,
//! on a throwaway tool database with one object of each kind made beforehand. Fails on any 5xx, undocumented
//! status code or content type, response that does not match its schema, or a document schemathesis cannot
//! fully resolve.
//!
//! Most operations are fuzzed with the admin's API token. Tokens are minted from a signed-in session only (a
//! token is refused), so the seeded user makes their own token through a password login, and the operation
//! that mints tokens is fuzzed with the admin's session (cookie, CSRF token and the hub's `Origin`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::migrate::MigrateDatabase;

use crate::dev::{
    Children, binary, build_binaries, create_admin, dev_secret, http_request, migrate, random_hex, wait_ready,
};
use crate::{DEFAULT_PG, run_checked, target_dir};

/// The schemathesis releases the run is written for (`st run` flags, configuration keys, dictionaries).
const SCHEMATHESIS: &str = "schemathesis>=4.32,<5";
const MINIMUM_MINOR: u32 = 32;

/// What a response is checked for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Test cases per operation and phase: the whole run stays within a few minutes on two cores.
const MAX_EXAMPLES: &str = "50";

/// Warnings that fail the run: every operation answering 401/403 means the run tested nothing (the token
/// stopped working), and an unresolvable `$ref` means parts of the document are silently never checked.
const WARNINGS: &str = "[warnings]\nfail-on = [\"missing_auth\", \"unresolvable_reference\"]\n";

/// Operations that destroy what the others need: the fuzzer's own credentials (revoking its token; demoting
/// or disabling its admin once another admin exists) or the seeded target. They are left out of the main
/// run and each gets a run of its own afterwards, with a fresh token.
const DESTRUCTIVE: [&str; 3] =
    ["DELETE /api/v1/targets/{id}", "DELETE /api/v1/tokens/{id}", "PATCH /api/v1/users/{id}"];

/// Operations that refuse API tokens (tokens are minted from a signed-in session only): fuzzed with a session.
const SESSION_ONLY: [&str; 1] = ["POST /api/v1/tokens"];

const ADMIN_EMAIL: &str = "admin@example.com";
const USER_EMAIL: &str = "fuzz-user@example.com";

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

/// The `st` program of the project's virtual environment, made and filled (or upgraded) when needed.
fn schemathesis() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = Path::new(&home).join(".cache/migrate-hub-venv");
    let st = venv.join("bin/st");
    if recent_enough(&st) {
        return Ok(st);
    }
    eprintln!("xtask: installing {SCHEMATHESIS} into {}", venv.display());
    if !venv.join("bin/pip").is_file() {
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| {
            anyhow::anyhow!("{e}: api-fuzz needs Python 3 with venv (apt install python3 python3-venv)")
        })?;
    }
    run_checked(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--upgrade", SCHEMATHESIS])
            .stdout(Stdio::null()),
    )?;
    if !recent_enough(&st) {
        bail!("pip installed {SCHEMATHESIS} but {} does not report such a version", st.display());
    }
    Ok(st)
}

/// Whether `st --version` (`st, version 4.32.5`) is a 4.x release this run works with.
fn recent_enough(st: &Path) -> bool {
    let Ok(output) = Command::new(st).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text.split_whitespace().last().unwrap_or_default().split('.').map(str::parse::<u32>);
    matches!((numbers.next(), numbers.next()), (Some(Ok(4)), Some(Ok(minor))) if minor >= MINIMUM_MINOR)
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn fuzz(st: &Path, url: &str, work: &Path, extra: &[String]) -> anyhow::Result<()> {
    migrate(url)?;
    let secret = dev_secret()?;
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
        // The seeded user signs in with a password to make their own token, and so does the admin to fuzz the
        // operations that take a session only.
        .env("MIGRATE_HUB_PASSWORD_LOGIN", "true")
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
        let token = create_admin(url, &secret, ADMIN_EMAIL)?;
        let config = work.join("schemathesis.toml");
        std::fs::write(&config, format!("{WARNINGS}{}", seed(&bind, url, &secret, &token)?))?;
        let st_run = |headers: &[String]| {
            let mut command = Command::new(st);
            command.arg("--config-file").arg(&config).args([
                "run",
                &format!("http://{bind}/api/v1/openapi.json"),
                "--url",
                &format!("http://{bind}"),
            ]);
            for header in headers {
                command.args(["--header", header]);
            }
            command
                .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--no-color"])
                // Reports and the example database stay under target/, out of the source tree.
                .current_dir(work);
            command
        };
        let bearer = |token: &str| vec![format!("Authorization: Bearer {token}")];
        let mut failed = Vec::new();
        let mut main = st_run(&bearer(&token));
        for name in DESTRUCTIVE.iter().chain(&SESSION_ONLY) {
            main.args(["--exclude-name", name]);
        }
        run_st(main.args(extra), "every operation but the destructive and session-only ones", &mut failed)?;
        if http_request(&bind, "GET", "/api/v1/me", Some(&token), None)?.0 != 200 {
            failed.push("the API token stopped working during the main run: its results are void".to_owned());
        }
        let admin = Session::sign_in(&bind, url, &secret, ADMIN_EMAIL)?;
        for name in SESSION_ONLY {
            // The document's security scheme is the bearer token: without this, schemathesis would send a made-up
            // one, and a request that presents a token is authenticated by it, not by the session.
            let mut command = st_run(&admin.headers(&bind));
            command.args(["--generation-with-security-parameters", "false", "--include-name", name]);
            run_st(command.args(extra), name, &mut failed)?;
        }
        for name in DESTRUCTIVE {
            let token = create_admin(url, &secret, ADMIN_EMAIL)?;
            run_st(st_run(&bearer(&token)).args(["--include-name", name]).args(extra), name, &mut failed)?;
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

/// Makes one object of each kind through the API (the fuzzer's own names and ids rarely pass validation,
/// so most operations on existing objects would only ever see 404) and returns the schemathesis
/// configuration that offers their ids: dictionaries, bound to path, query and body parameters.
fn seed(bind: &str, url: &str, secret: &Path, token: &str) -> anyhow::Result<String> {
    let call_as = |token: &str, method: &str, path: &str, body: Option<Value>| -> anyhow::Result<Value> {
        let body = body.map(|body| body.to_string());
        let (status, text) = http_request(bind, method, path, Some(token), body.as_deref())?;
        if !(200..300).contains(&status) {
            bail!("seeding: {method} {path} answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("seeding: {method} {path} answered {text}"))
    };
    let call = |method: &str, path: &str, body: Option<Value>| call_as(token, method, path, body);
    let post = |path: &str, body: Value| call("POST", path, Some(body));
    let id = |value: &Value, pointer: &str| -> anyhow::Result<String> {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no {pointer} in {value}"))
    };
    let admin = id(&call("GET", "/api/v1/me", None)?, "/user/id")?;
    let user = id(&post("/api/v1/users", json!({"email": USER_EMAIL, "role": "user"}))?, "/id")?;
    // The user makes their own token, from a session: nobody can make one for them.
    let created = Session::sign_in(bind, url, secret, USER_EMAIL)?.create_token(bind, "fuzz")?;
    let user_token = id(&created, "/id")?;
    let user_secret = id(&created, "/token_value")?;
    let project = id(&post("/api/v1/projects", json!({"name": "fuzz"}))?, "/id")?;
    // Written by the user too, so the fuzzer's admin may decide its runs (authors never can).
    let migration = id(
        &call_as(
            &user_secret,
            "POST",
            "/api/v1/migrations",
            Some(json!({"project_id": project, "version_key": "0001", "name": "init",
                        "up_sql": "CREATE TABLE fuzz (id int);", "down_sql": "DROP TABLE fuzz;"})),
        )?,
        "/migration/id",
    )?;
    let (mut environments, mut targets, mut db_sets, mut runs, mut items) = (vec![], vec![], vec![], vec![], vec![]);
    // `dev` runs are approved at once; `prod` ones wait for a second person.
    for (name, approval) in [("dev", false), ("prod", true)] {
        let environment =
            id(&post("/api/v1/environments", json!({"name": name, "approval_required": approval}))?, "/id")?;
        let target = id(
            &post(
                "/api/v1/targets",
                json!({"environment_id": environment, "name": format!("{name}-db"), "engine": "postgres",
                       "host": "127.0.0.1", "port": 5432, "database": "fuzz", "username": "fuzz", "password": "fuzz"}),
            )?,
            "/id",
        )?;
        let db_set = id(
            &post("/api/v1/db-sets", json!({"environment_id": environment, "name": name, "target_ids": [target]}))?,
            "/id",
        )?;
        // Requested by the user, so the fuzzer's admin may decide them (its own runs it never could).
        let run = id(
            &call_as(
                &user_secret,
                "POST",
                "/api/v1/runs",
                Some(json!({"migration_id": migration, "environment_id": environment, "db_set_id": db_set})),
            )?,
            "/id",
        )?;
        items.push(id(&call("GET", &format!("/api/v1/runs/{run}/items"), None)?, "/items/0/id")?);
        environments.push(environment);
        targets.push(target);
        db_sets.push(db_set);
        runs.push(run);
    }
    let dictionaries = [
        ("environment", environments),
        ("project", vec![project]),
        ("target", targets),
        ("db_set", db_sets),
        ("migration", vec![migration]),
        ("run", runs),
        ("run_item", items),
        ("user", vec![user, admin]),
        ("token", vec![user_token]),
    ];
    let mut config = String::from("\n[dictionaries]\n");
    for (name, ids) in &dictionaries {
        let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
        config += &format!("{name} = {{ values = [{}] }}\n", quoted.join(", "));
    }
    let bind_to =
        |key: &str, dictionary: &str| format!("\"{key}\" = {{ dictionary = \"{dictionary}\", probability = 0.8 }}");
    config += "\n[parameters]\n";
    for (key, dictionary) in [
        ("body.environment_id", "environment"),
        ("body.project_id", "project"),
        ("body.migration_id", "migration"),
        ("body.db_set_id", "db_set"),
        ("body.user_id", "user"),
        ("query.environment_id", "environment"),
        ("query.project_id", "project"),
        ("query.user_id", "user"),
        ("query.requested_by", "user"),
        ("query.actor", "user"),
    ] {
        config += &bind_to(key, dictionary);
        config += "\n";
    }
    for (collection, dictionary) in [
        ("environments", "environment"),
        ("projects", "project"),
        ("targets", "target"),
        ("db-sets", "db_set"),
        ("migrations", "migration"),
        ("runs", "run"),
        ("users", "user"),
        ("tokens", "token"),
    ] {
        let mut parameters = bind_to("path.id", dictionary);
        if collection == "runs" {
            parameters += &format!(", {}", bind_to("path.item_id", "run_item"));
        }
        config += &format!(
            "\n[[operations]]\ninclude-path-regex = \"^/api/v1/{collection}/\"\nparameters = {{ {parameters} }}\n"
        );
    }
    Ok(config)
}

/// A signed-in session on the fuzzed server: what a browser would send with a state-changing request.
struct Session {
    /// `name=value` of the session cookie.
    cookie: String,
    csrf: String,
}

impl Session {
    /// Gives `email` a random password (`set-password`) and signs in with it through `/login/password`.
    fn sign_in(bind: &str, url: &str, secret: &Path, email: &str) -> anyhow::Result<Self> {
        let password = random_hex()?;
        let mut set = Command::new(binary("migrate-hub-server"))
            .args(["set-password", "--email", email])
            .env("DATABASE_URL", url)
            // It writes an audit event, whose chain is keyed with the server secret.
            .env("MIGRATE_HUB_SERVER_SECRET_FILE", secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run set-password")?;
        set.stdin.take().context("set-password's stdin")?.write_all(format!("{password}\n").as_bytes())?;
        let out = set.wait_with_output()?;
        if !out.status.success() {
            bail!("set-password failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let origin = format!("Origin: http://{bind}");
        let form = format!("email={}&password={password}", form_encode(email));
        let login = raw_request(
            bind,
            "POST",
            "/login/password",
            &[origin.as_str(), "Content-Type: application/x-www-form-urlencoded"],
            &form,
        )?;
        if login.status != 303 {
            bail!("seeding: the password login of {email} answered {}: {}", login.status, login.body);
        }
        let cookie = login
            .headers
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .filter_map(|(_, value)| value.split(';').next())
            .find(|pair| pair.contains("mh_session="))
            .context("the password login set no session cookie")?
            .to_owned();
        let cookie_header = format!("Cookie: {cookie}");
        let Answer { status, body, .. } = raw_request(bind, "GET", "/api/v1/me", &[cookie_header.as_str()], "")?;
        if status != 200 {
            bail!("seeding: GET /api/v1/me with the session of {email} answered {status}: {body}");
        }
        let me: Value = serde_json::from_str(&body).with_context(|| format!("GET /api/v1/me answered {body}"))?;
        let csrf = me.pointer("/csrf_token").and_then(Value::as_str).context("no csrf_token in /api/v1/me")?;
        Ok(Session { cookie, csrf: csrf.to_owned() })
    }

    /// The headers that make a request this session's: cookie, CSRF token and the hub's own origin.
    fn headers(&self, bind: &str) -> Vec<String> {
        vec![
            format!("Cookie: {}", self.cookie),
            format!("X-CSRF-Token: {}", self.csrf),
            format!("Origin: http://{bind}"),
        ]
    }

    /// `POST /api/v1/tokens` in this session; returns the created token (with its value).
    fn create_token(&self, bind: &str, name: &str) -> anyhow::Result<Value> {
        let mut headers = self.headers(bind);
        headers.push("Content-Type: application/json".to_owned());
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let body = json!({ "name": name }).to_string();
        let Answer { status, body, .. } = raw_request(bind, "POST", "/api/v1/tokens", &headers, &body)?;
        if status != 201 {
            bail!("seeding: POST /api/v1/tokens in a session answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("seeding: POST /api/v1/tokens answered {body}"))
    }
}

/// `text` as an `application/x-www-form-urlencoded` value.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What [`raw_request`] got back.
struct Answer {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

/// One HTTP/1.1 request with `headers` (`Name: value`) and `body`. Like `dev::http_request`, but with headers
/// both ways, for sessions.
fn raw_request(address: &str, method: &str, path: &str, headers: &[&str], body: &str) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        request += &format!("{header}\r\n");
    }
    request += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("not an HTTP response")?;
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).context("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    if headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked")) {
        bail!("{method} {path}: chunked response (not supported by this little client)");
    }
    Ok(Answer { status, headers, body: body.to_owned() })
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
    use super::{database_url, form_encode};

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("fuzz-user@example.com"), "fuzz-user%40example.com");
        assert_eq!(form_encode("a b&c=d+e"), "a%20b%26c%3Dd%2Be");
        assert_eq!(form_encode("0f9A_.*"), "0f9A_.*");
    }

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
