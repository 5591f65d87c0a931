-- Serializes appends to the audit chain until the caller's transaction ends (the key spells "audit").
SELECT pg_advisory_xact_lock(x'61756469740000'::bigint)
