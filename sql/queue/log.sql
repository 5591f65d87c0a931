-- Appends log lines for item $1 and records its progress, only while the lease (token $2) is held and
-- unexpired; returns the run's status, so a write right after a statement also serves as the lease check
-- before the next one. Progress: $3 migrations done, $4 migrations in total, $5 statements done (of the
-- current migration), $6 its statements in total (NULL: unchanged). The lines are the arrays $7 level,
-- $8 message, $9 version key, $10 statement index, $11 duration, $12 rows (possibly empty: a progress
-- update or a plain lease check). No row: the lease is gone and nothing was written.
WITH item AS (
    UPDATE run_items
    SET migrations_done = COALESCE($3, migrations_done),
        migrations_total = COALESCE($4, migrations_total),
        statements_done = COALESCE($5, statements_done),
        statements_total = COALESCE($6, statements_total),
        updated_at = now()
    WHERE id = $1 AND fencing_token = $2 AND status = 'running' AND lease_expires_at > now()
    RETURNING id, run_id
),
base AS (
    SELECT COALESCE(max(l.seq) + 1, 0) AS next
    FROM run_item_logs l WHERE l.run_item_id = $1
),
line AS (
    INSERT INTO run_item_logs (run_item_id, seq, level, message, version_key, statement_index, duration_ms,
                               rows_affected)
    SELECT item.id, base.next + (u.ord - 1)::integer, u.level, u.message, u.version_key, u.statement_index,
           u.duration_ms, u.rows_affected
    FROM item CROSS JOIN base
    CROSS JOIN unnest($7::text[], $8::text[], $9::text[], $10::integer[], $11::bigint[], $12::bigint[])
        WITH ORDINALITY AS u (level, message, version_key, statement_index, duration_ms, rows_affected, ord)
)
SELECT r.status AS run_status
FROM item JOIN runs r ON r.id = item.run_id
