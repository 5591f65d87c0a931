//! Finding a Postgres server for development: `DATABASE_URL`, else the local server on 127.0.0.1:5432,
//! else a throwaway cluster under `target/` made with the system's `initdb`/`pg_ctl`, else a container
//! (testcontainers) when Docker is there.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use testcontainers_modules::postgres::Postgres as PostgresImage;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

use crate::{run_checked, target_dir};

/// Port of the throwaway cluster (away from the default so it never collides with a system server).
const CLUSTER_PORT: u16 = 55432;

/// A Postgres server and what keeps it alive.
pub struct Server {
    /// URL of the server without a database name, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub base_url: String,
    /// Where the URL came from, for the console.
    pub origin: String,
    keeper: Keeper,
}

enum Keeper {
    Nothing,
    Cluster { data: PathBuf, as_user: Option<String> },
    Container(Box<ContainerAsync<PostgresImage>>),
}

impl Server {
    /// URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{}", self.base_url.trim_end_matches('/'), name)
    }

    /// Whether this command started the server (a throwaway cluster or a container), so stops it after.
    pub fn started_here(&self) -> bool {
        !matches!(self.keeper, Keeper::Nothing)
    }

    /// Stops what we started (nothing for a server we found).
    pub async fn stop(self) {
        match self.keeper {
            Keeper::Nothing => {}
            Keeper::Cluster { data, as_user } => {
                let mut stop = pg_command(&pg_bin("pg_ctl").unwrap_or_else(|_| "pg_ctl".into()), as_user.as_deref());
                stop.args(["-D"]).arg(&data).args(["-m", "fast", "-w", "stop"]);
                if let Err(e) = run_checked(&mut stop) {
                    eprintln!("xtask: could not stop the throwaway cluster: {e:#}");
                }
            }
            Keeper::Container(container) => {
                if let Err(e) = container.rm().await {
                    eprintln!("xtask: could not remove the Postgres container: {e}");
                }
            }
        }
    }
}

pub fn reachable(address: &str) -> bool {
    address
        .parse::<SocketAddr>()
        .is_ok_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}

/// Finds or starts a server, in the documented order.
pub async fn find_or_start() -> anyhow::Result<Server> {
    if reachable("127.0.0.1:5432") {
        return Ok(Server {
            base_url: "postgres://postgres@127.0.0.1:5432".into(),
            origin: "the local Postgres on 127.0.0.1:5432".into(),
            keeper: Keeper::Nothing,
        });
    }
    match start_cluster() {
        Ok(server) => return Ok(server),
        Err(e) => eprintln!("xtask: no throwaway cluster ({e:#}); trying Docker"),
    }
    if docker_available() {
        let container = PostgresImage::default().start().await.context("cannot start a Postgres container")?;
        let host = container.get_host().await?;
        let port = container.get_host_port_ipv4(5432).await?;
        return Ok(Server {
            base_url: format!("postgres://postgres:postgres@{host}:{port}"),
            origin: "a Postgres container (testcontainers)".into(),
            keeper: Keeper::Container(Box::new(container)),
        });
    }
    bail!(
        "no Postgres found: set DATABASE_URL, start Postgres on 127.0.0.1:5432, install the postgresql server \
         package (initdb/pg_ctl), or start Docker"
    )
}

fn docker_available() -> bool {
    Command::new("docker").arg("info").output().is_ok_and(|out| out.status.success())
}

/// `initdb`/`pg_ctl` from PATH or the newest /usr/lib/postgresql/*/bin.
fn pg_bin(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let candidate = entry.path().join("bin").join(name);
            candidate.is_file().then_some((version, candidate))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, path)| path)
        .with_context(|| format!("{name} not found on PATH or under /usr/lib/postgresql"))
}

/// Postgres refuses to run as root: as root, run the server tools as the `postgres` user.
fn pg_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    (String::from_utf8_lossy(&uid.stdout).trim() == "0").then(|| "postgres".to_owned())
}

fn pg_command(binary: &Path, as_user: Option<&str>) -> Command {
    match as_user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

fn start_cluster() -> anyhow::Result<Server> {
    let initdb = pg_bin("initdb")?;
    let pg_ctl = pg_bin("pg_ctl")?;
    let as_user = pg_user();
    let root = target_dir().join("dev-postgres");
    let data = root.join("data");
    std::fs::create_dir_all(&root)?;
    if let Some(user) = &as_user {
        run_checked(Command::new("chown").args(["-R", user]).arg(&root))?;
    }
    if !data.join("PG_VERSION").is_file() {
        let mut init = pg_command(&initdb, as_user.as_deref());
        init.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "--no-sync"]);
        run_checked(&mut init).context("initdb failed")?;
    }
    let mut start = pg_command(&pg_ctl, as_user.as_deref());
    start
        .arg("-D")
        .arg(&data)
        .arg("-o")
        .arg(format!("-p {CLUSTER_PORT} -k {} -c listen_addresses=127.0.0.1", root.display()))
        .arg("-l")
        .arg(root.join("postgres.log"))
        .args(["-w", "start"]);
    run_checked(&mut start).context("pg_ctl start failed")?;
    Ok(Server {
        base_url: format!("postgres://postgres@127.0.0.1:{CLUSTER_PORT}"),
        origin: format!("a throwaway cluster in {}", root.display()),
        keeper: Keeper::Cluster { data, as_user },
    })
}
