-- Moves a run that has not started onto a newer version of its migration (an edit after the request).
-- Its status goes back to $3 (awaiting approval, or approved where the environment needs none): decisions on
-- the old version stay on record but no longer count.
UPDATE runs
SET migration_version_id = $2, status = $3, updated_at = now()
WHERE id = $1 AND status IN ('awaiting_approval', 'approved')
RETURNING id, migration_version_id, direction, environment_id, db_set_id, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at
