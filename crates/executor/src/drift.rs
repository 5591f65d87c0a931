//! Schema fingerprints of targets, read from the catalog (`domain::drift`): on Postgres the schema the target
//! names (else its current one), on MySQL its database. Tables (columns with types, nullability and
//! defaults), constraints, indexes, views, functions and procedures, triggers and (Postgres) enum types, each
//! object's definition normalized and digested. The hub's own history tables, and every object on them,
//! are left out. Only names and digests leave the target, never a definition or a row.

use domain::drift::{Fingerprint, digest};
use sqlx::Row;

use crate::target::{Session, TargetConnection, TargetError};

/// Postgres: (name, definition) of every object of schema `$1` (NULL: the current one), except the tables
/// named in `$2` and what hangs off them, and objects of extensions.
const POSTGRES: &str = r#"
WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = COALESCE($1, current_schema())),
own AS (SELECT c.oid FROM pg_catalog.pg_class c JOIN ns ON c.relnamespace = ns.oid WHERE c.relname = ANY ($2)),
ext AS (SELECT objid FROM pg_catalog.pg_depend WHERE deptype = 'e')
SELECT 'table:' || c.relname AS name,
       string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                  || COALESCE(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
           AS definition
FROM pg_catalog.pg_class c
JOIN ns ON c.relnamespace = ns.oid
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f') AND c.oid NOT IN (SELECT oid FROM own) AND c.oid NOT IN (SELECT objid FROM ext)
GROUP BY c.relname
UNION ALL
SELECT 'constraint:' || c.relname || '.' || k.conname, pg_catalog.pg_get_constraintdef(k.oid)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN ns ON c.relnamespace = ns.oid
WHERE c.oid NOT IN (SELECT oid FROM own)
UNION ALL
SELECT 'index:' || i.relname, pg_catalog.pg_get_indexdef(i.oid)
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN ns ON i.relnamespace = ns.oid
WHERE x.indrelid NOT IN (SELECT oid FROM own)
UNION ALL
SELECT 'view:' || c.relname, pg_catalog.pg_get_viewdef(c.oid)
FROM pg_catalog.pg_class c
JOIN ns ON c.relnamespace = ns.oid
WHERE c.relkind IN ('v', 'm') AND c.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 'function:' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
       pg_catalog.pg_get_functiondef(p.oid)
FROM pg_catalog.pg_proc p
JOIN ns ON p.pronamespace = ns.oid
WHERE p.prokind IN ('f', 'p') AND p.oid NOT IN (SELECT objid FROM ext)
UNION ALL
SELECT 'trigger:' || c.relname || '.' || t.tgname, pg_catalog.pg_get_triggerdef(t.oid)
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN ns ON c.relnamespace = ns.oid
WHERE NOT t.tgisinternal AND c.oid NOT IN (SELECT oid FROM own)
UNION ALL
SELECT 'type:' || t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t
JOIN ns ON t.typnamespace = ns.oid
JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
WHERE t.oid NOT IN (SELECT objid FROM ext)
GROUP BY t.typname
"#;

/// MySQL and MariaDB: one query per kind (information_schema), each `(name, definition)` as text, for the
/// current database, leaving out the tables `?` names (a comma-separated list, `FIND_IN_SET`).
const MYSQL: &[&str] = &[
    "SELECT CAST(CONCAT('table:', TABLE_NAME) AS CHAR), CAST(GROUP_CONCAT(CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, \
     IS_NULLABLE, COALESCE(COLUMN_DEFAULT, '-'), EXTRA) ORDER BY ORDINAL_POSITION SEPARATOR ', ') AS CHAR) \
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND NOT FIND_IN_SET(TABLE_NAME, ?) \
     GROUP BY TABLE_NAME",
    "SELECT CAST(CONCAT('index:', TABLE_NAME, '.', INDEX_NAME) AS CHAR), CAST(GROUP_CONCAT(CONCAT_WS(' ', \
     COLUMN_NAME, NON_UNIQUE, COALESCE(SUB_PART, '-'), INDEX_TYPE) ORDER BY SEQ_IN_INDEX SEPARATOR ', ') AS CHAR) \
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND NOT FIND_IN_SET(TABLE_NAME, ?) \
     GROUP BY TABLE_NAME, INDEX_NAME",
    "SELECT CAST(CONCAT('constraint:', TABLE_NAME, '.', CONSTRAINT_NAME) AS CHAR), CAST(CONSTRAINT_TYPE AS CHAR) \
     FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() AND NOT FIND_IN_SET(TABLE_NAME, ?)",
    "SELECT CAST(CONCAT('view:', TABLE_NAME) AS CHAR), CAST(VIEW_DEFINITION AS CHAR) FROM information_schema.VIEWS \
     WHERE TABLE_SCHEMA = DATABASE() AND NOT FIND_IN_SET(TABLE_NAME, ?)",
    "SELECT CAST(CONCAT(LOWER(ROUTINE_TYPE), ':', ROUTINE_NAME) AS CHAR), CAST(CONCAT_WS(' ', DTD_IDENTIFIER, \
     ROUTINE_DEFINITION) AS CHAR) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND \
     NOT FIND_IN_SET(ROUTINE_NAME, ?)",
    "SELECT CAST(CONCAT('trigger:', EVENT_OBJECT_TABLE, '.', TRIGGER_NAME) AS CHAR), CAST(CONCAT_WS(' ', \
     ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT) AS CHAR) FROM information_schema.TRIGGERS WHERE \
     TRIGGER_SCHEMA = DATABASE() AND NOT FIND_IN_SET(EVENT_OBJECT_TABLE, ?)",
];

/// The target's schema fingerprint, leaving out `exclude` (the hub's history tables).
pub async fn fingerprint(
    conn: &mut TargetConnection,
    schema: Option<&str>,
    exclude: &[String],
) -> Result<Fingerprint, TargetError> {
    let mut print = Fingerprint::new();
    match conn.session_mut() {
        Session::Postgres(pg) => {
            let rows = sqlx::query(POSTGRES)
                .bind(schema)
                .bind(exclude)
                .fetch_all(&mut *pg)
                .await
                .map_err(TargetError::from_sqlx)?;
            for row in rows {
                let name: String = row.try_get(0).map_err(TargetError::from_sqlx)?;
                let definition: Option<String> = row.try_get(1).map_err(TargetError::from_sqlx)?;
                print.insert(name, digest(definition.as_deref().unwrap_or_default()));
            }
        }
        Session::Mysql { conn: my, .. } => {
            // GROUP_CONCAT cuts at 1024 bytes by default; a cut definition would hide a change.
            sqlx::raw_sql("SET SESSION group_concat_max_len = 1048576")
                .execute(&mut *my)
                .await
                .map_err(TargetError::from_sqlx)?;
            let excluded = exclude.join(",");
            for sql in MYSQL {
                let rows =
                    sqlx::query(*sql).bind(&excluded).fetch_all(&mut *my).await.map_err(TargetError::from_sqlx)?;
                for row in rows {
                    let name: Option<String> = row.try_get(0).map_err(TargetError::from_sqlx)?;
                    let definition: Option<String> = row.try_get(1).map_err(TargetError::from_sqlx)?;
                    if let Some(name) = name {
                        print.insert(name, digest(definition.as_deref().unwrap_or_default()));
                    }
                }
            }
        }
    }
    Ok(print)
}
