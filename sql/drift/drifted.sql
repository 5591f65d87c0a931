-- The drifted targets, longest first, with their environment (at most $1).
SELECT s.db_target_id, t.name AS target, e.name AS environment, s.drifted_since AS "drifted_since!",
       jsonb_array_length(s.differences) AS "objects!"
FROM target_schemas s
JOIN db_targets t ON t.id = s.db_target_id
JOIN environments e ON e.id = t.environment_id
WHERE s.drifted_since IS NOT NULL
ORDER BY s.drifted_since
LIMIT $1
