ALTER TABLE {{ index .Options "Namespace" }}.pop_identities DROP COLUMN state;
