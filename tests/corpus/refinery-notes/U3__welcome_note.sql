INSERT INTO notes_notes (body, pinned) VALUES ('welcome', true);
