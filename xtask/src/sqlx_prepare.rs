//! `cargo xtask sqlx-prepare [--check]`: the compile-time query data in `.sqlx/`.
//!
//! sqlx's macros write a `query-<hash>.json` for every query they check when `SQLX_OFFLINE_DIR` is set and
//! they run online, so this needs no sqlx-cli: apply `migrations/` to a scratch database, rebuild the
//! storage crate online against it, and collect what the macros wrote.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, bail};
use sqlx::migrate::{MigrateDatabase, Migrator};

use crate::postgres;
use crate::{cargo, run_checked, target_dir, workspace_root};

pub async fn run(check: bool) -> anyhow::Result<()> {
    let server = match std::env::var("SQLX_PREPARE_PG_URL") {
        Ok(_) => None,
        Err(_) => Some(postgres::find_or_start().await?),
    };
    let scratch = format!("migrate_hub_sqlx_prepare_{}", std::process::id());
    let url = match (&server, std::env::var("SQLX_PREPARE_PG_URL")) {
        (_, Ok(base)) => format!("{}/{scratch}", base.trim_end_matches('/')),
        (Some(server), _) => server.database_url(&scratch),
        (None, Err(_)) => bail!("no Postgres server"),
    };
    let result = prepare(&url, check).await;
    if let Err(e) = sqlx::Postgres::force_drop_database(&url).await {
        eprintln!("xtask: could not drop {scratch}: {e}");
    }
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

async fn prepare(url: &str, check: bool) -> anyhow::Result<()> {
    sqlx::Postgres::create_database(url).await.context("cannot create the scratch database")?;
    let pool = sqlx::PgPool::connect(url).await?;
    Migrator::new(workspace_root().join("migrations")).await?.run(&pool).await.context("applying migrations/")?;
    pool.close().await;

    let out = target_dir().join("sqlx-prepare");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    // Touch the storage crate so cargo re-expands its macros (they are the only ones in the workspace).
    let lib = workspace_root().join("crates/storage/src/lib.rs");
    std::fs::File::options().append(true).open(&lib)?.set_modified(SystemTime::now())?;
    run_checked(
        cargo()
            .args(["check", "--quiet", "-p", "migrate-hub-storage", "--all-targets"])
            .env("SQLX_OFFLINE", "false")
            .env("DATABASE_URL", url)
            .env("SQLX_OFFLINE_DIR", &out),
    )?;

    let fresh = read_dir(&out)?;
    let committed_dir = workspace_root().join(".sqlx");
    let committed = if committed_dir.exists() { read_dir(&committed_dir)? } else { BTreeMap::new() };
    if check {
        let mut stale = Vec::new();
        for (name, content) in &fresh {
            if committed.get(name) != Some(content) {
                stale.push(format!("missing or different: .sqlx/{name}"));
            }
        }
        for name in committed.keys().filter(|name| !fresh.contains_key(*name)) {
            stale.push(format!("no longer used: .sqlx/{name}"));
        }
        if !stale.is_empty() {
            for line in &stale {
                eprintln!("xtask: {line}");
            }
            bail!(".sqlx/ is out of date: run `cargo xtask sqlx-prepare` and commit the result");
        }
        eprintln!("xtask: .sqlx/ is up to date ({} queries)", fresh.len());
    } else {
        if committed_dir.exists() {
            std::fs::remove_dir_all(&committed_dir)?;
        }
        std::fs::create_dir_all(&committed_dir)?;
        for (name, content) in &fresh {
            std::fs::write(committed_dir.join(name), content)?;
        }
        eprintln!("xtask: wrote {} query files to .sqlx/", fresh.len());
    }
    Ok(())
}

fn read_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            files.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok(files)
}
