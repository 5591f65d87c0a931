INSERT INTO workers (id, hostname, pid, version) VALUES ($1, $2, $3, $4)
RETURNING id, hostname, pid, version, status, started_at, last_heartbeat_at, stopped_at
