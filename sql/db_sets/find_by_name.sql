SELECT id, environment_id, name, description, created_at, updated_at FROM db_sets WHERE environment_id = $1 AND name = $2
