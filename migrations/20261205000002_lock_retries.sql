-- Lock-timeout retries (SPEC §5): a statement that gave up waiting for a lock (the environment's short
-- lock_timeout) is tried again after exponential backoff with jitter, this many times at most, waiting at
-- most this long between two tries. 0 retries: a lock timeout fails the migration.
ALTER TABLE environments
    ADD COLUMN lock_retries smallint NOT NULL DEFAULT 3 CHECK (lock_retries BETWEEN 0 AND 10),
    ADD COLUMN lock_retry_max_delay_ms integer NOT NULL DEFAULT 10000
        CHECK (lock_retry_max_delay_ms BETWEEN 0 AND 300000);
