-- Workers newest first; $1 limits to those that heartbeat since that instant.
SELECT id, hostname, pid, version, status, started_at, last_heartbeat_at, stopped_at FROM workers
WHERE ($1::timestamptz IS NULL OR last_heartbeat_at >= $1) AND ($2::uuid IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
