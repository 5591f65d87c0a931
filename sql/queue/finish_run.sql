-- Ends run $1 when nothing of it is pending or running any more: `failed` if an item failed, else
-- `succeeded`. Called after an item's ending committed (when it saw no item pending), in a statement of its
-- own whose snapshot sees every ending committed before it: of concurrent last endings, the one that
-- commits last sees all the others; of several callers the row lock lets exactly one
-- change the row (the others re-check `status = 'running'` and match nothing). No row: the run goes on
-- (or had already ended, e.g. cancelled).
UPDATE runs r
SET status = CASE WHEN EXISTS (SELECT 1 FROM run_items f WHERE f.run_id = r.id AND f.status = 'failed')
                  THEN 'failed' ELSE 'succeeded' END,
    finished_at = now(),
    updated_at = now()
WHERE r.id = $1
  AND r.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM run_items o WHERE o.run_id = r.id AND o.status IN ('pending', 'running'))
RETURNING r.status
