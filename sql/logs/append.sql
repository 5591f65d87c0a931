-- Appends a line after the item's last one; no row when item $1 does not exist (lines are not checked by
-- a foreign key: every writer selects the item it writes for).
INSERT INTO run_item_logs (run_item_id, seq, level, message, version_key, statement_index, duration_ms, rows_affected)
SELECT i.id, (SELECT COALESCE(max(l.seq) + 1, 0) FROM run_item_logs l WHERE l.run_item_id = i.id), $2, $3, $4, $5,
       $6, $7
FROM run_items i WHERE i.id = $1
RETURNING run_item_id, seq, level, message, version_key, statement_index, duration_ms, rows_affected, created_at
