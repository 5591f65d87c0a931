//! The history table on a target: one row per applied (or half-applied) migration of a project.
//!
//! A row records the version, its name, the checksum of its up SQL and the algorithm, the status
//! (`applied`, `running`, `failed`), statements done out of total, the run and worker that wrote it, the
//! times, and the error. A `running` or `failed` row marks a dirty target: nothing is applied over it until an
//! admin resolves it, so a half-applied migration is never silently retried or skipped.

use domain::enums::Engine;
use domain::values::{Identifier, VersionKey};
use sqlx::{AssertSqlSafe, Row};

use crate::target::{Session, TargetConnection, TargetError};

/// Where a project's history lives on a target, and whose rows in it are the project's.
///
/// Several projects may share one table (every project defaults to `migrate_hub_history`): each row carries
/// its project's key and a project reads, decides on and writes only its own rows. Rows written before the
/// table had a `project` column (and rows the plain CLI writes) have the empty key; see [`ensure_and_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable {
    /// Postgres schema; MySQL keeps it in the connection's database.
    pub schema: Option<Identifier>,
    pub table: Identifier,
    /// The project's key (the hub's project id); empty for the plain CLI.
    pub project: String,
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

    /// The status stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
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
    /// Written with the empty project key (before the table had projects, or by the plain CLI) and read by
    /// a project with a key: it may be this project's or another's.
    pub legacy: bool,
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

/// The table as created today: rows keyed by (project, version), both compared byte for byte (MariaDB's
/// default collations would make `1a` and `1A` the same key).
fn create_sql(table: &HistoryTable, engine: Engine) -> String {
    let name = table.name(engine);
    match engine {
        Engine::Postgres => {
            let schema =
                table.schema.as_ref().map(|s| format!("CREATE SCHEMA IF NOT EXISTS \"{s}\";")).unwrap_or_default();
            format!(
                "{schema}
                CREATE TABLE IF NOT EXISTS {name} (
                    version            text NOT NULL,
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
                    error              text,
                    project            text NOT NULL DEFAULT '',
                    PRIMARY KEY (project, version)
                )"
            )
        }
        Engine::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {name} (
                version            VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
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
                error              TEXT NULL,
                project            VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
                PRIMARY KEY (project, version)
            )"
        ),
    }
}

/// Brings a table created before projects had their own rows up to date: adds `project` (existing rows get
/// the empty key), keys rows by (project, version), and on MySQL makes the version compare byte for byte.
fn upgrade_sql(table: &HistoryTable, engine: Engine) -> String {
    let name = table.name(engine);
    match engine {
        Engine::Postgres => format!(
            "DO $migrate_hub$
            DECLARE pk text;
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_attribute
                               WHERE attrelid = '{name}'::regclass AND attname = 'project' AND NOT attisdropped) THEN
                    SELECT conname INTO pk FROM pg_constraint WHERE conrelid = '{name}'::regclass AND contype = 'p';
                    ALTER TABLE {name} ADD COLUMN project text NOT NULL DEFAULT '';
                    IF pk IS NOT NULL THEN
                        EXECUTE format('ALTER TABLE {name} DROP CONSTRAINT %I', pk);
                    END IF;
                    ALTER TABLE {name} ADD PRIMARY KEY (project, version);
                END IF;
            END
            $migrate_hub$"
        ),
        Engine::Mysql => format!(
            "ALTER TABLE {name}
                ADD COLUMN project VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
                MODIFY version VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                DROP PRIMARY KEY,
                ADD PRIMARY KEY (project, version)"
        ),
    }
}

/// Whether `e` says the table has no `project` column (a table from before projects had their own rows).
fn lacks_project_column(e: &TargetError) -> bool {
    matches!(e, TargetError::Statement { code: Some(code), .. } if code == "42703" || code == "1054")
}

/// A Postgres string literal that means the same whatever the session's `standard_conforming_strings`
/// (a migration may have changed it): an `E''` string with backslashes and quotes escaped.
fn pg_literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn pg_bytes(value: &[u8]) -> String {
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    format!("decode('{hex}', 'hex')")
}

/// Creates the table if it is missing (and, on Postgres, its schema), upgrades one from before projects
/// had their own rows, and returns the rows this project may see (see [`all`]). On Postgres, creating and
/// reading are one round trip.
pub async fn ensure_and_read(
    conn: &mut TargetConnection,
    table: &HistoryTable,
) -> Result<Vec<HistoryRow>, TargetError> {
    let engine = conn.engine();
    let read = match engine {
        Engine::Postgres => read_rows(conn, &ensure_and_read_sql(table), true, None).await,
        Engine::Mysql => {
            conn.execute(&create_sql(table, engine)).await?;
            select(conn, table, true).await
        }
    };
    match read {
        Err(e) if lacks_project_column(&e) => {
            conn.execute(&upgrade_sql(table, engine)).await?;
            select(conn, table, true).await
        }
        other => other,
    }
}

/// [`ensure_and_read`]'s statements on Postgres, to travel with the lock (see
/// [`TargetConnection::limit_lock_and`]); their rows are read by [`read_ensured`]. A table from before projects
/// fails the read: then [`ensure_and_read`] is the way.
pub fn ensure_and_read_sql(table: &HistoryTable) -> String {
    format!("{};\n{}", create_sql(table, Engine::Postgres), select_sql(table, Engine::Postgres, true))
}

/// The rows of [`ensure_and_read_sql`].
pub fn read_ensured(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<HistoryRow>, TargetError> {
    rows.iter().map(|r| row_from(r, true)).collect::<Result<Vec<_>, _>>().map_err(TargetError::from_sqlx)
}

/// Hands the empty-key rows of `versions` (versions of this project) to this project, so that from now on
/// no other project sees them. Nothing to do for the plain CLI (its key is the empty one).
pub async fn claim(conn: &mut TargetConnection, table: &HistoryTable, versions: &[&str]) -> Result<(), TargetError> {
    if table.project.is_empty() || versions.is_empty() {
        return Ok(());
    }
    let engine = conn.engine();
    let name = table.name(engine);
    let result = match conn.session_mut() {
        Session::Postgres(c) => sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET project = $1 WHERE project = '' AND version = ANY($2)"
        )))
        .bind(&table.project)
        .bind(versions.iter().map(|v| (*v).to_owned()).collect::<Vec<String>>())
        .execute(c)
        .await
        .map(|_| ()),
        Session::Mysql { conn: c, .. } => {
            let marks = vec!["?"; versions.len()].join(", ");
            let sql = format!("UPDATE {name} SET project = ? WHERE project = '' AND version IN ({marks})");
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(&table.project);
            for v in versions {
                query = query.bind(*v);
            }
            query.execute(c).await.map(|_| ())
        }
    };
    result.map_err(TargetError::from_sqlx)
}

fn row_from<R: Row>(row: &R, with_project: bool) -> Result<HistoryRow, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get(4)?;
    let project: String = if with_project { row.try_get(8)? } else { String::new() };
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
        legacy: project.is_empty(),
    })
}

/// Whether the table exists (without creating it), for read-only commands.
pub async fn exists(conn: &mut TargetConnection, table: &HistoryTable) -> Result<bool, TargetError> {
    let result = match conn.session_mut() {
        Session::Postgres(c) => {
            let qualified = match &table.schema {
                Some(schema) => format!("{schema}.{}", table.table),
                None => table.table.to_string(),
            };
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(qualified).fetch_one(c).await
        }
        Session::Mysql { conn: c, .. } => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table.table.as_str())
        .fetch_one(c)
        .await
        .map(|n| n > 0),
    };
    result.map_err(TargetError::from_sqlx)
}

const COLUMNS: &str = "version, name, checksum, checksum_algorithm, status, statements_done, statements_total, error";

/// The SELECT of the rows a project may see: its own, and the empty-key ones (see [`HistoryRow::legacy`]).
/// On Postgres the key is written as a literal (so the SELECT can share a round trip); on MySQL it is bound.
fn select_sql(table: &HistoryTable, engine: Engine, with_project: bool) -> String {
    let name = table.name(engine);
    if !with_project {
        return format!("SELECT {COLUMNS} FROM {name}");
    }
    match engine {
        Engine::Postgres => {
            format!("SELECT {COLUMNS}, project FROM {name} WHERE project IN ({}, '')", pg_literal(&table.project))
        }
        Engine::Mysql => format!("SELECT {COLUMNS}, project FROM {name} WHERE project IN (?, '')"),
    }
}

/// Runs a SELECT of [`select_sql`]'s shape (`with_project`: it reads the `project` column too).
async fn read_rows(
    conn: &mut TargetConnection,
    sql: &str,
    with_project: bool,
    bind: Option<&str>,
) -> Result<Vec<HistoryRow>, TargetError> {
    let rows = match conn.session_mut() {
        Session::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(c)
            .await
            .and_then(|rows| rows.iter().map(|r| row_from(r, with_project)).collect::<Result<Vec<_>, _>>()),
        Session::Mysql { conn: c, .. } => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            if let Some(value) = bind {
                query = query.bind(value);
            }
            query
                .fetch_all(c)
                .await
                .and_then(|rows| rows.iter().map(|r| row_from(r, with_project)).collect::<Result<Vec<_>, _>>())
        }
    };
    rows.map_err(TargetError::from_sqlx)
}

async fn select(
    conn: &mut TargetConnection,
    table: &HistoryTable,
    with_project: bool,
) -> Result<Vec<HistoryRow>, TargetError> {
    let engine = conn.engine();
    let bind = (engine == Engine::Mysql && with_project).then_some(table.project.as_str());
    read_rows(conn, &select_sql(table, engine, with_project), with_project, bind).await
}

/// The rows this project may see, in no particular order: its own and the empty-key ones (marked
/// [`legacy`](HistoryRow::legacy) unless this is the plain CLI's empty key). A table from before projects had
/// their own rows is read as it is (every row empty-key), without changing it.
pub async fn all(conn: &mut TargetConnection, table: &HistoryTable) -> Result<Vec<HistoryRow>, TargetError> {
    let rows = match select(conn, table, true).await {
        Err(e) if lacks_project_column(&e) => select(conn, table, false).await?,
        other => other?,
    };
    Ok(unmark_own(rows, table))
}

/// For the plain CLI the empty-key rows are its own.
fn unmark_own(mut rows: Vec<HistoryRow>, table: &HistoryTable) -> Vec<HistoryRow> {
    if table.project.is_empty() {
        for row in &mut rows {
            row.legacy = false;
        }
    }
    rows
}

pub async fn insert(
    conn: &mut TargetConnection,
    table: &HistoryTable,
    row: &NewHistoryRow<'_>,
) -> Result<(), TargetError> {
    let name = table.name(conn.engine());
    let result = match conn.session_mut() {
        Session::Postgres(c) => sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {name} (project, version, name, checksum, checksum_algorithm, status, statements_done, \
             statements_total, run_id, worker, finished_at) \
             VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'applied' THEN now() END)"
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
        .bind(&table.project)
        .execute(c)
        .await
        .map(|_| ()),
        Session::Mysql { conn: c, .. } => sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {name} (project, version, name, checksum, checksum_algorithm, status, statements_done, \
             statements_total, run_id, worker, finished_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, IF(? = 'applied', CURRENT_TIMESTAMP(6), NULL))"
        )))
        .bind(&table.project)
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
    result.map_err(TargetError::from_sqlx)
}

/// Postgres: the `applied` row of a migration followed by the COMMIT of its transaction, for one message
/// (see [`TargetConnection::execute_batch`]). Values are literals (see [`pg_literal`]); if the INSERT
/// fails, the COMMIT does not run.
pub fn insert_and_commit_sql(table: &HistoryTable, row: &NewHistoryRow<'_>) -> String {
    let name = table.name(Engine::Postgres);
    let run_id = row.run_id.as_deref().map_or_else(|| "NULL".to_owned(), pg_literal);
    format!(
        "INSERT INTO {name} (project, version, name, checksum, checksum_algorithm, status, statements_done, \
         statements_total, run_id, worker, finished_at) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {run_id}, {}, now());\nCOMMIT",
        pg_literal(&table.project),
        pg_literal(row.version),
        pg_literal(row.name),
        pg_bytes(row.checksum),
        pg_literal(row.checksum_algorithm),
        pg_literal(row.status.as_str()),
        count(row.statements_done),
        count(row.statements_total),
        pg_literal(row.worker),
    )
}

/// Postgres: a repeatable migration's row replaced (the old one, if any, deleted first), then the COMMIT,
/// as [`insert_and_commit_sql`].
pub fn replace_and_commit_sql(table: &HistoryTable, row: &NewHistoryRow<'_>) -> String {
    format!(
        "DELETE FROM {} WHERE project = {} AND version = {};\n{}",
        table.name(Engine::Postgres),
        pg_literal(&table.project),
        pg_literal(row.version),
        insert_and_commit_sql(table, row)
    )
}

/// Postgres: deletes a reverted migration's row, then COMMITs its transaction (as [`insert_and_commit_sql`]).
pub fn delete_and_commit_sql(table: &HistoryTable, version: &str) -> String {
    format!(
        "DELETE FROM {} WHERE project = {} AND version = {};\nCOMMIT",
        table.name(Engine::Postgres),
        pg_literal(&table.project),
        pg_literal(version)
    )
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
    let result = match conn.session_mut() {
        Session::Postgres(c) => sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET status = $2, statements_done = $3, error = $4, \
             finished_at = CASE WHEN $5 THEN now() END, \
             duration_ms = CASE WHEN $5 THEN (extract(epoch FROM now() - started_at) * 1000)::bigint END \
             WHERE project = $6 AND version = $1"
        )))
        .bind(version)
        .bind(status.as_str())
        .bind(count(statements_done))
        .bind(error)
        .bind(finished)
        .bind(&table.project)
        .execute(c)
        .await
        .map(|_| ()),
        Session::Mysql { conn: c, .. } => sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET status = ?, statements_done = ?, error = ?, \
             finished_at = IF(?, CURRENT_TIMESTAMP(6), NULL), \
             duration_ms = IF(?, TIMESTAMPDIFF(MICROSECOND, started_at, CURRENT_TIMESTAMP(6)) DIV 1000, NULL) \
             WHERE project = ? AND version = ?"
        )))
        .bind(status.as_str())
        .bind(count(statements_done))
        .bind(error)
        .bind(finished)
        .bind(finished)
        .bind(&table.project)
        .bind(version)
        .execute(c)
        .await
        .map(|_| ()),
    };
    result.map_err(TargetError::from_sqlx)
}

/// Ends `version`'s row on MySQL in one statement, only while `condition` holds (the lock, see
/// [`TargetConnection::mysql_lock_condition`]): `applied` with `statements_done` (`up`), or deleted (a down).
/// Whether the row was ended; `false` also when the lock is gone (the caller asks which). Postgres: `false`,
/// nothing sent.
pub async fn end_if(
    conn: &mut TargetConnection,
    table: &HistoryTable,
    version: &str,
    up: bool,
    statements_done: u32,
    condition: &str,
) -> Result<bool, TargetError> {
    let name = table.name(conn.engine());
    let Session::Mysql { conn: c, .. } = conn.session_mut() else { return Ok(false) };
    let result = if up {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {name} SET status = 'applied', statements_done = ?, error = NULL, \
             finished_at = CURRENT_TIMESTAMP(6), \
             duration_ms = TIMESTAMPDIFF(MICROSECOND, started_at, CURRENT_TIMESTAMP(6)) DIV 1000 \
             WHERE project = ? AND version = ? AND {condition}"
        )))
        .bind(count(statements_done))
        .bind(&table.project)
        .bind(version)
        .execute(c)
        .await
    } else {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {name} WHERE project = ? AND version = ? AND {condition}")))
            .bind(&table.project)
            .bind(version)
            .execute(c)
            .await
    };
    // The row was `running`, so ending it changes it: one row (MySQL counts changed rows).
    result.map(|done| done.rows_affected() == 1).map_err(TargetError::from_sqlx)
}

pub async fn delete(conn: &mut TargetConnection, table: &HistoryTable, version: &str) -> Result<(), TargetError> {
    let name = table.name(conn.engine());
    let result = match conn.session_mut() {
        Session::Postgres(c) => {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {name} WHERE project = $2 AND version = $1")))
                .bind(version)
                .bind(&table.project)
                .execute(c)
                .await
                .map(|_| ())
        }
        Session::Mysql { conn: c, .. } => {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {name} WHERE project = ? AND version = ?")))
                .bind(&table.project)
                .bind(version)
                .execute(c)
                .await
                .map(|_| ())
        }
    };
    result.map_err(TargetError::from_sqlx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_be_escaped_whatever_the_session_settings() {
        assert_eq!(pg_literal("it's"), "E'it''s'");
        assert_eq!(pg_literal(r"a\'; DROP TABLE x; --"), r"E'a\\''; DROP TABLE x; --'");
        assert_eq!(pg_bytes(&[0, 255, 16]), "decode('00ff10', 'hex')");
    }
}

/// A history row as a person reads it (the target's page, `GET /api/v1/targets/{id}/history`): every column,
/// times as UTC text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRow {
    /// The project's id, empty for rows written by the plain CLI or before the table had projects.
    pub project: String,
    pub version: String,
    pub name: String,
    pub status: String,
    pub statements_done: i32,
    pub statements_total: i32,
    /// Hex.
    pub checksum: String,
    pub run_id: Option<String>,
    pub worker: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// Every row of the history table `table` (all projects), in version order; `None` when the table does
/// not exist. Reads only.
pub async fn show(conn: &mut TargetConnection, table: &HistoryTable) -> Result<Option<Vec<ShownRow>>, TargetError> {
    if !exists(conn, table).await? {
        return Ok(None);
    }
    let engine = conn.engine();
    let name = table.name(engine);
    let sql = |project: &str| match engine {
        Engine::Postgres => format!(
            "SELECT {project}, version, name, encode(checksum, 'hex'), status, statements_done, statements_total, \
             run_id, worker, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), error FROM {name}"
        ),
        Engine::Mysql => format!(
            "SELECT {project}, version, name, LOWER(HEX(checksum)), status, statements_done, statements_total, \
             run_id, worker, DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%sZ'), \
             DATE_FORMAT(finished_at, '%Y-%m-%dT%H:%i:%sZ'), error FROM {name}"
        ),
    };
    let mut rows = match read_shown(conn, sql("project")).await {
        // A table from before projects had their own rows.
        Err(e) if lacks_project_column(&e) => read_shown(conn, sql("''")).await?,
        other => other?,
    };
    rows.sort_by(|a, b| match (VersionKey::parse(a.version.as_str()), VersionKey::parse(b.version.as_str())) {
        (Ok(x), Ok(y)) => (&a.project, x).cmp(&(&b.project, y)),
        _ => (&a.project, &a.version).cmp(&(&b.project, &b.version)),
    });
    Ok(Some(rows))
}

async fn read_shown(conn: &mut TargetConnection, sql: String) -> Result<Vec<ShownRow>, TargetError> {
    let rows = match conn.session_mut() {
        Session::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(c)
            .await
            .and_then(|rows| rows.iter().map(shown_from).collect::<Result<Vec<_>, _>>()),
        Session::Mysql { conn: c, .. } => sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(c)
            .await
            .and_then(|rows| rows.iter().map(shown_from).collect::<Result<Vec<_>, _>>()),
    };
    rows.map_err(TargetError::from_sqlx)
}

fn shown_from<R: Row>(row: &R) -> Result<ShownRow, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(ShownRow {
        project: row.try_get(0)?,
        version: row.try_get(1)?,
        name: row.try_get(2)?,
        checksum: row.try_get(3)?,
        status: row.try_get(4)?,
        statements_done: row.try_get(5)?,
        statements_total: row.try_get(6)?,
        run_id: row.try_get(7)?,
        worker: row.try_get(8)?,
        started_at: row.try_get(9)?,
        finished_at: row.try_get(10)?,
        error: row.try_get(11)?,
    })
}
