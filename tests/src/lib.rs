//! Test support: a fresh database per test on real servers, and the helpers the integration suite shares.
//!
//! Servers come from `TEST_PG_URL` / `TEST_MYSQL_URL` (defaulting to this project's machines: Postgres on
//! 127.0.0.1:5432 as `postgres`, MariaDB on 127.0.0.1:3306 as `root`). When the server is not reachable and
//! Docker is, a container is started once per test process (testcontainers). Each test gets its own
//! database, dropped when the handle is dropped (set `TEST_KEEP_DB=1` to keep it for inspection).
//! Logs are silent unless `TEST_LOG=1`.

// Test support fails the test that called it, loudly, when a server or database cannot be had: that is
// what a panic in a test helper is for.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod chaos;
pub mod fleet;
pub mod oidc;
mod servers;

use std::path::PathBuf;

use sqlx::{MySqlPool, PgPool};

pub use servers::{mysql_server_url, pg_server_url};

/// Installs a log subscriber when `TEST_LOG` is set; silent otherwise.
pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("debug,sqlx=info").with_test_writer().try_init();
    }
}

/// A database of its own on the Postgres test server.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    server_url: String,
}

impl PgDatabase {
    /// An empty database.
    pub async fn fresh() -> Self {
        init_logging();
        let server_url = pg_server_url().await;
        let name = unique_name();
        let admin =
            PgPool::connect(&format!("{server_url}/postgres")).await.expect("connect to the Postgres test server");
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let url = format!("{server_url}/{name}");
        let pool = PgPool::connect(&url).await.expect("connect to the test database");
        Self { name, url, pool, server_url }
    }

    /// Whether `table` (optionally schema-qualified) exists.
    pub async fn has_table(&self, table: &str) -> bool {
        sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&self.pool)
            .await
            .expect("look up a table")
            .is_some()
    }

    /// A database with the tool schema applied.
    pub async fn migrated() -> Self {
        let db = Self::fresh().await;
        storage::schema::migrate(&db.pool).await.expect("apply the tool schema");
        db
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if std::env::var_os("TEST_KEEP_DB").is_some() {
            eprintln!("keeping test database {}", self.url);
            return;
        }
        let admin_url = format!("{}/postgres", self.server_url);
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        drop_in_background(move || async move {
            let admin = PgPool::connect(&admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await?;
            admin.close().await;
            Ok(())
        });
    }
}

/// A database of its own on the MySQL/MariaDB test server.
#[derive(Debug)]
pub struct MySqlDatabase {
    pub name: String,
    pub url: String,
    pub pool: MySqlPool,
    server_url: String,
}

impl MySqlDatabase {
    pub async fn fresh() -> Self {
        init_logging();
        let server_url = mysql_server_url().await;
        let name = unique_name();
        let admin = MySqlPool::connect(&format!("{server_url}/mysql")).await.expect("connect to the MySQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let url = format!("{server_url}/{name}");
        let pool = MySqlPool::connect(&url).await.expect("connect to the test database");
        Self { name, url, pool, server_url }
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        if std::env::var_os("TEST_KEEP_DB").is_some() {
            eprintln!("keeping test database {}", self.url);
            return;
        }
        let admin_url = format!("{}/mysql", self.server_url);
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        drop_in_background(move || async move {
            let admin = MySqlPool::connect(&admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await?;
            admin.close().await;
            Ok(())
        });
    }
}

/// `mh_t_<random>`: unique per test, recognisable as a test database.
fn unique_name() -> String {
    format!("mh_t_{}", uuid::Uuid::new_v4().simple())
}

/// Runs async clean-up from `Drop` (which cannot await) on a runtime of its own, and waits for it.
fn drop_in_background<F, Fut>(work: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(work()).map_err(std::io::Error::other)
    });
    match handle.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not drop a test database: {e}"),
        Err(_) => eprintln!("could not drop a test database: the clean-up thread panicked"),
    }
}

/// Where cargo put this workspace's binaries (the test executable lives in `<target>/<profile>/deps`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} not built: run the tests through `cargo xtask test` (it builds the binaries)",
        path.display()
    );
    path
}
