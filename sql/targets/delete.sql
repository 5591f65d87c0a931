DELETE FROM db_targets WHERE id = $1
