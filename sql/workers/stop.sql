UPDATE workers SET status = 'stopped', stopped_at = COALESCE(stopped_at, now()) WHERE id = $1
RETURNING id, hostname, pid, version, status, started_at, last_heartbeat_at, stopped_at
