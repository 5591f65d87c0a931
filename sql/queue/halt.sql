-- Halts run $1 when its current wave failed more targets than it tolerates: claims take nothing more of it
-- (items already running finish). The last wave halts only while it still has pending items: with none,
-- the run ends as failed like any other. Returns the wave and its failures; no row: nothing to halt (not
-- running, no waves, within budget, or nothing left to stop).
UPDATE runs r
SET status = 'halted', updated_at = now()
WHERE r.id = $1 AND r.status = 'running' AND r.wave_count > 1 AND r.wave_failed > r.wave_failures_allowed
  AND (r.current_wave + 1 < r.wave_count
       OR EXISTS (SELECT 1 FROM run_items p WHERE p.run_id = r.id AND p.status = 'pending'))
RETURNING current_wave, wave_failed, wave_failures_allowed
