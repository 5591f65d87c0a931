//! The tool database's own schema: applying `migrations/` and telling whether a database is current.
//!
//! The server and the worker refuse to run on a schema that is behind (or ahead of) the binary, because
//! every query in this crate was checked against exactly `migrations/`.

use std::collections::BTreeMap;

use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::{PgConnection, StorageError, StorageResult};

/// The tool schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// How a database's schema compares with the one this binary was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaStatus {
    /// Every embedded migration is applied with the same checksum, and nothing else is.
    Current,
    /// Migrations of this binary not yet applied: run `migrate-hub-server migrate`.
    Behind { pending: Vec<i64> },
    /// The database has migrations this binary does not know: it was migrated by a newer release.
    Ahead { unknown: Vec<i64> },
    /// An applied migration's checksum differs from the embedded one: the schema was edited after release.
    Modified { versions: Vec<i64> },
    /// A migration failed half-way and was never repaired.
    Dirty { version: i64 },
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        matches!(self, SchemaStatus::Current)
    }

    /// One sentence an operator can act on.
    pub fn describe(&self) -> String {
        match self {
            SchemaStatus::Current => "the tool database schema is current".into(),
            SchemaStatus::Behind { pending } => format!(
                "the tool database schema is out of date ({} migration(s) pending, first {}): run `migrate-hub-server migrate`",
                pending.len(),
                pending.first().copied().unwrap_or_default()
            ),
            SchemaStatus::Ahead { unknown } => format!(
                "the tool database has {} migration(s) this binary does not know (first {}): it was migrated by a newer release; upgrade this binary",
                unknown.len(),
                unknown.first().copied().unwrap_or_default()
            ),
            SchemaStatus::Modified { versions } => format!(
                "tool schema migration(s) {versions:?} were changed after being applied; restore the released migrations"
            ),
            SchemaStatus::Dirty { version } => {
                format!("tool schema migration {version} failed part-way; repair the database before starting")
            }
        }
    }
}

/// Applies every pending tool-schema migration. Idempotent: a current database is left untouched.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> StorageResult<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => StorageError::from(inner),
        other => StorageError::Database(sqlx::Error::Migrate(Box::new(other))),
    })
}

/// Compares the database with the embedded migrations without changing anything.
#[tracing::instrument(skip_all)]
pub async fn status(conn: &mut PgConnection) -> StorageResult<SchemaStatus> {
    let present = sqlx::query_file_scalar!("../../sql/schema/has_history.sql").fetch_one(&mut *conn).await?;
    let applied: BTreeMap<i64, (bool, Vec<u8>)> = if present {
        sqlx::query_file!("../../sql/schema/applied.sql")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|row| (row.version, (row.success, row.checksum)))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(compare(&MIGRATOR, &applied))
}

fn compare(migrator: &Migrator, applied: &BTreeMap<i64, (bool, Vec<u8>)>) -> SchemaStatus {
    if let Some((&version, _)) = applied.iter().find(|(_, (success, _))| !success) {
        return SchemaStatus::Dirty { version };
    }
    let embedded: BTreeMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let unknown: Vec<i64> = applied.keys().filter(|v| !embedded.contains_key(v)).copied().collect();
    if !unknown.is_empty() {
        return SchemaStatus::Ahead { unknown };
    }
    let modified: Vec<i64> = embedded
        .iter()
        .filter(|(v, checksum)| applied.get(v).is_some_and(|(_, c)| c.as_slice() != **checksum))
        .map(|(v, _)| *v)
        .collect();
    if !modified.is_empty() {
        return SchemaStatus::Modified { versions: modified };
    }
    let pending: Vec<i64> = embedded.keys().filter(|v| !applied.contains_key(v)).copied().collect();
    if pending.is_empty() { SchemaStatus::Current } else { SchemaStatus::Behind { pending } }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn applied_all() -> BTreeMap<i64, (bool, Vec<u8>)> {
        MIGRATOR.iter().map(|m| (m.version, (true, m.checksum.to_vec()))).collect()
    }

    #[test]
    fn all_applied_is_current() {
        assert_eq!(compare(&MIGRATOR, &applied_all()), SchemaStatus::Current);
    }

    #[test]
    fn nothing_applied_is_behind() {
        let status = compare(&MIGRATOR, &BTreeMap::new());
        assert!(matches!(status, SchemaStatus::Behind { ref pending } if pending.len() == MIGRATOR.iter().count()));
        assert!(status.describe().contains("migrate-hub-server migrate"));
    }

    #[test]
    fn unknown_version_is_ahead() {
        let mut applied = applied_all();
        applied.insert(99_990_101_000_000, (true, vec![0; 48]));
        assert!(matches!(compare(&MIGRATOR, &applied), SchemaStatus::Ahead { .. }));
    }

    #[test]
    fn changed_checksum_is_modified() {
        let mut applied = applied_all();
        let (_, (_, checksum)) = applied.iter_mut().next().unwrap();
        checksum[0] ^= 0xff;
        assert!(matches!(compare(&MIGRATOR, &applied), SchemaStatus::Modified { .. }));
    }

    #[test]
    fn failed_migration_is_dirty() {
        let mut applied = applied_all();
        let (_, (success, _)) = applied.iter_mut().next().unwrap();
        *success = false;
        assert!(matches!(compare(&MIGRATOR, &applied), SchemaStatus::Dirty { .. }));
    }
}
