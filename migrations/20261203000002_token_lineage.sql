-- A token is created only by its owner (issue 16, item 3a). Until now an admin could mint a token for anyone,
-- e.g. for a manager, and approve their own runs with it while the audit log named the manager. The hub no
-- longer offers that; this makes it a rule of the table too, and ends the tokens made that way: any of them
-- may be the one an admin kept to act as someone else. Their owners see them as revoked and make new ones
-- themselves.
UPDATE api_tokens SET revoked_at = now() WHERE created_by <> user_id AND revoked_at IS NULL;

-- A revoked token keeps its history (who made it for whom); a usable one is always its creator's own.
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_created_by_owner CHECK (created_by = user_id OR revoked_at IS NOT NULL);
