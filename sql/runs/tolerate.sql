-- Continues halted run $1: its current wave's failures so far are tolerated (recorded on the wave), and
-- claims take its items again. Returns the wave, its failures and its open items; no row: not halted.
WITH r AS (
    SELECT id, current_wave, wave_failed FROM runs WHERE id = $1 AND status = 'halted' FOR UPDATE
),
wave AS (
    UPDATE run_waves w
    SET tolerated_failures = GREATEST(r.wave_failed - w.max_failures, 0)
    FROM r
    WHERE w.run_id = r.id AND w.wave = r.current_wave
    RETURNING w.wave
)
UPDATE runs u
SET status = 'running', wave_failures_allowed = u.wave_failed, updated_at = now()
FROM r
WHERE u.id = r.id
RETURNING u.current_wave, u.wave_failed, u.wave_open
