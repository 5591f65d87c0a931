SELECT status, count(*) AS "count!" FROM runs GROUP BY status
