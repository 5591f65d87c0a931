-- A target, locked until the end of the transaction: changing its connection decides on its sealed secret.
SELECT id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at FROM db_targets WHERE id = $1 FOR UPDATE
