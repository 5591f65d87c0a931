-- A run (a release, baseline, adoption or recovery): its project, pinned content checksum and options. Its versions follow in
-- create_versions.sql and its items in create_items.sql, in the same transaction.
INSERT INTO runs (id, project_id, content_checksum, retry_of, direction, environment_id, db_set_id, kind, db_target_id, adopt_from, adopt_table, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error, status,
                  failure_policy, concurrency_limit, comment, requested_by, idempotency_key, finished_at,
                  risk, review, lint_override, lint_override_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, NULL,
        $24, $25, $26, $27)
RETURNING id, project_id, content_checksum, revision, retry_of, direction, environment_id, db_set_id, kind, db_target_id, adopt_from, adopt_table, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at, risk, lint_override, lint_override_by
