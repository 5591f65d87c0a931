-- Compare-and-set of a run's status: nothing happens unless the run is still in $2. The lifecycle
-- timestamps follow the new status; $4 is the acting user for execute and cancel.
UPDATE runs
SET status = $3,
    updated_at = now(),
    executed_by = CASE WHEN $3 = 'queued' THEN $4 ELSE executed_by END,
    cancelled_by = CASE WHEN $3 = 'cancelled' THEN $4 ELSE cancelled_by END,
    queued_at = CASE WHEN $3 = 'queued' THEN now() ELSE queued_at END,
    started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at = CASE WHEN $3 IN ('denied', 'succeeded', 'failed', 'cancelled') THEN now() ELSE NULL END
WHERE id = $1 AND status = $2
RETURNING id, project_id, content_checksum, revision, retry_of, direction, environment_id, db_set_id, kind, db_target_id, adopt_from, adopt_table, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at, risk, lint_override, lint_override_by
