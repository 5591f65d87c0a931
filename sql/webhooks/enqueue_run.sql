-- Writes event $2 about run $1 to the outbox of every webhook of the run's environment that takes it, in
-- the caller's transaction (the one that changes the run). $3: the hub's address for the link (NULL: no
-- link). Returns how many deliveries were queued.
WITH queued AS (
    INSERT INTO webhook_deliveries (id, webhook_id, event, payload)
    SELECT gen_random_uuid(), w.id, $2,
           jsonb_build_object('event', $2::text, 'run_id', r.id, 'status', r.status, 'project', p.name,
                              'project_id', p.id, 'environment', e.name, 'environment_id', e.id,
                              'direction', r.direction, 'at', now(),
                              'link', CASE WHEN $3::text IS NULL THEN NULL ELSE $3::text || '/runs/' || r.id END)
    FROM runs r
    JOIN environments e ON e.id = r.environment_id
    JOIN projects p ON p.id = r.project_id
    JOIN webhooks w ON w.environment_id = r.environment_id
    WHERE r.id = $1 AND $2::text = ANY (w.events)
    RETURNING 1
)
SELECT count(*) AS "queued!" FROM queued
