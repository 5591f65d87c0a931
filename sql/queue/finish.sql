-- Ends item $1 (token $2) with status $3, only while its lease is held, and gives its slot back to the run.
-- Returns the run's id, failure policy and how many of its items are still held; no row: the lease was
-- taken over and nothing changed.
WITH item AS (
    UPDATE run_items
    SET status = $3,
        finished_at = now(),
        duration_ms = $4,
        error_code = $5,
        error_message = $6,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    WHERE id = $1 AND fencing_token = $2 AND status = 'running'
    RETURNING run_id
)
UPDATE runs r
SET running_items = r.running_items - 1, updated_at = now()
FROM item
WHERE r.id = item.run_id
RETURNING r.id, r.failure_policy, r.running_items
