ALTER TABLE notes_notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
