//! Approval decisions, each pinning the checksums of the content the approver saw.

use chrono::{DateTime, Utc};
use domain::ids::{ApprovalId, EnvironmentId, RunId, UserId, VersionId};
use domain::model::{Approval, NewApproval};
use uuid::Uuid;

use crate::convert::{parse, pinned};
use crate::{PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    run_id: Uuid,
    migration_version_id: Uuid,
    direction: String,
    environment_id: Uuid,
    approver_id: Uuid,
    decision: String,
    comment: String,
    checksum_algorithm: String,
    up_checksum: Vec<u8>,
    down_checksum: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Approval {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Approval {
            id: ApprovalId::from_uuid(row.id),
            run_id: RunId::from_uuid(row.run_id),
            version_id: VersionId::from_uuid(row.migration_version_id),
            direction: parse("approvals.direction", &row.direction)?,
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            approver: UserId::from_uuid(row.approver_id),
            decision: parse("approvals.decision", &row.decision)?,
            comment: row.comment,
            pinned: pinned(&row.checksum_algorithm, &row.up_checksum, row.down_checksum.as_deref())?,
            created_at: row.created_at,
        })
    }
}

/// Records a decision on a run. A second decision by the same approver is a
/// [`StorageError::Conflict`] on `approvals_one_decision_per_approver`.
#[tracing::instrument(skip_all, fields(run.id = %new.run_id, decision = %new.decision))]
pub async fn create(conn: &mut PgConnection, new: &NewApproval) -> StorageResult<Approval> {
    sqlx::query_file_as!(
        Row,
        "../../sql/approvals/create.sql",
        ApprovalId::new().as_uuid(),
        new.run_id.as_uuid(),
        new.approver.as_uuid(),
        new.decision.as_str(),
        new.comment,
        new.pinned.up.algorithm().as_str(),
        &new.pinned.up.digest()[..],
        new.pinned.down.as_ref().map(|d| &d.digest()[..]),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("run"))?
    .try_into()
}

/// Every decision on a run, oldest first.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn list_for_run(conn: &mut PgConnection, run: RunId) -> StorageResult<Vec<Approval>> {
    sqlx::query_file_as!(Row, "../../sql/approvals/list_for_run.sql", run.as_uuid())
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Approval::try_from)
        .collect()
}
