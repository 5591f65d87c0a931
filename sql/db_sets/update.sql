UPDATE db_sets SET name = $2, description = $3, updated_at = now() WHERE id = $1
RETURNING id, environment_id, name, description, created_at, updated_at
