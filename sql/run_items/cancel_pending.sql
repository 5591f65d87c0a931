-- Cancels every item of a run that no worker holds; running items stop at their next statement boundary.
UPDATE run_items SET status = 'cancelled', finished_at = now(), updated_at = now()
WHERE run_id = $1 AND status = 'pending'
