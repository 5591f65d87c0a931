-- The chain in order, for verification, in pages after id $1.
SELECT id, occurred_at, actor_kind, actor_user_id, actor_label, action, object_type, object_id, details, host(ip) AS "ip", user_agent, prev_hash, hash, chain_layout FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2
