SELECT id, name, description, history_table, dialects, lint_rules_off, created_by, created_at, updated_at FROM projects WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2
