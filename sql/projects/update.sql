UPDATE projects SET description = $2, history_table = $3, updated_at = now() WHERE id = $1
RETURNING id, name, description, history_table, created_by, created_at, updated_at
