-- Run $1's schedule: nothing of it is claimed before this (NULL: at once).
SELECT not_before FROM runs WHERE id = $1
