-- Starts run $1's next wave ($2: the person who continued it; NULL when it starts by itself, which only a
-- run whose waves advance `auto` does), only while the run is running, its current wave has no item left open and stayed within its failure budget, and
-- a next wave exists. Ends the current wave and readies the queue's counters for the next (its open
-- items counted from the claimable index). Returns the new wave and its open items; no row: no change.
WITH r AS (
    SELECT id, current_wave
    FROM runs
    WHERE id = $1 AND status = 'running' AND wave_open <= 0 AND wave_failed <= wave_failures_allowed
      AND current_wave + 1 < wave_count AND ($2::uuid IS NOT NULL OR advance = 'auto')
    FOR UPDATE
),
ended AS (
    UPDATE run_waves w
    SET ended_at = now()
    FROM r
    WHERE w.run_id = r.id AND w.wave = r.current_wave
    RETURNING w.wave
),
opened AS (
    UPDATE run_waves w
    SET started_at = now(), started_by = $2
    FROM r
    WHERE w.run_id = r.id AND w.wave = r.current_wave + 1
    RETURNING w.wave, w.first_ordinal, w.end_ordinal, w.max_failures
)
UPDATE runs u
SET current_wave = o.wave,
    wave_end = o.end_ordinal,
    wave_open = (SELECT count(*) FROM run_items i
                 WHERE i.run_id = u.id AND i.status = 'pending'
                   AND i.ordinal >= o.first_ordinal AND i.ordinal < o.end_ordinal)::integer,
    wave_failed = 0,
    wave_failures_allowed = o.max_failures,
    updated_at = now()
FROM opened o
WHERE u.id = $1
RETURNING u.current_wave, u.wave_open
