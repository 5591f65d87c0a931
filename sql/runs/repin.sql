-- Re-pins a run that has not started to new content (a refresh after an edit): a new content checksum and
-- revision, status $3 (awaiting approval, or approved where the environment needs none). Decisions on the
-- earlier revision stay on record but no longer count; the SQL review is that of the new content ($4 risk,
-- $5 findings), and an admin's override of the old content's review no longer holds. The versions are
-- replaced by the caller.
UPDATE runs
SET content_checksum = $2, revision = revision + 1, status = $3, risk = $4, review = $5, lint_override = NULL,
    lint_override_by = NULL, updated_at = now()
WHERE id = $1 AND status IN ('awaiting_approval', 'approved')
RETURNING id, project_id, content_checksum, revision, retry_of, direction, environment_id, db_set_id, kind, db_target_id, adopt_from, adopt_table, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at, risk, lint_override, lint_override_by
