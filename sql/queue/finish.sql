-- Ends item $1 (token $2) with status $3, only while its lease is held, gives its slot back to the run and,
-- when the item failed under `stop_on_first_failure`, cancels the run's pending items: one statement, so
-- it commits on its own and holds the run's row lock only while it runs (claims lock that row first, so
-- none can take an item this cancels). Returns the run's id, how many of its items are still held, and
-- how many pending items were cancelled; no row: the lease was taken over and nothing changed.
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
),
run AS (
    UPDATE runs r
    SET running_items = r.running_items - 1, updated_at = now()
    FROM item
    WHERE r.id = item.run_id
    RETURNING r.id, r.failure_policy, r.running_items
),
cancelled AS (
    UPDATE run_items p
    SET status = 'cancelled', finished_at = now(), updated_at = now()
    FROM run
    WHERE p.run_id = run.id AND p.status = 'pending'
      AND $3 = 'failed' AND run.failure_policy = 'stop_on_first_failure'
    RETURNING p.id
)
SELECT run.id, run.running_items, (SELECT count(*) FROM cancelled) AS "cancelled!"
FROM run
