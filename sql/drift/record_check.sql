-- Records target $1's check at $2: fingerprint $3 and its differences from the baseline $4 (an empty
-- array: none). Returns whether it drifted and whether it had before (so a new drift is reported once).
WITH before AS (SELECT drifted_since IS NOT NULL AS was FROM target_schemas WHERE db_target_id = $1)
UPDATE target_schemas
SET checked = $3, checked_at = $2, differences = $4,
    drifted_since = CASE WHEN $4 = '[]'::jsonb THEN NULL ELSE COALESCE(drifted_since, $2) END
WHERE db_target_id = $1
RETURNING drifted_since IS NOT NULL AS "drifted!", (SELECT was FROM before) AS "was_drifted!"
