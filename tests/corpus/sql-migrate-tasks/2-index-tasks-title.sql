-- +migrate Up notransaction
CREATE INDEX CONCURRENTLY tasks_title_idx ON tasks (title);

-- +migrate Down notransaction
DROP INDEX CONCURRENTLY tasks_title_idx;
