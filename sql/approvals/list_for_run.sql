SELECT id, run_id, run_revision, direction, environment_id, approver_id, decision, comment, content_checksum, carried_from, created_at FROM approvals WHERE run_id = $1 ORDER BY created_at, id
