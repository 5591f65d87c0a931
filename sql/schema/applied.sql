-- What sqlx's migrator recorded on this database.
SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version
