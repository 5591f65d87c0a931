-- For each of the given migrations, the newest run in each environment (its status and direction).
SELECT DISTINCT ON (v.migration_id, r.environment_id)
       v.migration_id, r.environment_id, r.id AS run_id, r.status, r.direction
FROM runs r
JOIN migration_versions v ON v.id = r.migration_version_id
WHERE v.migration_id = ANY($1::uuid[])
ORDER BY v.migration_id, r.environment_id, r.id DESC
