//! Per-item execution logs: ordered lines, one or more per statement.

use chrono::{DateTime, Utc};
use domain::ids::RunItemId;
use domain::model::{NewLogLine, RunItemLog};
use uuid::Uuid;

use crate::convert::{opt_unsigned, parse, to_i32, to_i64, unsigned};
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

/// Log messages longer than this are cut (the column's CHECK allows 8000 characters).
pub const MAX_MESSAGE_CHARS: usize = 8000;

struct Row {
    run_item_id: Uuid,
    seq: i32,
    level: String,
    message: String,
    version_key: Option<String>,
    statement_index: Option<i32>,
    duration_ms: Option<i64>,
    rows_affected: Option<i64>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for RunItemLog {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(RunItemLog {
            run_item_id: RunItemId::from_uuid(row.run_item_id),
            seq: unsigned("run_item_logs.seq", row.seq)?,
            level: parse("run_item_logs.level", &row.level)?,
            message: row.message,
            version_key: row.version_key,
            statement_index: opt_unsigned("run_item_logs.statement_index", row.statement_index)?,
            duration_ms: opt_unsigned("run_item_logs.duration_ms", row.duration_ms)?,
            rows_affected: opt_unsigned("run_item_logs.rows_affected", row.rows_affected)?,
            created_at: row.created_at,
        })
    }
}

/// Appends a line to an item's log (messages are cut to [`MAX_MESSAGE_CHARS`]).
#[tracing::instrument(skip_all, fields(item.id = %item))]
pub async fn append(conn: &mut PgConnection, item: RunItemId, line: &NewLogLine) -> StorageResult<RunItemLog> {
    let message: String = line.message.chars().take(MAX_MESSAGE_CHARS).collect();
    sqlx::query_file_as!(
        Row,
        "../../sql/logs/append.sql",
        item.as_uuid(),
        line.level.as_str(),
        message,
        line.version_key.as_deref(),
        line.statement_index.map(to_i32),
        line.duration_ms.map(to_i64),
        line.rows_affected.map(to_i64),
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

/// An item's log lines in order; the page key is the line's sequence number.
#[tracing::instrument(skip_all, fields(item.id = %item))]
pub async fn list(
    conn: &mut PgConnection,
    item: RunItemId,
    page: &PageRequest<u32>,
) -> StorageResult<Page<RunItemLog, u32>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(Row, "../../sql/logs/list.sql", item.as_uuid(), page.after.map(to_i32), limit)
        .fetch_all(conn)
        .await?;
    let items = rows.into_iter().map(RunItemLog::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |l| l.seq))
}
