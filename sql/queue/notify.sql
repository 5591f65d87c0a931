-- Wakes idle workers: run $1 has claimable items. Postgres delivers it at commit, once per transaction
-- for the same payload.
SELECT pg_notify('migrate_hub_queue', $1::text)
