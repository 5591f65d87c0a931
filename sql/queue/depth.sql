-- Queue depth for metrics: items waiting to be claimed, of runs that are queued or running.
SELECT count(*) AS "depth!"
FROM run_items i JOIN runs r ON r.id = i.run_id
WHERE i.status = 'pending' AND r.status IN ('queued', 'running')
