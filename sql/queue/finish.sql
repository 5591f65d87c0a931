-- Ends item $1 (token $2) with status $3, only while its lease is held, and, when the item failed under
-- `stop_on_first_failure` in a run without waves, cancels the run's pending items (a run with waves counts
-- its current wave's open and failed items instead, and halts): one statement, so it commits on its own.
-- Its slot goes back to the run by the item's leaving `running` (claims count the running items; see
-- claim.sql). The run's row is locked only when this ending changes it (a run with waves, or a failure that
-- stops the run; claims lock that row first, so none can take an item this cancels); a plain ending
-- waits for no other. The item's last log lines and progress travel with it, as in log.sql: $7 migrations
-- done, $8 migrations in total, $9 statements done, $10 statements in total (NULL: unchanged), and the line
-- arrays $11 level, $12 message, $13 version key, $14 statement index, $15 duration, $16 rows (possibly
-- empty). Returns the run's id, how many pending items were cancelled and whether any item is still
-- pending (an EXISTS, not a count: a count would read every pending item at every ending, quadratic in the
-- run's size); no row: the lease was taken over and nothing changed. For a run with waves also its current
-- wave's open items and whether the wave is over its failure budget, so the caller knows when to move the
-- waves on.
WITH item AS (
    UPDATE run_items
    SET status = $3,
        finished_at = now(),
        duration_ms = $4,
        error_code = $5,
        error_message = $6,
        migrations_done = COALESCE($7, migrations_done),
        migrations_total = COALESCE($8, migrations_total),
        statements_done = COALESCE($9, statements_done),
        statements_total = COALESCE($10, statements_total),
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    WHERE id = $1 AND fencing_token = $2 AND status = 'running'
    RETURNING id, run_id
),
base AS (
    SELECT COALESCE(max(l.seq) + 1, 0) AS next
    FROM run_item_logs l WHERE l.run_item_id = $1
),
line AS (
    INSERT INTO run_item_logs (run_item_id, seq, level, message, version_key, statement_index, duration_ms,
                               rows_affected)
    SELECT item.id, base.next + (u.ord - 1)::integer, u.level, u.message, u.version_key, u.statement_index,
           u.duration_ms, u.rows_affected
    FROM item CROSS JOIN base
    CROSS JOIN unnest($11::text[], $12::text[], $13::text[], $14::integer[], $15::bigint[], $16::bigint[])
        WITH ORDINALITY AS u (level, message, version_key, statement_index, duration_ms, rows_affected, ord)
),
run AS (
    UPDATE runs r
    SET wave_open = CASE WHEN r.wave_count > 1 THEN r.wave_open - 1 ELSE r.wave_open END,
        wave_failed = CASE WHEN r.wave_count > 1 AND $3 = 'failed' THEN r.wave_failed + 1 ELSE r.wave_failed END,
        updated_at = now()
    FROM item
    WHERE r.id = item.run_id
      AND (r.wave_count > 1 OR ($3 = 'failed' AND r.failure_policy = 'stop_on_first_failure'))
    RETURNING r.id, r.failure_policy, r.wave_count, r.wave_open,
              r.wave_failed > r.wave_failures_allowed AS over_budget
),
cancelled AS (
    UPDATE run_items p
    SET status = 'cancelled', finished_at = now(), updated_at = now()
    FROM run
    WHERE p.run_id = run.id AND p.status = 'pending'
      AND $3 = 'failed' AND run.failure_policy = 'stop_on_first_failure' AND run.wave_count = 1
    RETURNING p.id
)
SELECT item.run_id AS id, (SELECT count(*) FROM cancelled) AS "cancelled!",
       -- Items still to run (as this statement's snapshot saw them, unless it cancelled them all): while
       -- there are some, one of their endings ends the run and this one need not try.
       (NOT EXISTS (SELECT 1 FROM cancelled)
        AND EXISTS (SELECT 1 FROM run_items o WHERE o.run_id = item.run_id AND o.status = 'pending')) AS "pending_left!",
       COALESCE(run.wave_count > 1, false) AS "waved!", COALESCE(run.wave_open, 0) AS "wave_open!",
       COALESCE(run.over_budget, false) AS "over_budget!"
FROM item LEFT JOIN run ON run.id = item.run_id
