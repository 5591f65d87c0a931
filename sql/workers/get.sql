SELECT id, hostname, pid, version, status, started_at, last_heartbeat_at, stopped_at FROM workers WHERE id = $1
