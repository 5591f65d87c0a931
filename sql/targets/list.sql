-- Targets of an environment by name, optionally those whose name contains $2, keyset-paginated on name.
SELECT id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at FROM db_targets
WHERE environment_id = $1
  AND ($2::text IS NULL OR strpos(name, $2) > 0)
  AND ($3::text IS NULL OR name > $3)
ORDER BY name
LIMIT $4
