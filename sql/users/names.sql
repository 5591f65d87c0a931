-- The display names and emails of the given users (for lists that show people by id).
SELECT id, display_name, email FROM users WHERE id = ANY($1::uuid[])
