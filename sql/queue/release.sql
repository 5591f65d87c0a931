-- Gives item $1 (token $2) back to the queue, only while its lease is held: claimable again after $3
-- seconds (a retry's backoff; 0 when a stopping worker hands it back, which also takes back the attempt:
-- $4 = 1). If its run is cancelled, or stopping after a failure (a run without waves under
-- `stop_on_first_failure`), the item is cancelled instead; in a halted run it waits, pending. Its slot goes
-- back to the run by its leaving `running` (see claim.sql). No row: the lease was not held.
WITH item AS (
    UPDATE run_items i
    SET status = CASE WHEN stopping.yes THEN 'cancelled' ELSE 'pending' END,
        finished_at = CASE WHEN stopping.yes THEN now() END,
        not_before = CASE WHEN stopping.yes THEN NULL ELSE now() + make_interval(secs => $3) END,
        attempts = GREATEST(i.attempts - $4, 0),
        error_code = $5,
        error_message = $6,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    FROM (
        SELECT (r.status = 'cancelled'
                OR (r.failure_policy = 'stop_on_first_failure' AND r.wave_count = 1
                    AND EXISTS (SELECT 1 FROM run_items f WHERE f.run_id = r.id AND f.status = 'failed'))) AS yes
        FROM run_items x JOIN runs r ON r.id = x.run_id
        WHERE x.id = $1
    ) AS stopping
    WHERE i.id = $1 AND i.fencing_token = $2 AND i.status = 'running'
    RETURNING i.run_id, i.status
)
SELECT item.run_id AS id, item.status AS "item_status!"
FROM item
