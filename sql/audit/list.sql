-- Audit events newest first, with optional filters; $1 is the last id of the previous page.
SELECT id, occurred_at, actor_kind, actor_user_id, actor_label, action, object_type, object_id, details, host(ip) AS "ip", user_agent, prev_hash, hash, chain_layout FROM audit_events
WHERE ($1::bigint IS NULL OR id < $1)
  AND ($2::uuid IS NULL OR actor_user_id = $2)
  AND ($3::text IS NULL OR action = $3 OR action LIKE $3 || '.%')
  AND ($4::text IS NULL OR object_type = $4)
  AND ($5::text IS NULL OR object_id = $5)
  AND ($6::timestamptz IS NULL OR occurred_at >= $6)
  AND ($7::timestamptz IS NULL OR occurred_at < $7)
ORDER BY id DESC
LIMIT $8
