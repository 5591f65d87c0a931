-- Records delivery $1's attempt: $2 status (`delivered`, `pending` to try again at $5, or `failed`), $3 the
-- receiver's HTTP status (NULL: no answer), $4 what went wrong, $6 when it was delivered.
UPDATE webhook_deliveries
SET status = $2::text, last_status_code = $3, last_error = $4, next_attempt_at = $5,
    delivered_at = CASE WHEN $2 = 'delivered' THEN $6::timestamptz END
WHERE id = $1 AND status = 'pending'
