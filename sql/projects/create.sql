INSERT INTO projects (id, name, description, history_table, created_by) VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, description, history_table, created_by, created_at, updated_at
