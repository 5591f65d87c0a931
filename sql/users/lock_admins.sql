-- Locks the enabled admins' rows so concurrent demotions cannot both see another admin left.
SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE
