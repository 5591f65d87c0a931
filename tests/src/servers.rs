//! Which database servers the tests use: the ones named by the environment, else containers.

use std::time::Duration;

use testcontainers_modules::mariadb::Mariadb;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use tokio::sync::OnceCell;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_MYSQL: &str = "mysql://root@127.0.0.1:3306/mysql";

/// Containers live for the whole test process (a static is never dropped, and Docker reaps nothing: one
/// per process is the cost of running without local servers).
static PG_CONTAINER: OnceCell<(String, ContainerAsync<Postgres>)> = OnceCell::const_new();
static MYSQL_CONTAINER: OnceCell<(String, ContainerAsync<Mariadb>)> = OnceCell::const_new();

/// `scheme://user[:password]@host:port` of the Postgres test server, without a database name.
pub async fn pg_server_url() -> String {
    let configured = std::env::var("TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG.into());
    let base = strip_database(&configured);
    if answers::<sqlx::Postgres>(&format!("{base}/postgres")).await {
        return base;
    }
    if docker_available() {
        let (url, _) = PG_CONTAINER
            .get_or_init(|| async {
                let container = Postgres::default().start().await.expect("start a Postgres container");
                let host = container.get_host().await.expect("container host");
                let port = container.get_host_port_ipv4(5432).await.expect("container port");
                (format!("postgres://postgres:postgres@{host}:{port}"), container)
            })
            .await;
        return url.clone();
    }
    panic!("no Postgres test server: {base} does not answer and Docker is not available; set TEST_PG_URL")
}

/// `mysql://user[:password]@host:port` of the MySQL/MariaDB test server, without a database name.
pub async fn mysql_server_url() -> String {
    let configured = std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL.into());
    let base = strip_database(&configured);
    if answers::<sqlx::MySql>(&format!("{base}/mysql")).await {
        return base;
    }
    if docker_available() {
        let (url, _) = MYSQL_CONTAINER
            .get_or_init(|| async {
                let container = Mariadb::default().start().await.expect("start a MariaDB container");
                let host = container.get_host().await.expect("container host");
                let port = container.get_host_port_ipv4(3306).await.expect("container port");
                (format!("mysql://root@{host}:{port}"), container)
            })
            .await;
        return url.clone();
    }
    panic!("no MySQL test server: {base} does not answer and Docker is not available; set TEST_MYSQL_URL")
}

/// The URL without its path (database name) or query.
fn strip_database(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

async fn answers<DB: sqlx::Database>(url: &str) -> bool {
    use sqlx::ConnectOptions;
    let Ok(options) = url.parse::<<DB::Connection as sqlx::Connection>::Options>() else { return false };
    matches!(tokio::time::timeout(Duration::from_secs(3), options.connect()).await, Ok(Ok(_)))
}

fn docker_available() -> bool {
    std::process::Command::new("docker").arg("info").output().is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_the_database_and_query() {
        assert_eq!(super::strip_database("postgres://u:p@h:1/db?sslmode=disable"), "postgres://u:p@h:1");
        assert_eq!(super::strip_database("mysql://root@127.0.0.1:3306"), "mysql://root@127.0.0.1:3306");
    }
}
