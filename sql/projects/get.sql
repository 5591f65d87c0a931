SELECT id, name, description, history_table, created_by, created_at, updated_at FROM projects WHERE id = $1
