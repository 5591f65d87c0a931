SELECT run_item_id, seq, level, message, version_key, statement_index, duration_ms, rows_affected, created_at FROM run_item_logs
WHERE run_item_id = $1 AND ($2::integer IS NULL OR seq > $2)
ORDER BY seq
LIMIT $3
