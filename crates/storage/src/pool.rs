//! Connecting to the tool database.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// How to reach the tool database, parsed from its URL by the caller.
pub use sqlx::postgres::PgConnectOptions;

use crate::StorageResult;

/// Pool settings; the URL itself is parsed by the caller so it never needs to be logged here.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub application_name: String,
    /// Plan each prepared statement once per connection (`plan_cache_mode = force_generic_plan`), for a
    /// process that runs the same few statements all day: a worker's claim and ending were planned anew at
    /// every call (0.38 and 0.22 ms of the server's time, `pg_stat_statements` during
    /// `cargo xtask bench fleet`), since Postgres keeps custom plans while they look cheaper. Their generic
    /// plans use the same indexes (their predicates are on keys and literal statuses).
    pub generic_plans: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            application_name: "migrate-hub".into(),
            generic_plans: false,
        }
    }
}

/// How long a pooled connection may sit idle before it is checked on acquire.
const VALIDATE_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Opens a pool on the tool database. Connections are made lazily, so this succeeds while the database is
/// down; readiness is judged by [`crate::schema::status`]. An `application_name` given in the URL wins
/// over the settings' (operators tell their workers apart in `pg_stat_activity` that way).
pub fn connect_lazy(options: PgConnectOptions, settings: &PoolSettings) -> PgPool {
    let options = match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(&settings.application_name),
    };
    let options =
        if settings.generic_plans { options.options([("plan_cache_mode", "force_generic_plan")]) } else { options };
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // A connection used within the last second is handed out as it is; one idle longer is pinged first
        // (HikariCP's "alive bypass window"). Pinging on every acquire cost a round trip per query: six per
        // item in a worker. A connection that broke within the window fails its query, is dropped by the
        // pool, and the caller's retry takes another.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > VALIDATE_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options)
}

/// Opens a pool and checks that the database answers.
pub async fn connect(options: PgConnectOptions, settings: &PoolSettings) -> StorageResult<PgPool> {
    let pool = connect_lazy(options, settings);
    pool.acquire().await?;
    Ok(pool)
}
