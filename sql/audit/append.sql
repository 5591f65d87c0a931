INSERT INTO audit_events (occurred_at, actor_kind, actor_user_id, actor_label, action, object_type, object_id,
                          details, ip, user_agent, prev_hash, hash, chain_layout)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::inet, $10, $11, $12, $13)
RETURNING id, occurred_at, actor_kind, actor_user_id, actor_label, action, object_type, object_id, details, host(ip) AS "ip", user_agent, prev_hash, hash, chain_layout
