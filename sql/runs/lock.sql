-- The run, locked for a state change by this transaction.
SELECT id, project_id, content_checksum, revision, retry_of, direction, environment_id, db_set_id, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at FROM runs WHERE id = $1 FOR UPDATE
