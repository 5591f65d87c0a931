-- Members of a set by target name, optionally filtered, keyset-paginated on name.
SELECT t.id, t.environment_id, t.name, t.engine, t.host, t.port, t.database_name, t.schema_name, t.username,
       t.secret_key_id, t.secret_ref, t.tls_mode, t.labels, t.variables, t.created_at, t.updated_at
FROM db_set_members m
JOIN db_targets t ON t.id = m.db_target_id
WHERE m.db_set_id = $1
  AND ($2::text IS NULL OR strpos(t.name, $2) > 0)
  AND ($3::text IS NULL OR t.name > $3)
ORDER BY t.name
LIMIT $4
