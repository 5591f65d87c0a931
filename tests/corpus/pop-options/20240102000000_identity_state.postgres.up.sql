ALTER TABLE {{ index .Options "Namespace" }}.pop_identities ADD COLUMN state text NOT NULL DEFAULT 'active';
