CREATE TABLE {{ index .Options "Namespace" }}.pop_identities (
    id uuid PRIMARY KEY,
    traits jsonb NOT NULL DEFAULT '{}'
);
