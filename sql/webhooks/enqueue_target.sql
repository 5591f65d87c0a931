-- Writes event $2 about target $1 to the outbox of every webhook of its environment that takes it ($3: the
-- payload's details, merged in; $4: the hub's address for the link). Returns how many were queued.
WITH queued AS (
    INSERT INTO webhook_deliveries (id, webhook_id, event, payload)
    SELECT gen_random_uuid(), w.id, $2,
           jsonb_build_object('event', $2::text, 'target_id', t.id, 'target', t.name, 'environment', e.name,
                              'environment_id', e.id, 'at', now(),
                              'link', CASE WHEN $4::text IS NULL THEN NULL ELSE $4::text || '/targets/' || t.id END)
           || $3::jsonb
    FROM db_targets t
    JOIN environments e ON e.id = t.environment_id
    JOIN webhooks w ON w.environment_id = t.environment_id
    WHERE t.id = $1 AND $2::text = ANY (w.events)
    RETURNING 1
)
SELECT count(*) AS "queued!" FROM queued
