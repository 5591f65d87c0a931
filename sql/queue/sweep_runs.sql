-- Ends runs whose items have all ended but which are still `running` $1 seconds after the last of them
-- ended (and after the run's own last change): the worker that ended the last item died between that
-- ending and the run's. Every item counted here
-- was already final in this statement's snapshot, and final items never change again, so a run is never
-- ended early; the row lock (SKIP LOCKED) keeps two sweepers from ending the same run.
UPDATE runs r
SET status = CASE WHEN EXISTS (SELECT 1 FROM run_items f WHERE f.run_id = r.id AND f.status = 'failed')
                  THEN 'failed' ELSE 'succeeded' END,
    finished_at = now(),
    updated_at = now()
WHERE r.id IN (
    SELECT s.id FROM runs s
    WHERE s.status = 'running'
      AND s.updated_at < now() - make_interval(secs => $1)
      AND NOT EXISTS (SELECT 1 FROM run_items o WHERE o.run_id = s.id AND o.status IN ('pending', 'running'))
      AND NOT EXISTS (SELECT 1 FROM run_items f
                      WHERE f.run_id = s.id AND f.finished_at >= now() - make_interval(secs => $1))
    ORDER BY s.updated_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED
)
  AND r.status = 'running'
RETURNING r.id, r.status
