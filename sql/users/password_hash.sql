-- The stored argon2 hash of an enabled user, for password login only.
SELECT id, password_hash AS "password_hash!" FROM users
WHERE email = $1 AND password_hash IS NOT NULL AND NOT disabled
