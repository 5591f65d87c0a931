-- Sets environment $1's drift check interval ($2 seconds; NULL: off). Targets already fingerprinted are
-- checked from now on that schedule.
WITH env AS (
    UPDATE environments SET drift_check_every = $2, updated_at = now() WHERE id = $1 RETURNING id
)
UPDATE target_schemas s
SET next_check_at = CASE WHEN $2::integer IS NULL THEN NULL ELSE now() + make_interval(secs => $2::integer) END
FROM db_targets t, env
WHERE t.id = s.db_target_id AND t.environment_id = env.id
