-- A run's concurrency limit is kept by its claims alone, so an item's ending need not lock the run's row.
--
-- Until now every claim added to `runs.running_items` and every ending took one off, both under the run's
-- row lock: with a fleet in flight that row was the queue's hottest lock, and an ending waited for it
-- while the claims and endings ahead committed (`pg_stat_statements`: 14 ms an ending, 8.5 ms a claim at
-- 200 targets x 16 slots, nearly all of it waiting on the row and on the WAL flush of whoever held it).
--
-- Now only claims write the run's row. A claim counts the run's running items itself, in its statement's
-- snapshot, and adds the claims committed since that snapshot: `claims_made` grows by every item a claim
-- takes, the claim reads it both as of its snapshot and as the locked row has it now, and the difference
-- is what the snapshot could not see. Endings committed since only make the count too high, never too
-- low, so the limit holds. An ending locks the run's row only when it must change it: a run with waves
-- (its wave counters) and a failure that stops the run (it cancels pending items under the lock, as
-- claims take them under it).
ALTER TABLE runs ADD COLUMN claims_made bigint NOT NULL DEFAULT 0 CONSTRAINT runs_claims_made CHECK (claims_made >= 0);
ALTER TABLE runs DROP CONSTRAINT runs_running_items;
ALTER TABLE runs DROP COLUMN running_items;

-- A run's running items, counted by every claim.
CREATE INDEX run_items_running_idx ON run_items (run_id) WHERE status = 'running';
