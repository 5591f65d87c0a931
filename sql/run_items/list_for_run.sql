SELECT id, run_id, db_target_id, ordinal, status, attempts, max_attempts, not_before, lease_owner, lease_expires_at, fencing_token, statements_done, statements_total, migrations_done, migrations_total, started_at, finished_at, duration_ms, error_code, error_message, created_at, updated_at FROM run_items
WHERE run_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::integer IS NULL OR ordinal > $3)
ORDER BY ordinal
LIMIT $4
