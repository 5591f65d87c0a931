-- The targets of run $1 whose items did not finish: failed, cancelled or never run (a retry's targets).
SELECT db_target_id FROM run_items WHERE run_id = $1 AND status IN ('failed', 'cancelled', 'pending') ORDER BY ordinal
