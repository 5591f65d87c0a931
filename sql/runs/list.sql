-- Runs, newest first (ids are time-ordered v7 uuids), with optional filters; $1 is the last id of the
-- previous page.
SELECT id, project_id, content_checksum, revision, retry_of, direction, environment_id, db_set_id, kind, db_target_id, adopt_from, adopt_table, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at, risk, lint_override, lint_override_by FROM runs
WHERE ($1::uuid IS NULL OR id < $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::uuid IS NULL OR environment_id = $3)
  AND ($4::uuid IS NULL OR requested_by = $4)
  AND ($5::timestamptz IS NULL OR created_at >= $5)
  AND ($6::timestamptz IS NULL OR created_at < $6)
ORDER BY id DESC
LIMIT $7
