-- For each of the given migrations, the newest run that includes it, in each environment (its status and
-- direction).
SELECT DISTINCT ON (v.migration_id, r.environment_id)
       v.migration_id, r.environment_id, r.id AS run_id, r.status, r.direction
FROM run_migrations rm
JOIN runs r ON r.id = rm.run_id
JOIN migration_versions v ON v.id = rm.migration_version_id
WHERE v.migration_id = ANY($1::uuid[])
ORDER BY v.migration_id, r.environment_id, r.id DESC
