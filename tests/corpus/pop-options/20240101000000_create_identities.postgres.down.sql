DROP TABLE {{ index .Options "Namespace" }}.pop_identities;
