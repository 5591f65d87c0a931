-- What identifies the content of the newest version of each of these migrations (those that have one):
-- enough to tell whether an import changes it, without reading the SQL itself.
SELECT DISTINCT ON (migration_id)
       migration_id, version_no, checksum_algorithm, up_checksum, down_checksum, transaction_mode, source_hash
FROM migration_versions
WHERE migration_id = ANY($1::uuid[])
ORDER BY migration_id, version_no DESC
