-- Runs awaiting approval that $1 could decide: not requested by them and not yet decided by them for the
-- run's current revision (a refreshed run asks everyone again).
SELECT r.id, r.project_id, r.content_checksum, r.revision, r.retry_of, r.direction, r.environment_id, r.db_set_id, r.kind, r.db_target_id, r.adopt_from, r.adopt_table, r.recovery_resolution, r.seen_status, r.seen_statements_done, r.seen_statements_total, r.seen_checksum, r.seen_error, r.status, r.failure_policy, r.concurrency_limit, r.comment, r.requested_by, r.idempotency_key, r.executed_by, r.cancelled_by, r.created_at, r.updated_at, r.queued_at, r.started_at, r.finished_at, r.risk, r.lint_override, r.lint_override_by
FROM runs r
WHERE r.status = 'awaiting_approval' AND r.requested_by <> $1
  AND NOT EXISTS (SELECT 1 FROM approvals a
                  WHERE a.run_id = r.id AND a.approver_id = $1 AND a.run_revision = r.revision)
ORDER BY r.id DESC
LIMIT $2
