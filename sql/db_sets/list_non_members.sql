-- Targets of a set's environment that are not members of it, by name, optionally filtered, keyset-paginated on name.
SELECT t.id, t.environment_id, t.name, t.engine, t.host, t.port, t.database_name, t.schema_name, t.username,
       t.secret_key_id, t.secret_ref, t.tls_mode, t.labels, t.variables, t.created_at, t.updated_at
FROM db_sets s
JOIN db_targets t ON t.environment_id = s.environment_id
WHERE s.id = $1
  AND NOT EXISTS (SELECT 1 FROM db_set_members m WHERE m.db_set_id = s.id AND m.db_target_id = t.id)
  AND ($2::text IS NULL OR strpos(t.name, $2) > 0)
  AND ($3::text IS NULL OR t.name > $3)
ORDER BY t.name
LIMIT $4
