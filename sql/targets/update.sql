UPDATE db_targets
SET name = $2, engine = $3, host = $4, port = $5, database_name = $6, schema_name = $7, username = $8,
    tls_mode = $9, labels = $10, variables = $11, updated_at = now()
WHERE id = $1
RETURNING id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at
