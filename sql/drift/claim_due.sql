-- Takes up to $1 targets whose drift check is due at $2 (the worker's clock), in environments that check,
-- and sets their next check (their environment's interval on): a worker that dies mid-check leaves it to
-- the next. Returns each target and its baseline.
WITH due AS (
    SELECT s.db_target_id, e.drift_check_every
    FROM target_schemas s
    JOIN db_targets t ON t.id = s.db_target_id
    JOIN environments e ON e.id = t.environment_id
    WHERE s.next_check_at <= $2 AND e.drift_check_every IS NOT NULL
    ORDER BY s.next_check_at
    LIMIT $1
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE target_schemas s
SET next_check_at = $2 + make_interval(secs => due.drift_check_every)
FROM due
WHERE s.db_target_id = due.db_target_id
RETURNING s.db_target_id, s.baseline, s.drifted_since IS NOT NULL AS "drifted!"
