//! `cargo xtask dev` and `cargo xtask db`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::migrate::MigrateDatabase;

use crate::postgres::{self, Server};
use crate::{cargo, run_checked, target_dir};

const DEV_DATABASE: &str = "migrate_hub_dev";

/// The development tool-database URL and the server behind it.
async fn dev_database() -> anyhow::Result<(String, Option<Server>)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        eprintln!("xtask: tool database from DATABASE_URL");
        return Ok((url, None));
    }
    let server = postgres::find_or_start().await?;
    eprintln!("xtask: tool database `{DEV_DATABASE}` on {}", server.origin);
    Ok((server.database_url(DEV_DATABASE), Some(server)))
}

/// Builds the server and the worker, with cargo's progress on the console (the first build takes minutes).
pub(crate) fn build_binaries() -> anyhow::Result<()> {
    run_checked(cargo().args(["build", "-p", "migrate-hub-server", "-p", "migrate-hub-worker"]))
}

pub(crate) fn binary(name: &str) -> std::path::PathBuf {
    target_dir().join("debug").join(name)
}

pub(crate) fn migrate(url: &str) -> anyhow::Result<()> {
    run_checked(
        Command::new(binary("migrate-hub-server")).args(["migrate", "--create-database"]).env("DATABASE_URL", url),
    )
}

/// `db up` (create + migrate) and `db reset` (drop, then the same).
pub async fn db_up(reset: bool) -> anyhow::Result<()> {
    let (url, server) = dev_database().await?;
    let result = async {
        build_binaries()?;
        if reset && sqlx::Postgres::database_exists(&url).await.unwrap_or(false) {
            sqlx::Postgres::force_drop_database(&url).await.context("cannot drop the development database")?;
            eprintln!("xtask: dropped the development database");
        }
        migrate(&url)
    }
    .await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

/// `cargo xtask dev`.
pub async fn run(bind: &str) -> anyhow::Result<()> {
    let (url, server) = dev_database().await?;
    let stops = match &server {
        Some(server) if server.started_here() => format!("and {}, which this command started", server.origin),
        Some(server) => format!("({} was already running and keeps running)", server.origin),
        None => "(the tool database from DATABASE_URL is not touched)".to_owned(),
    };
    let result = serve(&url, bind, &stops).await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

/// The development server secret, made once and kept under `target/dev/` so sessions and tokens survive
/// restarts of `cargo xtask dev`.
pub(crate) fn dev_secret() -> anyhow::Result<std::path::PathBuf> {
    let dir = target_dir().join("dev");
    let path = dir.join("server-secret");
    if !path.exists() {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, random_hex()?)?;
    }
    Ok(path)
}

/// 32 random bytes as 64 hex digits: the form of the server secret and of a master key.
pub(crate) fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `create-admin` (which also re-enables and re-promotes an existing user) and returns the new API
/// token, the last line it prints.
pub(crate) fn create_admin(url: &str, secret: &std::path::Path, email: &str) -> anyhow::Result<String> {
    let admin = Command::new(binary("migrate-hub-server"))
        .args(["create-admin", "--email", email])
        .env("DATABASE_URL", url)
        .env("MIGRATE_HUB_SERVER_SECRET_FILE", secret)
        .output()
        .context("cannot run create-admin")?;
    if !admin.status.success() {
        bail!("create-admin failed: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let token = String::from_utf8_lossy(&admin.stdout).lines().last().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        bail!("create-admin printed no token");
    }
    Ok(token)
}

/// Starts the test OIDC provider (`tests/oidc`) so that "Sign in" works locally; `None` without Node.js.
fn start_oidc_provider(children: &mut Children) -> anyhow::Result<Option<String>> {
    use std::io::BufRead;
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("xtask: Node.js not found: no local OIDC provider, use the admin API token below");
        return Ok(None);
    }
    crate::test::install_oidc_provider()?;
    let mut child = Command::new("node")
        .arg(crate::workspace_root().join("tests/oidc/provider.mjs"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start the OIDC provider")?;
    let stdout = child.stdout.take().context("provider stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    children.0.push(("OIDC provider", child));
    let issuer = line.trim().strip_prefix("listening ").context("the OIDC provider did not start")?.to_owned();
    Ok(Some(issuer))
}

/// The people of the local hub, so the approval flow can be tried by one person: who requests (a user), who
/// approves (a manager), who sets up the inventory (an admin). They sign in with the development password.
const DEV_PEOPLE: &[(&str, &str)] =
    &[("user@example.com", "user"), ("manager@example.com", "manager"), ("admin@example.com", "admin")];

/// The development password of [`DEV_PEOPLE`], made once and kept under `target/dev/`.
fn dev_password() -> anyhow::Result<String> {
    let path = target_dir().join("dev").join("password");
    if !path.exists() {
        std::fs::create_dir_all(path.parent().context("target/dev")?)?;
        std::fs::write(&path, &random_hex()?[..16])?;
    }
    Ok(std::fs::read_to_string(&path)?.trim().to_owned())
}

/// Makes [`DEV_PEOPLE`] (the admin with `create-admin`, the others through the API with its token) and sets
/// their password.
fn dev_people(url: &str, bind: &str, secret: &std::path::Path, token: &str, password: &str) -> anyhow::Result<()> {
    for (email, role) in DEV_PEOPLE {
        if *role != "admin" {
            let body = format!(r#"{{"email": "{email}", "role": "{role}"}}"#);
            let (status, answer) = http_request(bind, "POST", "/api/v1/users", Some(token), Some(&body))?;
            // 409: made by an earlier `cargo xtask dev`; the role is set again below.
            if status == 409 {
                let (_, list) = http_request(bind, "GET", "/api/v1/users?limit=500", Some(token), None)?;
                let users: serde_json::Value = serde_json::from_str(&list).context("the user list")?;
                if let Some(id) = users["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|u| u["email"] == *email)
                    .and_then(|u| u["id"].as_str())
                {
                    let body = format!(r#"{{"role": "{role}", "disabled": false}}"#);
                    http_request(bind, "PATCH", &format!("/api/v1/users/{id}"), Some(token), Some(&body))?;
                }
            } else if status != 201 {
                bail!("cannot make {email}: {status} {answer}");
            }
        }
        let mut set = Command::new(binary("migrate-hub-server"))
            .args(["set-password", "--email", email])
            .env("DATABASE_URL", url)
            .env("MIGRATE_HUB_SERVER_SECRET_FILE", secret)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot run set-password")?;
        set.stdin.take().context("set-password stdin")?.write_all(password.as_bytes())?;
        if !set.wait()?.success() {
            bail!("set-password failed for {email}");
        }
    }
    Ok(())
}

/// Builds, migrates and runs the server and a worker until Ctrl-C; `stops` says what else Ctrl-C stops.
async fn serve(url: &str, bind: &str, stops: &str) -> anyhow::Result<()> {
    eprintln!("xtask: building the server and the worker (the first build takes a few minutes on 2 cores)");
    build_binaries()?;
    eprintln!("xtask: applying the tool schema");
    migrate(url)?;
    let secret = dev_secret()?;
    let mut children = Children(Vec::new());
    let issuer = start_oidc_provider(&mut children)?;
    let token = create_admin(url, &secret, "admin@example.com")?;
    let password = dev_password()?;
    let mut server = Command::new(binary("migrate-hub-server"));
    server
        .args(["serve", "--bind", bind])
        .env("DATABASE_URL", url)
        .env("MIGRATE_HUB_SERVER_SECRET_FILE", &secret)
        .env("MIGRATE_HUB_PUBLIC_URL", format!("http://{bind}"))
        // Email and password sign-in for the development people, beside the local OIDC provider.
        .env("MIGRATE_HUB_PASSWORD_LOGIN", "true")
        // Plain http on a possibly non-loopback address: the explicit development flag.
        .env("MIGRATE_HUB_INSECURE_COOKIES", "true");
    if let Some(issuer) = &issuer {
        server
            .env("MIGRATE_HUB_OIDC_ISSUER", issuer)
            .env("MIGRATE_HUB_OIDC_CLIENT_ID", "migrate-hub-dev")
            .env("MIGRATE_HUB_OIDC_CLIENT_SECRET", "migrate-hub-dev-secret");
    }
    children.0.push(("server", server.spawn().context("cannot start the server")?));
    wait_ready(bind, Duration::from_secs(30), &mut children)?;
    dev_people(url, bind, &secret, &token, &password)?;
    children.0.push((
        "worker",
        Command::new(binary("migrate-hub-worker"))
            .env("DATABASE_URL", url)
            // The audit log is keyed with it; the worker records each run's start and end there.
            .env("MIGRATE_HUB_SERVER_SECRET_FILE", &secret)
            .spawn()
            .context("cannot start the worker")?,
    ));
    eprintln!("\nmigrate-hub is running at http://{bind}  (Ctrl-C stops the server and the worker {stops})");
    eprintln!("Sign in at http://{bind}/login with email and password as one of:");
    for (email, role) in DEV_PEOPLE {
        eprintln!("  {email:<22} {role:<8} password {password}");
    }
    eprintln!("  (a user requests a release, a manager approves it; the page header shows who you are)");
    if issuer.is_some() {
        eprintln!(
            "\"Sign in with Google\" goes to the local test OIDC provider, which signs you in as user@example.com."
        );
    }
    eprintln!("Admin API token (curl -H 'Authorization: Bearer …' http://{bind}/api/v1/me):\n{token}\n");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(name) = children.exited() {
                    children.stop();
                    bail!("the {name} exited; see its log above");
                }
            }
        }
    }
    children.stop();
    Ok(())
}

/// Child processes by name, stopped with SIGTERM (then killed) when we are done.
pub(crate) struct Children(pub(crate) Vec<(&'static str, Child)>);

impl Children {
    pub(crate) fn exited(&mut self) -> Option<&'static str> {
        self.0.iter_mut().find_map(|(name, child)| matches!(child.try_wait(), Ok(Some(_))).then_some(*name))
    }

    pub(crate) fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for (_, child) in &mut self.0 {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `/readyz` until it answers 200.
pub(crate) fn wait_ready(bind: &str, timeout: Duration, children: &mut Children) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if children.exited().is_some() {
            bail!("the server exited during start-up; see its log above");
        }
        if http_status(bind, "/readyz").is_ok_and(|status| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the server did not become ready within {timeout:?}")
}

/// The status code of a plain HTTP/1.1 GET.
pub fn http_status(address: &str, path: &str) -> anyhow::Result<u16> {
    Ok(http_request(address, "GET", path, None, None)?.0)
}

/// A plain HTTP/1.1 request (no client library needed for a few calls), with `Authorization: Bearer` when
/// a token is given and a JSON body when one is: the status code and the response body.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    let body = json.unwrap_or_default();
    let content = json
        .map(|body| format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()))
        .unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}{content}Connection: close\r\n\r\n{body}")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("not an HTTP response")?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        bail!("{method} {path}: chunked response (not supported by this little client)");
    }
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).context("not an HTTP response")?;
    Ok((status, body.to_owned()))
}
