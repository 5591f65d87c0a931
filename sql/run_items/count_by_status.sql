SELECT status, count(*) AS "count!" FROM run_items WHERE run_id = $1 GROUP BY status
