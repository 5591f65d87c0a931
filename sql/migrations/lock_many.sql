-- Serializes version creation for many migrations at once (in id order, so concurrent writers never
-- deadlock); returns the ids found.
SELECT id FROM migrations WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
