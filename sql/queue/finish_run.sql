-- Ends run $1 when nothing of it is pending or running any more: `failed` if an item failed, else
-- `succeeded`. Called in the transaction that ended an item, which holds the run's row lock, so exactly one
-- caller sees the last item end. No row: the run goes on (or had already ended, e.g. cancelled).
UPDATE runs r
SET status = CASE WHEN EXISTS (SELECT 1 FROM run_items f WHERE f.run_id = r.id AND f.status = 'failed')
                  THEN 'failed' ELSE 'succeeded' END,
    finished_at = now(),
    updated_at = now()
WHERE r.id = $1
  AND r.status = 'running'
  AND r.running_items = 0
  AND NOT EXISTS (SELECT 1 FROM run_items o WHERE o.run_id = r.id AND o.status IN ('pending', 'running'))
RETURNING r.status
