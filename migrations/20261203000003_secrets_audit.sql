-- Issue 16: the audit chain is keyed, so that someone who can write the tool database cannot rewrite it.
--
-- Until now every row's hash was an unkeyed SHA-256 over its content and the previous row's hash: anyone
-- able to run SQL here could change a row and recompute every hash after it, and `audit verify` said
-- "intact". From now on the hub writes rows of layout 2, whose hash is an HMAC-SHA256 under a key derived
-- from the server secret (`auth::keys`), which is not in this database.
--
-- Rows written before keep layout 1 and are verified as they were. They cannot be re-chained: the table is
-- append-only, and rewriting history is exactly what the chain exists to make visible. The first row of
-- layout 2 links to the last row of layout 1 (its HMAC covers that row's hash), so the keyed chain is
-- anchored to the unkeyed past; a row of layout 1 after a row of layout 2 is reported as a break.
ALTER TABLE audit_events
    ADD COLUMN chain_layout smallint NOT NULL DEFAULT 1
        CONSTRAINT audit_events_chain_layout_check CHECK (chain_layout IN (1, 2));
