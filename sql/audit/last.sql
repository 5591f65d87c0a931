SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1
