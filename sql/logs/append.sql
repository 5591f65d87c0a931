-- Appends a line after the item's last one.
INSERT INTO run_item_logs (run_item_id, seq, level, message, version_key, statement_index, duration_ms, rows_affected)
SELECT $1, COALESCE(max(seq) + 1, 0), $2, $3, $4, $5, $6, $7
FROM run_item_logs WHERE run_item_id = $1
RETURNING id, run_item_id, seq, level, message, version_key, statement_index, duration_ms, rows_affected, created_at
