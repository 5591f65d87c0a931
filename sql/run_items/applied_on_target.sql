-- Per migration of any project, where the hub's runs left it on target $1: the newest finished item that
-- ended it (a release applied or reverted the first `migrations_done` versions it pins, and the one after
-- them failed when the item failed; a baseline, adoption or recovery that succeeded recorded what it
-- pins). `state`: applied, reverted, failed, recorded (baseline), adopted, or rolled_back (a recovery that
-- marked it rolled back). From the hub's records: the target's own history tables are what the page's
-- "Read history" shows.
SELECT DISTINCT ON (mv.migration_id)
       p.id AS project_id, p.name AS project_name, mv.migration_id, m.version_key, m.name AS migration_name,
       mv.version_no, r.id AS run_id, i.finished_at AS "finished_at!",
       CASE
           WHEN r.kind = 'release' AND rm.position = i.migrations_done THEN 'failed'
           WHEN r.kind = 'release' AND r.direction = 'down' THEN 'reverted'
           WHEN r.kind = 'release' THEN 'applied'
           WHEN r.kind = 'baseline' THEN 'recorded'
           WHEN r.kind = 'adopt' THEN 'adopted'
           WHEN r.recovery_resolution = 'mark_rolled_back' THEN 'rolled_back'
           ELSE 'applied'
       END AS "state!"
FROM run_items i
JOIN runs r ON r.id = i.run_id
JOIN run_migrations rm ON rm.run_id = r.id
JOIN migration_versions mv ON mv.id = rm.migration_version_id
JOIN migrations m ON m.id = mv.migration_id
JOIN projects p ON p.id = m.project_id
WHERE i.db_target_id = $1
  AND i.finished_at IS NOT NULL
  AND CASE WHEN r.kind = 'release'
           THEN rm.position < i.migrations_done OR (i.status = 'failed' AND rm.position = i.migrations_done)
           ELSE i.status IN ('succeeded', 'skipped') END
ORDER BY mv.migration_id, i.finished_at DESC, rm.position DESC
