SELECT id, name, description, history_table, dialects, lint_rules_off, created_by, created_at, updated_at FROM projects WHERE id = $1
