-- Runs with waves left without their next step for $1 seconds: a wave over its failure budget not yet
-- halted, or an ended wave whose successor starts by itself not yet started (the worker that ended the
-- wave's last item died before moving it on). The caller takes the step, which re-checks under the row lock.
SELECT r.id
FROM runs r
WHERE r.status = 'running' AND r.wave_count > 1
  AND r.updated_at < now() - make_interval(secs => $1)
  AND ((r.wave_failed > r.wave_failures_allowed
        AND (r.current_wave + 1 < r.wave_count
             OR EXISTS (SELECT 1 FROM run_items p WHERE p.run_id = r.id AND p.status = 'pending')))
       OR (r.wave_open <= 0 AND r.advance = 'auto' AND r.current_wave + 1 < r.wave_count))
ORDER BY r.updated_at
LIMIT 100
