-- Per target, where the hub's runs left migration $1 on it: the newest finished item that ended it, as in
-- applied_on_target.sql (same states). Targets no run of the migration reached are not listed.
SELECT DISTINCT ON (i.db_target_id)
       t.id AS target_id, t.name AS target_name, e.name AS environment_name, mv.version_no, r.id AS run_id,
       i.finished_at AS "finished_at!",
       CASE
           WHEN r.kind = 'release' AND rm.position = i.migrations_done THEN 'failed'
           WHEN r.kind = 'release' AND r.direction = 'down' THEN 'reverted'
           WHEN r.kind = 'release' THEN 'applied'
           WHEN r.kind = 'baseline' THEN 'recorded'
           WHEN r.kind = 'adopt' THEN 'adopted'
           WHEN r.recovery_resolution = 'mark_rolled_back' THEN 'rolled_back'
           ELSE 'applied'
       END AS "state!"
FROM migration_versions mv
JOIN run_migrations rm ON rm.migration_version_id = mv.id
JOIN runs r ON r.id = rm.run_id
JOIN run_items i ON i.run_id = r.id
JOIN db_targets t ON t.id = i.db_target_id
JOIN environments e ON e.id = t.environment_id
WHERE mv.migration_id = $1
  AND i.finished_at IS NOT NULL
  AND CASE WHEN r.kind = 'release'
           THEN rm.position < i.migrations_done OR (i.status = 'failed' AND rm.position = i.migrations_done)
           ELSE i.status IN ('succeeded', 'skipped') END
ORDER BY i.db_target_id, i.finished_at DESC
