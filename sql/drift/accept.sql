-- Accepts target $1's schema as last checked as its new baseline, by admin $2 at $3. No row: nothing was
-- checked yet.
UPDATE target_schemas
SET baseline = checked, baseline_at = $3, baseline_run = NULL, accepted_by = $2, differences = '[]',
    drifted_since = NULL
WHERE db_target_id = $1 AND checked IS NOT NULL
RETURNING db_target_id
