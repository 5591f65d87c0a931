-- Whether environment $1 has maintenance windows, when the one open at $2 closes (NULL: none open) and when
-- the next opens after $2.
SELECT EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.environment_id = $1) AS "any!",
       maintenance_window_end($1, $2) AS closes_at,
       maintenance_window_next($1, $2) AS next_opens_at
