-- The hash of one row of the chain, to compare with a published head.
SELECT hash FROM audit_events WHERE id = $1
