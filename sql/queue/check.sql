-- Before each statement: is the lease (item $1, token $2) still held and unexpired, and what is the run's
-- status (a cancelled run stops its items at the next statement)? No row: the lease is gone.
SELECT r.status AS run_status
FROM run_items i JOIN runs r ON r.id = i.run_id
WHERE i.id = $1 AND i.fencing_token = $2 AND i.status = 'running' AND i.lease_expires_at > now()
