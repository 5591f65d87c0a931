-- What lists show about each of the given runs: its migration, version and environment.
SELECT r.id, m.id AS migration_id, m.version_key, m.name, v.version_no, e.name AS environment
FROM runs r
JOIN migration_versions v ON v.id = r.migration_version_id
JOIN migrations m ON m.id = v.migration_id
JOIN environments e ON e.id = r.environment_id
WHERE r.id = ANY($1::uuid[])
