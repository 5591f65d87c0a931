UPDATE workers SET last_heartbeat_at = now() WHERE id = $1 AND status = 'running'
RETURNING id, hostname, pid, version, status, started_at, last_heartbeat_at, stopped_at
