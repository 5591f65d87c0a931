-- Serializes version creation for one migration (version numbers are dense and never reused).
SELECT id FROM migrations WHERE id = $1 FOR UPDATE
