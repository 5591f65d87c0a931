//! The history table on a target: one row per applied (or half-applied) migration of a project.
//!
//! A row records the version, its name, the checksum of its up SQL and the algorithm, the status
//! (`applied`, `running`, `failed`), statements done out of total, the run and worker that wrote it, the
//! times, and the error. A `running` or `failed` row marks a dirty target: nothing is applied over it until an
//! admin resolves it, so a half-applied migration is never silently retried or skipped.

use domain::enums::Engine;
use domain::values::Identifier;
use sqlx::{AssertSqlSafe, Row};

use crate::target::{TargetConnection, TargetError};

/// Where a project's history lives on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable {
    /// Postgres schema; MySQL keeps it in the connection's database.
    pub schema: Option<Identifier>,
    pub table: Identifier,
}

impl HistoryTable {
    /// The quoted, qualified name. Identifiers are validated as plain (`[A-Za-z_][A-Za-z0-9_]*`), so quoting
    /// cannot be escaped.
    fn name(&self, engine: Engine) -> String {
        match (engine, &self.schema) {
            (Engine::Postgres, Some(schema)) => format!("\"{schema}\".\"{}\"", self.table),
            (Engine::Postgres, None) => format!("\"{}\"", self.table),
            (Engine::Mysql, _) => format!("`{}`", self.table),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryStatus {
    Applied,
    Running,
    Failed,
}

impl HistoryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryStatus::Applied => "applied",
            HistoryStatus::Running => "running",
            HistoryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [HistoryStatus::Applied, HistoryStatus::Running, HistoryStatus::Failed].into_iter().find(|h| h.as_str() == s)
    }
}

/// A history row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub version: String,
    pub name: String,
    pub checksum: Vec<u8>,
    pub checksum_algorithm: String,
    pub status: HistoryStatus,
    pub statements_done: u32,
    pub statements_total: u32,
    pub error: Option<String>,
}

/// A row to write when a migration starts (or, in a transaction, when it is done).
#[derive(Debug, Clone)]
pub struct NewHistoryRow<'a> {
    pub version: &'a str,
    pub name: &'a str,
    pub checksum: &'a [u8],
    pub checksum_algorithm: &'a str,
    pub status: HistoryStatus,
    pub statements_done: u32,
    pub statements_total: u32,
    pub run_id: Option<String>,
    pub worker: &'a str,
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Creates the table if it is missing (and, on Postgres, its schema).
pub async fn ensure(conn: &mut TargetConnection, table: &HistoryTable) -> Result<(), TargetError> {
    let engine = conn.engine();
    let name = table.name(engine);
    let sql = match engine {
        Engine::Postgres => {
            let schema =
                table.schema.as_ref().map(|s| format!("CREATE SCHEMA IF NOT EXISTS \"{s}\";")).unwrap_or_default();
            format!(
                "{schema}
                CREATE TABLE IF NOT EXISTS {name} (
                    version            text PRIMARY KEY,
                    name               text NOT NULL,
                    checksum           bytea NOT NULL,
                    checksum_algorithm text NOT NULL,
                    status             text NOT NULL CHECK (status IN ('applied', 'running', 'failed')),
                    statements_done    integer NOT NULL DEFAULT 0,
                    statements_total   integer NOT NULL,
                    run_id             text,
                    worker             text NOT NULL,
                    started_at         timestamptz NOT NULL DEFAULT now(),
                    finished_at        timestamptz,
                    duration_ms        bigint,
                    error              text
                )"
            )
        }
        Engine::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {name} (
                version            VARCHAR(64) NOT NULL PRIMARY KEY,
                name               VARCHAR(200) NOT NULL,
                checksum           VARBINARY(32) NOT NULL,
                checksum_algorithm VARCHAR(32) NOT NULL,
                status             VARCHAR(16) NOT NULL,
                statements_done    INT NOT NULL DEFAULT 0,
                statements_total   INT NOT NULL,
                run_id             VARCHAR(64) NULL,
                worker             VARCHAR(255) NOT NULL,
                started_at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
                finished_at        DATETIME(6) NULL,
                duration_ms        BIGINT NULL,
                error              TEXT NULL
            )"
        ),
    };
    conn.execute(&sql).await.map(|_| ())
}

fn row_from<R: Row>(row: &R) -> Result<HistoryRow, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get(4)?;
    Ok(HistoryRow {
        version: row.try_get(0)?,
        name: row.try_get(1)?,
        checksum: row.try_get(2)?,
        checksum_algorithm: row.try_get(3)?,
        status: HistoryStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown history status {status:?}").into()))?,
        statements_done: u32::try_from(row.try_get::<i32, _>(5)?).unwrap_or_default(),
        statements_total: u32::try_from(row.try_get::<i32, _>(6)?).unwrap_or_default(),
        error: row.try_get(7)?,
    })
}

/// Whether the table exists (without creating it), for read-only commands.
pub async fn exists(conn: &mut TargetConnection, table: &HistoryTable) -> Result<bool, TargetError> {
    let result = match conn {
        TargetConnection::Postgres(c) => {
            let qualified = match &table.schema {
                Some(schema) => format!("{schema}.{}", table.table),
                None => table.table.to_string(),
            };
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(qualified).fetch_one(c).await
        }
        TargetConnection::Mysql { conn: c, .. } => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table.table.as_str())
        .fetch_one(c)
        .await
        .map(|n| n > 0),
    };
    result.map_err(TargetError::Connection)
}

const COLUMNS: &str = "version, name, checksum, checksum_algorithm, status, statements_done, statements_total, error";

/// Every row, in no particular order.
pub async fn all(conn: &mut TargetConnection, table: &HistoryTable) -> Result<Vec<HistoryRow>, TargetError> {
    let sql = format!("SELECT {COLUMNS} FROM {}", table.name(conn.engine()));
    let rows = match conn {
        TargetConnection::Postgres(c) => sqlx::query(AssertSqlSafe(sql))
            .fetch_all(c)
            .await
            .and_then(|rows| rows.iter().map(row_from).collect::<Result<Vec<_>, _>>()),
        TargetConnection::Mysql { conn: c, .. } => sqlx::query(AssertSqlSafe(sql))
            .fetch_all(c)
            .await
            .and_then(|rows| rows.iter().map(row_from).collect::<Result<Vec<_>, _>>()),
    };
    rows.map_err(TargetError::Connection)
}

pub async fn insert(
    conn: &mut TargetConnection,
    table: &HistoryTable,
    row: &NewHistoryRow<'_>,
) -> Result<(), TargetError> {
    let name = table.name(conn.engine());
    let result = match conn {
        TargetConnection::Postgres(c) => sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {name} (version, name, checksum, checksum_algorithm, status, statements_done, \
             statements_total, run_id, worker, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'applied' THEN now() END)"
        )))
        .bind(row.version)
        .bind(row.name)
        .bind(row.checksum)
        .bind(row.checksum_algorithm)
        .bind(row.status.as_str())
        .bind(count(row.statements_done))
        .bind(count(row.statements_total))
        .bind(row.run_id.as_deref())
        .bind(row.worker)
        .execute(c)
        .await
        .map(|_| ()),
        TargetConnection::Mysql { conn: c, .. } => sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {name} (version, name, checksum, checksum_algorithm, status, statements_done, \
             statements_total, run_id, worker, finished_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, IF(? = 'applied', CURRENT_TIMESTAMP(6), NULL))"
        )))
        .bind(row.version)
        .bind(row.name)
        .bind(row.checksum)
        .bind(row.checksum_algorithm)
        .bind(row.status.as_str())
        .bind(count(row.statements_done))
        .bind(count(row.statements_total))
        .bind(row.run_id.as_deref())
        .bind(row.worker)
        .bind(row.status.as_str())
        .execute(c)
        .await
        .map(|_| ()),
    };
    result.map_err(TargetError::Connection)
}

/// Records progress, or the end (`applied`/`failed`, with the error), of the row for `version`.
pub async fn update(
    conn: &mut TargetConnection,
    table: &HistoryTable,
    version: &str,
    status: HistoryStatus,
    statements_done: u32,
    error: Option<&str>,
) -> Result<(), TargetError> {
    let name = table.name(conn.engine());
    let finished = status != HistoryStatus::Running;
    let result = match conn {
        TargetConnection::Postgres(c) => sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET status = $2, statements_done = $3, error = $4, \
             finished_at = CASE WHEN $5 THEN now() END, \
             duration_ms = CASE WHEN $5 THEN (extract(epoch FROM now() - started_at) * 1000)::bigint END \
             WHERE version = $1"
        )))
        .bind(version)
        .bind(status.as_str())
        .bind(count(statements_done))
        .bind(error)
        .bind(finished)
        .execute(c)
        .await
        .map(|_| ()),
        TargetConnection::Mysql { conn: c, .. } => sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET status = ?, statements_done = ?, error = ?, \
             finished_at = IF(?, CURRENT_TIMESTAMP(6), NULL), \
             duration_ms = IF(?, TIMESTAMPDIFF(MICROSECOND, started_at, CURRENT_TIMESTAMP(6)) DIV 1000, NULL) \
             WHERE version = ?"
        )))
        .bind(status.as_str())
        .bind(count(statements_done))
        .bind(error)
        .bind(finished)
        .bind(finished)
        .bind(version)
        .execute(c)
        .await
        .map(|_| ()),
    };
    result.map_err(TargetError::Connection)
}

pub async fn delete(conn: &mut TargetConnection, table: &HistoryTable, version: &str) -> Result<(), TargetError> {
    let name = table.name(conn.engine());
    let result = match conn {
        TargetConnection::Postgres(c) => sqlx::query(AssertSqlSafe(format!("DELETE FROM {name} WHERE version = $1")))
            .bind(version)
            .execute(c)
            .await
            .map(|_| ()),
        TargetConnection::Mysql { conn: c, .. } => {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {name} WHERE version = ?")))
                .bind(version)
                .execute(c)
                .await
                .map(|_| ())
        }
    };
    result.map_err(TargetError::Connection)
}
