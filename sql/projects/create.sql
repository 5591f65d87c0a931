INSERT INTO projects (id, name, description, history_table, dialects, lint_rules_off, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, name, description, history_table, dialects, lint_rules_off, created_by, created_at, updated_at
