INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, schema_name, username,
                        tls_mode, labels, variables, secret_ref)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at
