//! Approval decisions, each pinning the content checksum and the run revision the approver saw.

use chrono::{DateTime, Utc};
use domain::checksum::ChecksumAlgorithm;
use domain::ids::{ApprovalId, EnvironmentId, RunId, UserId};
use domain::model::{Approval, NewApproval};
use uuid::Uuid;

use crate::convert::{checksum, parse, unsigned};
use crate::{PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    run_id: Uuid,
    run_revision: i32,
    direction: String,
    environment_id: Uuid,
    approver_id: Uuid,
    decision: String,
    comment: String,
    content_checksum: Vec<u8>,
    carried_from: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Approval {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Approval {
            id: ApprovalId::from_uuid(row.id),
            run_id: RunId::from_uuid(row.run_id),
            revision: unsigned("approvals.run_revision", row.run_revision)?,
            direction: parse("approvals.direction", &row.direction)?,
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            approver: UserId::from_uuid(row.approver_id),
            decision: parse("approvals.decision", &row.decision)?,
            comment: row.comment,
            pinned: checksum("approvals.content_checksum", ChecksumAlgorithm::Sha256Normalized, &row.content_checksum)?,
            carried_from: row.carried_from.map(ApprovalId::from_uuid),
            created_at: row.created_at,
        })
    }
}

/// Records a decision on a run, for its current revision. A second decision by the same approver on the
/// same revision is a [`StorageError::Conflict`] on `approvals_one_decision_per_approver`.
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
        &new.pinned.digest()[..],
        new.carried_from.map(|a| a.as_uuid()),
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
