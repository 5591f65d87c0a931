-- What lists show about each of the given runs: its project, the first and last version of its release
-- (in apply order), how many versions it has, and its environment.
SELECT r.id, p.id AS project_id, p.name AS project, e.name AS environment,
       first_m.id AS "first_migration_id!", first_m.version_key AS "first_key!", first_m.name AS "first_name!",
       first_v.version_no AS "first_version_no!", last_m.version_key AS "last_key!",
       (SELECT count(*) FROM run_migrations c WHERE c.run_id = r.id) AS "versions!"
FROM runs r
JOIN projects p ON p.id = r.project_id
JOIN environments e ON e.id = r.environment_id
JOIN run_migrations first_rm ON first_rm.run_id = r.id AND first_rm.position = 0
JOIN migration_versions first_v ON first_v.id = first_rm.migration_version_id
JOIN migrations first_m ON first_m.id = first_v.migration_id
JOIN LATERAL (SELECT lm.version_key FROM run_migrations lrm
              JOIN migration_versions lv ON lv.id = lrm.migration_version_id
              JOIN migrations lm ON lm.id = lv.migration_id
              WHERE lrm.run_id = r.id ORDER BY lrm.position DESC LIMIT 1) last_m ON true
WHERE r.id = ANY($1::uuid[])
