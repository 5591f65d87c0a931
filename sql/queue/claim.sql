-- Claims up to $3 items of one run for worker $1 with a lease of $2 seconds, in one statement, at $4 (the
-- worker's clock) as far as maintenance windows and a run's schedule are concerned: nothing of a run is
-- claimed before its `not_before`, nor while its environment has windows and none is open (a cancelled
-- run's expired items are taken back regardless, to be ended). Each claimed item carries when the open
-- window closes (NULL: no window), so its worker stops after the migration that runs past it, and its
-- target's row as it is now (the worker connects with it: no read of its own).
--
-- The run's row is locked first, so claims of one run take turns and its concurrency limit holds across
-- workers. Endings do not write that row (see migrations/20261209000001_slots_by_claims.sql): the run's
-- items in flight are its running items as this statement's snapshot counts them, plus the items claims
-- took since that snapshot, which is `claims_made` on the locked row (FOR UPDATE re-reads its newest
-- version after any wait) less `claims_made` as the snapshot has it. Endings committed since the snapshot
-- only make that count too high. The items are then taken with SKIP LOCKED. Items whose lease expired
-- (their worker died or stalled) are taken back first, even from a cancelled or halted run: the new owner
-- finds out from the target's lock and history what happened. Pending items are taken only from the run's
-- current wave (ordinals below `wave_end`) and only while that wave is within its failure budget (a run
-- without waves has no bound on either).
--
-- The pending items are read in `run_items_claimable_idx` order from the run's first, and the read stops
-- at the items it takes: the run is a value there (a join with it would read all its pending items and
-- sort them, at every claim; `EXPLAIN ANALYZE`, 100 pending: 0.09 ms against 0.01 ms, growing with the run).
--
-- The window functions are SQL functions with subqueries, which the planner cannot inline: each call
-- plans its body again. An environment without windows (most) is told by an index probe in this plan,
-- and the functions are called only for one that has some (`OR` and `CASE` stop at the probe).
WITH run AS (
    SELECT r.id, r.status, r.environment_id, r.wave_end, r.wave_failed <= r.wave_failures_allowed AS within_budget,
           r.concurrency_limit
               - (SELECT count(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'running')::integer
               - (r.claims_made - (SELECT s.claims_made FROM runs s WHERE s.id = r.id))::integer AS free
    FROM runs r
    WHERE (r.status = 'cancelled'
           OR ((r.not_before IS NULL OR r.not_before <= $4)
               AND (NOT EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.environment_id = r.environment_id)
                    OR maintenance_window_open(r.environment_id, $4))))
      AND ((r.status IN ('queued', 'running')
           AND (SELECT count(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'running')
               + (r.claims_made - (SELECT s.claims_made FROM runs s WHERE s.id = r.id)) < r.concurrency_limit
           AND r.wave_failed <= r.wave_failures_allowed
           AND EXISTS (SELECT 1 FROM run_items p
                       WHERE p.run_id = r.id AND p.status = 'pending' AND p.ordinal < r.wave_end
                         AND (p.not_before IS NULL OR p.not_before <= now())))
       OR (r.status IN ('queued', 'running', 'cancelled', 'halted')
           AND EXISTS (SELECT 1 FROM run_items e
                       WHERE e.run_id = r.id AND e.status = 'running' AND e.lease_expires_at <= now())))
    ORDER BY r.queued_at NULLS LAST, r.id
    LIMIT 1
    FOR UPDATE OF r
),
expired AS (
    SELECT i.id
    FROM run_items i JOIN run ON i.run_id = run.id
    WHERE i.status = 'running' AND i.lease_expires_at <= now()
    ORDER BY i.ordinal
    LIMIT $3
    FOR UPDATE OF i SKIP LOCKED
),
pending AS (
    SELECT i.id
    FROM run_items i
    WHERE i.run_id = (SELECT run.id FROM run WHERE run.status IN ('queued', 'running') AND run.within_budget)
      AND i.status = 'pending'
      AND i.ordinal < (SELECT run.wave_end FROM run)
      AND (i.not_before IS NULL OR i.not_before <= now())
    ORDER BY i.ordinal
    LIMIT (SELECT GREATEST(LEAST(run.free, $3 - (SELECT count(*) FROM expired)), 0) FROM run)
    FOR UPDATE OF i SKIP LOCKED
),
counted AS (
    UPDATE runs r
    SET claims_made = r.claims_made + (SELECT count(*) FROM pending), updated_at = now()
    FROM run
    WHERE r.id = run.id AND EXISTS (SELECT 1 FROM pending)
    RETURNING r.id
),
claimed AS (
    UPDATE run_items i
    SET status = 'running',
        lease_owner = $1,
        lease_expires_at = now() + make_interval(secs => $2),
        fencing_token = i.fencing_token + 1,
        attempts = i.attempts + 1,
        not_before = NULL,
        started_at = COALESCE(i.started_at, now()),
        updated_at = now()
    WHERE i.id IN (SELECT id FROM expired UNION ALL SELECT id FROM pending)
    RETURNING i.id, i.run_id, i.db_target_id, i.ordinal, i.attempts, i.max_attempts, i.fencing_token, i.statements_done
)
SELECT c.id, c.run_id, c.db_target_id, c.ordinal, c.attempts, c.max_attempts, c.fencing_token,
       c.statements_done, run.status AS run_status,
       CASE WHEN EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.environment_id = run.environment_id)
            THEN maintenance_window_end(run.environment_id, $4) END AS window_closes_at,
       t.environment_id AS target_environment_id, t.name AS target_name, t.engine AS target_engine,
       t.host AS target_host, t.port AS target_port, t.database_name AS target_database_name,
       t.schema_name AS target_schema_name, t.username AS target_username, t.secret_key_id AS target_secret_key_id,
       t.secret_ref AS target_secret_ref, t.tls_mode AS target_tls_mode, t.labels AS target_labels,
       t.variables AS target_variables, t.created_at AS target_created_at, t.updated_at AS target_updated_at
FROM claimed c CROSS JOIN run JOIN db_targets t ON t.id = c.db_target_id
ORDER BY c.ordinal
