-- Takes up to $1 deliveries due at $2 (the worker's clock) and holds each for $3 seconds (pushed past its
-- lease: a worker that dies mid-delivery leaves it to be tried again then), counting the attempt. Returns
-- what sending needs: the URL, format, sealed secret and the payload.
WITH due AS (
    SELECT d.id
    FROM webhook_deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at <= $2
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = $2 + make_interval(secs => $3)
FROM due, webhooks w
WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, d.webhook_id, d.event, d.payload, d.attempts, w.url, w.format, w.secret_ciphertext,
          w.secret_nonce, w.secret_key_id
