//! `bench scale`: a db set of many targets (issue "Fleet operations", Scale). The targets are rows only: they
//! point at a port nothing listens on and no worker connects to them, because what is measured here is the
//! hub's own side, which does not depend on what the targets are: the release request that creates one item
//! per target, the claims (batches of 32, each item ended at once, as the `queue` bench does) with each item's
//! pickup, and the pages and API a person opens for such a run and set, served by the release server binary.

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::enums::{ActorKind, Engine, TransactionMode};
use domain::model::{AuditActor, User};
use domain::policy::{Actor, EnvironmentPolicy};
use migrate_hub_tests::fleet::Fleet;

use crate::{ToolDb, drain_claims, percentile, target_dir};

fn caller(user: &User) -> app::Caller {
    app::Caller {
        actor: Actor { user_id: user.id, role: user.role },
        audit: AuditActor { kind: ActorKind::User, user_id: Some(user.id), label: user.email.as_str().to_owned() },
        ip: None,
        user_agent: None,
    }
}

/// The release server binary, serving the tool database until dropped.
struct Server {
    child: Child,
    bind: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A plain HTTP/1.0 GET, with a bearer token unless `token` is empty: the status, how long the whole answer
/// took, and its size.
fn get(bind: &str, path: &str, token: &str, accept: &str) -> anyhow::Result<(u16, Duration, usize)> {
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(bind)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {bind}\r\n{auth}Accept: {accept}\r\n\r\n")?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body)?;
    let took = started.elapsed();
    let head = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if status != 200 && std::env::var_os("MIGRATE_HUB_BENCH_DEBUG").is_some() {
        eprintln!("GET {path}: {}", String::from_utf8_lossy(&body));
    }
    Ok((status, took, body.len()))
}

/// The p50 and p99 of `rounds` GETs of `path` (after one to warm up), in milliseconds, and the body size.
fn timed(bind: &str, path: &str, token: &str, accept: &str, rounds: usize) -> anyhow::Result<(f64, f64, usize)> {
    let (status, _, _) = get(bind, path, token, accept)?;
    if status != 200 {
        bail!("GET {path} answered {status}");
    }
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..rounds {
        let (_, took, bytes) = get(bind, path, token, accept)?;
        times.push(took.as_secs_f64() * 1000.0);
        size = bytes;
    }
    Ok((percentile(&mut times.clone(), 0.5), percentile(&mut times, 0.99), size))
}

fn start_server(url: &str) -> anyhow::Result<(Server, String)> {
    let binary = target_dir().join("release/migrate-hub-server");
    let secret = format!("{:064x}", u128::from(std::process::id()) * 0x9e37_79b9_7f4a_7c15);
    let admin = Command::new(&binary)
        .args(["create-admin", "--email", "scale-admin@example.com"])
        .env("DATABASE_URL", url)
        .env("MIGRATE_HUB_SERVER_SECRET", &secret)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("cannot run {} (cargo build --release -p migrate-hub-server)", binary.display()))?;
    if !admin.status.success() {
        bail!("create-admin failed: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let token = String::from_utf8_lossy(&admin.stdout).lines().last().unwrap_or_default().trim().to_owned();
    let bind = format!("127.0.0.1:{}", free_port()?);
    let child = Command::new(&binary)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("MIGRATE_HUB_SERVER_SECRET", &secret)
        .env("MIGRATE_HUB_BIND", &bind)
        .env("RUST_LOG", "error")
        .spawn()?;
    let server = Server { child, bind };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&server.bind, "/readyz", "", "application/json");
        if matches!(answer, Ok((200, _, _))) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server did not become ready (last answer: {answer:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((server, token))
}

pub async fn scale(targets: usize, claimers: usize) -> anyhow::Result<()> {
    let pid = std::process::id();
    let tool = ToolDb::create(&format!("bench_scale_{pid}"), None).await?;
    let result = run(&tool, targets, claimers).await;
    tool.drop().await;
    result
}

async fn run(tool: &ToolDb, targets: usize, claimers: usize) -> anyhow::Result<()> {
    let fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    sqlx::query(
        "WITH t AS ( \
           INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, username) \
           SELECT gen_random_uuid(), $1, 'tenant-' || lpad(g::text, 5, '0'), 'postgres', '127.0.0.1', 1, \
                  'tenant_' || g, 'app' \
           FROM generate_series(1, $3) g RETURNING id) \
         INSERT INTO db_set_members (db_set_id, db_target_id, environment_id) SELECT $2, id, $1 FROM t",
    )
    .bind(fleet.environment.id.as_uuid())
    .bind(fleet.set.id.as_uuid())
    .bind(i32::try_from(targets)?)
    .execute(&tool.pool)
    .await?;
    sqlx::query("ANALYZE").execute(&tool.pool).await?;
    let version = fleet
        .migration("0001", "CREATE TABLE tenants_scale (id int);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let hub = app::Hub::new(tool.pool.clone());

    // The request: pre-flight over every target, then the run and one item per target.
    let body = serde_json::json!({
        "project_id": fleet.project.id, "environment_id": fleet.environment.id, "db_set_id": fleet.set.id,
        "concurrency_limit": 1000,
    });
    let input: app::runs::RunRequest = serde_json::from_value(body)?;
    let started = Instant::now();
    let requested = app::runs::request_run(&hub, &caller(&fleet.requester), None, input, None)
        .await
        .map_err(|e| anyhow::anyhow!("request refused: {e}"))?;
    let request_s = started.elapsed().as_secs_f64();
    let run = requested.run.id;
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM run_items WHERE run_id = $1")
        .bind(run.as_uuid())
        .fetch_one(&tool.pool)
        .await?;
    if usize::try_from(items)? != targets {
        bail!("the request made {items} items for {targets} targets");
    }
    let decision: app::runs::DecisionInput = serde_json::from_value(serde_json::json!({"comment": "bench"}))?;
    app::runs::approve(&hub, &caller(&fleet.manager), run, decision).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    app::runs::execute(&hub, &caller(&fleet.manager), run).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let execute_s = started.elapsed().as_secs_f64();
    let _ = version;

    // Claims: `claimers` connections taking batches of 32 and ending each item at once.
    let started = Instant::now();
    let (claimed, claim_time) = drain_claims(&tool.pool, claimers).await?;
    let drained = started.elapsed().as_secs_f64();
    if claimed != targets {
        bail!("claimed {claimed} of {targets} items");
    }
    // Pickup: from the run's queueing to each item's claim.
    let (pickup_p50, pickup_p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d) \
         FROM (SELECT extract(epoch FROM i.started_at - r.queued_at)::float8 * 1000 AS d \
               FROM run_items i JOIN runs r ON r.id = i.run_id WHERE r.id = $1) p",
    )
    .bind(run.as_uuid())
    .fetch_one(&tool.pool)
    .await?;

    // The pages and API of the (now finished) run and its set, through the release server.
    let (server, token) = start_server(&tool.url)?;
    let pages = [
        ("run page", format!("/runs/{run}"), "text/html"),
        ("set page", format!("/admin/db-sets/{}", fleet.set.id), "text/html"),
        ("run items API (500)", format!("/api/v1/runs/{run}/items?limit=500"), "application/json"),
        ("run API", format!("/api/v1/runs/{run}"), "application/json"),
    ];
    let mut rendered = Vec::new();
    for (what, path, accept) in &pages {
        let (p50, p99, bytes) = timed(&server.bind, path, &token, accept, 20)?;
        rendered.push(format!("{what}: p50_ms={p50:.1} p99_ms={p99:.1} bytes={bytes}"));
    }
    drop(server);

    println!("scale: targets={targets} (rows only: nothing connects to them) claimers={claimers}");
    println!(
        "scale: request (pre-flight, run and {targets} items) s={request_s:.3}; execute (all items queued) s={execute_s:.3}"
    );
    for line in rendered {
        println!("scale: {line}");
    }
    println!(
        "scale: item pickup (run queued to item claimed, {claimers} claimers draining the run) p50_ms={pickup_p50:.0} \
         p99_ms={pickup_p99:.0}"
    );
    println!(
        "scale: claim and end, batches of 32: items_per_s={:.0} (claims alone: items_per_s={:.0})",
        claimed as f64 / drained,
        claimed as f64 / (claim_time.as_secs_f64() / claimers as f64)
    );
    Ok(())
}
