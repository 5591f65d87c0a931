-- Extends the leases worker $1 still holds, given as (item, fencing token) pairs; returns the items renewed.
-- An item missing from the result was taken over (or ended): its worker must stop touching it.
UPDATE run_items i
SET lease_expires_at = now() + make_interval(secs => $4), updated_at = now()
FROM unnest($2::uuid[], $3::bigint[]) AS held (id, token)
WHERE i.id = held.id AND i.fencing_token = held.token AND i.status = 'running' AND i.lease_owner = $1
RETURNING i.id
