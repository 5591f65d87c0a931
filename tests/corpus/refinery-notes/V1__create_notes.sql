CREATE TABLE notes_notes (
    id bigserial PRIMARY KEY,
    body text NOT NULL
);
