INSERT INTO db_sets (id, environment_id, name, description) VALUES ($1, $2, $3, $4)
RETURNING id, environment_id, name, description, created_at, updated_at
