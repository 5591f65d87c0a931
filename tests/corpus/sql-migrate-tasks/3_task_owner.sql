-- +migrate Up
ALTER TABLE tasks ADD COLUMN owner text;

-- +migrate Down
ALTER TABLE tasks DROP COLUMN owner;
