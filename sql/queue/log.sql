-- Appends a log line for item $1 and records its progress, only while the lease (token $2) is held and
-- unexpired; returns the run's status, so a line written right after a statement also serves as the lease
-- check before the next one. $3 statements done (NULL: unchanged), $4 statements in total (NULL: unchanged).
-- No row: the lease is gone and nothing was written.
WITH item AS (
    UPDATE run_items
    SET statements_done = COALESCE($3, statements_done),
        statements_total = COALESCE($4, statements_total),
        updated_at = now()
    WHERE id = $1 AND fencing_token = $2 AND status = 'running' AND lease_expires_at > now()
    RETURNING id, run_id
),
line AS (
    INSERT INTO run_item_logs (run_item_id, seq, level, message, statement_index, duration_ms, rows_affected)
    SELECT item.id,
           (SELECT COALESCE(max(l.seq) + 1, 0) FROM run_item_logs l WHERE l.run_item_id = item.id),
           $5, $6, $7, $8, $9
    FROM item
    RETURNING run_item_id
)
SELECT r.status AS run_status
FROM line JOIN item ON item.id = line.run_item_id JOIN runs r ON r.id = item.run_id
