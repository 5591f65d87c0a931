-- Webhooks (issue 20): per environment, a URL that receives chosen events, signed with HMAC-SHA256 under a
-- secret sealed like target passwords. Events are written to an outbox (`webhook_deliveries`) in the same
-- transaction as the state change they report; workers deliver them with retries and backoff, and each
-- row is the delivery's log (attempts, last answer, when delivered).

CREATE TABLE webhooks (
    id                  uuid PRIMARY KEY,
    environment_id      uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- http(s) only, checked by the hub when saved (and by the worker before each delivery).
    url                 text NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2000 AND url ~ '^https?://'),
    events              text[] NOT NULL CHECK (
        cardinality(events) >= 1
        AND events <@ ARRAY['approval.requested', 'run.started', 'run.succeeded', 'run.failed', 'run.halted',
                            'drift.detected']::text[]),
    -- `json` (the event document) or `slack` (a Slack-compatible `{"text": …}`).
    format              text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    secret_ciphertext   bytea NOT NULL,
    secret_nonce        bytea NOT NULL CHECK (octet_length(secret_nonce) = 12),
    secret_key_id       text NOT NULL CHECK (char_length(secret_key_id) BETWEEN 1 AND 64),
    created_by          uuid NOT NULL REFERENCES users (id),
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_environment_idx ON webhooks (environment_id);

CREATE TABLE webhook_deliveries (
    id                  uuid PRIMARY KEY,
    webhook_id          uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event               text NOT NULL CHECK (char_length(event) BETWEEN 1 AND 64),
    -- The event document (the `json` body; a `slack` body is made from it).
    payload             jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Not tried again before this; a worker holding it pushes it past its lease.
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_status_code    integer CHECK (last_status_code BETWEEN 100 AND 599),
    last_error          text CHECK (char_length(last_error) <= 2000),
    delivered_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_delivered_when CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC);
