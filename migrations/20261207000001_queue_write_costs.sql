-- Cheaper per-item writes of the queue (issue 15), from `pg_stat_statements` and `perf` during
-- `cargo xtask bench fleet`: per target, the hub's database-server CPU beyond sqlx's was the tool database's
-- claim and ending of the item.
--
-- 1. The triggers that freeze what a run applies, does and was reviewed as fire only for an UPDATE that
--    names a column they guard. A claim and an ending each update the run's `running_items`, and each fired
--    all three PL/pgSQL functions (comparing the pinned review, a JSON document, every time). A change to a
--    guarded column must name it, so they refuse exactly what they refused before.
DROP TRIGGER runs_content_frozen ON runs;
CREATE TRIGGER runs_content_frozen BEFORE UPDATE OF content_checksum, project_id, revision ON runs
    FOR EACH ROW EXECUTE FUNCTION run_content_frozen();

DROP TRIGGER runs_action_frozen ON runs;
CREATE TRIGGER runs_action_frozen
    BEFORE UPDATE OF kind, db_target_id, db_set_id, adopt_from, adopt_table, recovery_resolution, seen_status,
                     seen_statements_done, seen_statements_total, seen_checksum, seen_error ON runs
    FOR EACH ROW EXECUTE FUNCTION run_action_frozen();

DROP TRIGGER runs_review_frozen ON runs;
CREATE TRIGGER runs_review_frozen BEFORE UPDATE OF risk, review, lint_override, lint_override_by ON runs
    FOR EACH ROW EXECUTE FUNCTION run_review_frozen();

-- 2. A log line no longer checks its item by a foreign key: the check ran once per line (about 90 lines
--    for a release of River's 7 migrations: 0.9 ms of the item's 2.6 ms ending, measured with pgbench).
--    Every statement that writes lines selects them from the item row it updates in the same statement,
--    fenced by the item's token (sql/queue/log.sql, finish.sql, sql/logs/append.sql), so a line never names
--    an item that does not exist; and items are never deleted (a finished record never changes).
ALTER TABLE run_item_logs DROP CONSTRAINT run_item_logs_run_item_id_fkey;

-- 3. Nor by an identity key of its own: lines are read and paged by item and sequence number, whose unique
--    constraint is the key (one index per line, not two; the identity was never shown or used).
ALTER TABLE run_item_logs DROP COLUMN id;
