//! Audit rows as stored. The `audit` crate owns what an event means and how the chain hash is computed;
//! this module only reads and appends rows, and serializes appends so the chain stays linear.

use chrono::{DateTime, Utc};
use domain::enums::ActorKind;
use domain::ids::UserId;
use uuid::Uuid;

use crate::convert::{digest32, parse};
use crate::{Page, PageRequest, PgConnection, PgTransaction, StorageError, StorageResult};

/// What an audit row says: everything its hash covers besides the link to the previous row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor_user_id: Option<UserId>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How a row's hash was computed (the `audit` crate owns what each layout means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainLayout {
    /// 1: an unkeyed SHA-256 (rows written before the chain was keyed).
    Unkeyed,
    /// 2: an HMAC-SHA256 under the audit chain key.
    Keyed,
}

impl ChainLayout {
    fn as_i16(self) -> i16 {
        match self {
            ChainLayout::Unkeyed => 1,
            ChainLayout::Keyed => 2,
        }
    }

    fn from_i16(value: i16) -> StorageResult<Self> {
        match value {
            1 => Ok(ChainLayout::Unkeyed),
            2 => Ok(ChainLayout::Keyed),
            _ => Err(StorageError::Corrupt("audit_events.chain_layout: unknown layout".into())),
        }
    }
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
    pub prev_hash: Option<[u8; 32]>,
    pub hash: [u8; 32],
    pub layout: ChainLayout,
}

/// An audit row to append; `prev_hash`, `hash` and `layout` are decided by the `audit` crate.
#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    pub entry: AuditEntry,
    pub prev_hash: Option<[u8; 32]>,
    pub hash: [u8; 32],
    pub layout: ChainLayout,
}

/// The newest row of the chain: its id (the chain's sequence number), hash and layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub id: i64,
    pub hash: [u8; 32],
    pub layout: ChainLayout,
}

struct Row {
    id: i64,
    occurred_at: DateTime<Utc>,
    actor_kind: String,
    actor_user_id: Option<Uuid>,
    actor_label: String,
    action: String,
    object_type: String,
    object_id: Option<String>,
    details: serde_json::Value,
    ip: Option<String>,
    user_agent: Option<String>,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
    chain_layout: i16,
}

impl TryFrom<Row> for AuditRecord {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(AuditRecord {
            id: row.id,
            entry: AuditEntry {
                occurred_at: row.occurred_at,
                actor_kind: parse("audit_events.actor_kind", &row.actor_kind)?,
                actor_user_id: row.actor_user_id.map(UserId::from_uuid),
                actor_label: row.actor_label,
                action: row.action,
                object_type: row.object_type,
                object_id: row.object_id,
                details: row.details,
                ip: row.ip,
                user_agent: row.user_agent,
            },
            prev_hash: digest32("audit_events.prev_hash", row.prev_hash)?,
            hash: digest32("audit_events.hash", Some(row.hash))?
                .ok_or_else(|| StorageError::Corrupt("audit_events.hash: missing".into()))?,
            layout: ChainLayout::from_i16(row.chain_layout)?,
        })
    }
}

/// Takes the chain lock for the rest of the transaction and returns the last row (`None` for an empty
/// log). Appends by concurrent transactions wait here, so each sees the row the other wrote.
#[tracing::instrument(skip_all)]
pub async fn lock_chain_head(tx: &mut PgTransaction<'_>) -> StorageResult<Option<ChainHead>> {
    sqlx::query_file!("../../sql/audit/lock_chain.sql").execute(&mut **tx).await?;
    head(tx).await
}

/// The newest row of the chain as committed (`None` for an empty log).
#[tracing::instrument(skip_all)]
pub async fn head(conn: &mut PgConnection) -> StorageResult<Option<ChainHead>> {
    let Some(row) = sqlx::query_file!("../../sql/audit/last.sql").fetch_optional(conn).await? else {
        return Ok(None);
    };
    let hash = digest32("audit_events.hash", Some(row.hash))?
        .ok_or_else(|| StorageError::Corrupt("audit_events.hash: missing".into()))?;
    Ok(Some(ChainHead { id: row.id, hash, layout: ChainLayout::from_i16(row.chain_layout)? }))
}

/// The hash of row `id`, if there is such a row.
#[tracing::instrument(skip_all, fields(audit.id = id))]
pub async fn hash_at(conn: &mut PgConnection, id: i64) -> StorageResult<Option<[u8; 32]>> {
    let row = sqlx::query_file!("../../sql/audit/hash_at.sql", id).fetch_optional(conn).await?;
    row.map(|r| digest32("audit_events.hash", Some(r.hash))).transpose().map(Option::flatten)
}

/// Appends a row; call [`lock_chain_head`] first in the same transaction.
#[tracing::instrument(skip_all, fields(action = %new.entry.action))]
pub async fn append(tx: &mut PgTransaction<'_>, new: &NewAuditRecord) -> StorageResult<AuditRecord> {
    let entry = &new.entry;
    sqlx::query_file_as!(
        Row,
        "../../sql/audit/append.sql",
        entry.occurred_at,
        entry.actor_kind.as_str(),
        entry.actor_user_id.map(|u| u.as_uuid()),
        entry.actor_label,
        entry.action,
        entry.object_type,
        entry.object_id.as_deref(),
        entry.details,
        entry.ip.as_deref(),
        entry.user_agent.as_deref(),
        new.prev_hash.as_ref().map(|h| &h[..]),
        &new.hash[..],
        new.layout.as_i16(),
    )
    .fetch_one(&mut **tx)
    .await?
    .try_into()
}

/// Filters on the audit list; every field narrows it. `action` matches the action or its sub-actions
/// (`run` matches `run.approve`).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<UserId>,
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

/// Audit rows newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    page: &PageRequest<i64>,
) -> StorageResult<Page<AuditRecord, i64>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/audit/list.sql",
        page.after,
        filter.actor.map(|u| u.as_uuid()),
        filter.action.as_deref(),
        filter.object_type.as_deref(),
        filter.object_id.as_deref(),
        filter.from,
        filter.before,
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(AuditRecord::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |r| r.id))
}

/// Rows in chain order after `after_id` (0 for the start), for verification.
#[tracing::instrument(skip_all)]
pub async fn scan(conn: &mut PgConnection, after_id: i64, limit: u32) -> StorageResult<Vec<AuditRecord>> {
    let limit = PageRequest::<()>::first(limit).sql_limit();
    sqlx::query_file_as!(Row, "../../sql/audit/scan.sql", after_id, limit)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(AuditRecord::try_from)
        .collect()
}
