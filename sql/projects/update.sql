UPDATE projects
SET description = $2, history_table = $3, dialects = $4, lint_rules_off = $5, updated_at = now()
WHERE id = $1
RETURNING id, name, description, history_table, dialects, lint_rules_off, created_by, created_at, updated_at
