-- The head of the chain: its newest row.
SELECT id, hash, chain_layout FROM audit_events ORDER BY id DESC LIMIT 1
