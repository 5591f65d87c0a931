SELECT count(*) AS "count!" FROM users WHERE role = 'admin' AND NOT disabled
