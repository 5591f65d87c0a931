//! Worker daemons: registration, heartbeats and shutdown.

use chrono::{DateTime, Utc};
use domain::ids::WorkerId;
use domain::model::Worker;
use uuid::Uuid;

use crate::convert::{parse, unsigned};
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    hostname: String,
    pid: i32,
    version: String,
    status: String,
    started_at: DateTime<Utc>,
    last_heartbeat_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Worker {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Worker {
            id: WorkerId::from_uuid(row.id),
            hostname: row.hostname,
            pid: unsigned("workers.pid", row.pid)?,
            version: row.version,
            status: parse("workers.status", &row.status)?,
            started_at: row.started_at,
            last_heartbeat_at: row.last_heartbeat_at,
            stopped_at: row.stopped_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(worker.id = %id, hostname))]
pub async fn register(
    conn: &mut PgConnection,
    id: WorkerId,
    hostname: &str,
    pid: u32,
    version: &str,
) -> StorageResult<Worker> {
    let pid = i32::try_from(pid).map_err(|_| StorageError::Invalid { constraint: "workers_pid_check".into() })?;
    sqlx::query_file_as!(Row, "../../sql/workers/register.sql", id.as_uuid(), hostname, pid, version)
        .fetch_one(conn)
        .await?
        .try_into()
}

/// Records that the worker is alive. A worker marked stopped gets [`StorageError::NotFound`]: it must not
/// carry on as if registered.
#[tracing::instrument(skip_all, fields(worker.id = %id))]
pub async fn heartbeat(conn: &mut PgConnection, id: WorkerId) -> StorageResult<Worker> {
    sqlx::query_file_as!(Row, "../../sql/workers/heartbeat.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("running worker"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(worker.id = %id))]
pub async fn stop(conn: &mut PgConnection, id: WorkerId) -> StorageResult<Worker> {
    sqlx::query_file_as!(Row, "../../sql/workers/stop.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("worker"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(worker.id = %id))]
pub async fn get(conn: &mut PgConnection, id: WorkerId) -> StorageResult<Worker> {
    sqlx::query_file_as!(Row, "../../sql/workers/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("worker"))?
        .try_into()
}

/// Workers newest first, optionally only those that heartbeat since `alive_since`.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &mut PgConnection,
    alive_since: Option<DateTime<Utc>>,
    page: &PageRequest<WorkerId>,
) -> StorageResult<Page<Worker, WorkerId>> {
    let limit = page.sql_limit();
    let rows =
        sqlx::query_file_as!(Row, "../../sql/workers/list.sql", alive_since, page.after.map(|w| w.as_uuid()), limit)
            .fetch_all(conn)
            .await?;
    let items = rows.into_iter().map(Worker::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |w| w.id))
}
