//! Migration versions: immutable content (up/down SQL, checksums, statement split, lint results).

use chrono::{DateTime, Utc};
use domain::enums::TransactionMode;
use domain::ids::{MigrationId, ProjectId, RunId, UserId, VersionId};
use domain::model::{MigrationVersion, NewMigrationVersion, ReleaseVersion};
use domain::policy::PinnedChecksums;
use domain::values::{MigrationName, VersionKey};
use uuid::Uuid;

use crate::convert::{digest32, json, parse, pinned, to_json, unsigned};
use crate::{Page, PageRequest, PgConnection, PgTransaction, StorageError, StorageResult};

struct Row {
    id: Uuid,
    migration_id: Uuid,
    version_no: i32,
    up_sql: String,
    down_sql: Option<String>,
    checksum_algorithm: String,
    up_checksum: Vec<u8>,
    down_checksum: Option<Vec<u8>>,
    transaction_mode: String,
    up_statements: serde_json::Value,
    down_statements: serde_json::Value,
    lint_results: serde_json::Value,
    source_hash: Option<Vec<u8>>,
    author_id: Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for MigrationVersion {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(MigrationVersion {
            id: VersionId::from_uuid(row.id),
            migration_id: MigrationId::from_uuid(row.migration_id),
            version_no: unsigned("migration_versions.version_no", row.version_no)?,
            checksums: pinned(&row.checksum_algorithm, &row.up_checksum, row.down_checksum.as_deref())?,
            up_sql: row.up_sql,
            down_sql: row.down_sql,
            transaction_mode: parse("migration_versions.transaction_mode", &row.transaction_mode)?,
            up_statements: json("migration_versions.up_statements", row.up_statements)?,
            down_statements: json("migration_versions.down_statements", row.down_statements)?,
            lint_results: json("migration_versions.lint_results", row.lint_results)?,
            source_hash: digest32("migration_versions.source_hash", row.source_hash)?,
            author_id: UserId::from_uuid(row.author_id),
            created_at: row.created_at,
        })
    }
}

/// Creates the next version of a migration (numbered after the last one). Checksums are computed here
/// from the text, so a stored checksum can never disagree with the stored SQL.
#[tracing::instrument(skip_all, fields(migration.id = %new.migration_id))]
pub async fn create(tx: &mut PgTransaction<'_>, new: &NewMigrationVersion) -> StorageResult<MigrationVersion> {
    // Lock the migration so concurrent editors get consecutive numbers rather than a conflict.
    sqlx::query_file!("../../sql/migrations/lock.sql", new.migration_id.as_uuid())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StorageError::NotFound("migration"))?;
    let checksums = new.checksums();
    sqlx::query_file_as!(
        Row,
        "../../sql/versions/create.sql",
        VersionId::new().as_uuid(),
        new.migration_id.as_uuid(),
        new.up_sql,
        new.down_sql.as_deref(),
        checksums.up.algorithm().as_str(),
        &checksums.up.digest()[..],
        checksums.down.as_ref().map(|d| &d.digest()[..]),
        new.transaction_mode.as_str(),
        to_json(&new.up_statements)?,
        to_json(&new.down_statements)?,
        to_json(&new.lint_results)?,
        new.source_hash.as_ref().map(|h| &h[..]),
        new.author_id.as_uuid(),
    )
    .fetch_one(&mut **tx)
    .await?
    .try_into()
}

/// Creates the next version of each of many migrations (at most one version per migration) in one
/// statement, as [`create`] does for one: the migrations are locked first, numbers follow each one's last,
/// and checksums are computed here from the text.
#[tracing::instrument(skip_all, fields(count = new.len()))]
pub async fn create_many(tx: &mut PgTransaction<'_>, new: &[NewMigrationVersion]) -> StorageResult<()> {
    if new.is_empty() {
        return Ok(());
    }
    let migrations: Vec<Uuid> = new.iter().map(|v| v.migration_id.as_uuid()).collect();
    let distinct: std::collections::HashSet<&Uuid> = migrations.iter().collect();
    if distinct.len() != migrations.len() {
        // Two versions of one migration in one statement would take the same number.
        return Err(StorageError::Conflict { constraint: "migration_versions_number_key".into() });
    }
    let locked =
        sqlx::query_file_scalar!("../../sql/migrations/lock_many.sql", &migrations).fetch_all(&mut **tx).await?;
    if locked.len() != migrations.len() {
        return Err(StorageError::NotFound("migration"));
    }
    let ids: Vec<Uuid> = new.iter().map(|_| VersionId::new().as_uuid()).collect();
    let checksums: Vec<_> = new.iter().map(NewMigrationVersion::checksums).collect();
    let up_sql: Vec<&str> = new.iter().map(|v| v.up_sql.as_str()).collect();
    let down_sql: Vec<Option<&str>> = new.iter().map(|v| v.down_sql.as_deref()).collect();
    let algorithms: Vec<&str> = checksums.iter().map(|c| c.up.algorithm().as_str()).collect();
    let up_checksums: Vec<&[u8]> = checksums.iter().map(|c| &c.up.digest()[..]).collect();
    let down_checksums: Vec<Option<&[u8]>> =
        checksums.iter().map(|c| c.down.as_ref().map(|d| &d.digest()[..])).collect();
    let modes: Vec<&str> = new.iter().map(|v| v.transaction_mode.as_str()).collect();
    let up_statements = new.iter().map(|v| to_json(&v.up_statements)).collect::<StorageResult<Vec<_>>>()?;
    let down_statements = new.iter().map(|v| to_json(&v.down_statements)).collect::<StorageResult<Vec<_>>>()?;
    let lint_results = new.iter().map(|v| to_json(&v.lint_results)).collect::<StorageResult<Vec<_>>>()?;
    let source_hashes: Vec<Option<&[u8]>> = new.iter().map(|v| v.source_hash.as_ref().map(|h| &h[..])).collect();
    let authors: Vec<Uuid> = new.iter().map(|v| v.author_id.as_uuid()).collect();
    sqlx::query_file!(
        "../../sql/versions/create_many.sql",
        &ids,
        &migrations,
        &up_sql as &[&str],
        &down_sql as &[Option<&str>],
        &algorithms as &[&str],
        &up_checksums as &[&[u8]],
        &down_checksums as &[Option<&[u8]>],
        &modes as &[&str],
        &up_statements,
        &down_statements,
        &lint_results,
        &source_hashes as &[Option<&[u8]>],
        &authors,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What identifies a version's content, without the content: checksums, mode and the import's source
/// hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionDigest {
    pub migration_id: MigrationId,
    pub version_no: u32,
    pub checksums: PinnedChecksums,
    pub transaction_mode: TransactionMode,
    pub source_hash: Option<[u8; 32]>,
}

/// The digest of the newest version of each of `migrations` that has one.
#[tracing::instrument(skip_all, fields(count = migrations.len()))]
pub async fn latest_digests(conn: &mut PgConnection, migrations: &[MigrationId]) -> StorageResult<Vec<VersionDigest>> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = migrations.iter().map(|id| id.as_uuid()).collect();
    sqlx::query_file!("../../sql/versions/latest_digests.sql", &ids)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| {
            Ok(VersionDigest {
                migration_id: MigrationId::from_uuid(r.migration_id),
                version_no: unsigned("migration_versions.version_no", r.version_no)?,
                checksums: pinned(&r.checksum_algorithm, &r.up_checksum, r.down_checksum.as_deref())?,
                transaction_mode: parse("migration_versions.transaction_mode", &r.transaction_mode)?,
                source_hash: digest32("migration_versions.source_hash", r.source_hash)?,
            })
        })
        .collect()
}

#[tracing::instrument(skip_all, fields(version.id = %id))]
pub async fn get(conn: &mut PgConnection, id: VersionId) -> StorageResult<MigrationVersion> {
    sqlx::query_file_as!(Row, "../../sql/versions/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("migration version"))?
        .try_into()
}

/// Version number `number` of a migration.
#[tracing::instrument(skip_all, fields(migration.id = %migration, version.no = number))]
pub async fn get_by_number(
    conn: &mut PgConnection,
    migration: MigrationId,
    number: u32,
) -> StorageResult<MigrationVersion> {
    sqlx::query_file_as!(
        Row,
        "../../sql/versions/get_by_number.sql",
        migration.as_uuid(),
        crate::convert::to_i32(number)
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("migration version"))?
    .try_into()
}

/// The newest version of a migration, if it has any.
#[tracing::instrument(skip_all, fields(migration.id = %migration))]
pub async fn latest(conn: &mut PgConnection, migration: MigrationId) -> StorageResult<Option<MigrationVersion>> {
    sqlx::query_file_as!(Row, "../../sql/versions/latest.sql", migration.as_uuid())
        .fetch_optional(conn)
        .await?
        .map(MigrationVersion::try_from)
        .transpose()
}

/// Versions of a migration, newest first; the page key is the version number.
#[tracing::instrument(skip_all, fields(migration.id = %migration))]
pub async fn list(
    conn: &mut PgConnection,
    migration: MigrationId,
    page: &PageRequest<u32>,
) -> StorageResult<Page<MigrationVersion, u32>> {
    let limit = page.sql_limit();
    let before = page.after.map(crate::convert::to_i32);
    let rows = sqlx::query_file_as!(Row, "../../sql/versions/list.sql", migration.as_uuid(), before, limit)
        .fetch_all(conn)
        .await?;
    let items = rows.into_iter().map(MigrationVersion::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |v| v.version_no))
}

/// A version with its migration's key and name, and its place in a run (0 when not read from one).
struct KeyedRow {
    position: i32,
    version_key: String,
    name: String,
    id: Uuid,
    migration_id: Uuid,
    version_no: i32,
    up_sql: String,
    down_sql: Option<String>,
    checksum_algorithm: String,
    up_checksum: Vec<u8>,
    down_checksum: Option<Vec<u8>>,
    transaction_mode: String,
    up_statements: serde_json::Value,
    down_statements: serde_json::Value,
    lint_results: serde_json::Value,
    source_hash: Option<Vec<u8>>,
    author_id: Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<KeyedRow> for ReleaseVersion {
    type Error = StorageError;

    fn try_from(row: KeyedRow) -> Result<Self, Self::Error> {
        Ok(ReleaseVersion {
            position: unsigned("run_migrations.position", row.position)?,
            version_key: VersionKey::parse(&row.version_key)
                .map_err(|e| StorageError::Corrupt(format!("migrations.version_key: {e}")))?,
            name: MigrationName::parse(row.name).map_err(|e| StorageError::Corrupt(format!("migrations.name: {e}")))?,
            version: Row {
                id: row.id,
                migration_id: row.migration_id,
                version_no: row.version_no,
                up_sql: row.up_sql,
                down_sql: row.down_sql,
                checksum_algorithm: row.checksum_algorithm,
                up_checksum: row.up_checksum,
                down_checksum: row.down_checksum,
                transaction_mode: row.transaction_mode,
                up_statements: row.up_statements,
                down_statements: row.down_statements,
                lint_results: row.lint_results,
                source_hash: row.source_hash,
                author_id: row.author_id,
                created_at: row.created_at,
            }
            .try_into()?,
        })
    }
}

/// The versions run `run` applies, in apply order.
#[tracing::instrument(skip_all, fields(run.id = %run))]
pub async fn of_run(conn: &mut PgConnection, run: RunId) -> StorageResult<Vec<ReleaseVersion>> {
    sqlx::query_file_as!(KeyedRow, "../../sql/runs/versions.sql", run.as_uuid())
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(ReleaseVersion::try_from)
        .collect()
}

/// The newest version of every migration of `project` (or only of `migrations`, when given), in ascending
/// version-key order; `position` is the index in that order.
#[tracing::instrument(skip_all, fields(project.id = %project))]
pub async fn newest_of_project(
    conn: &mut PgConnection,
    project: ProjectId,
    migrations: Option<&[MigrationId]>,
) -> StorageResult<Vec<ReleaseVersion>> {
    let ids: Option<Vec<Uuid>> = migrations.map(|m| m.iter().map(|id| id.as_uuid()).collect());
    let mut found = sqlx::query_file!("../../sql/versions/newest_of_project.sql", project.as_uuid(), ids.as_deref())
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| {
            ReleaseVersion::try_from(KeyedRow {
                position: 0,
                version_key: r.version_key,
                name: r.name,
                id: r.id,
                migration_id: r.migration_id,
                version_no: r.version_no,
                up_sql: r.up_sql,
                down_sql: r.down_sql,
                checksum_algorithm: r.checksum_algorithm,
                up_checksum: r.up_checksum,
                down_checksum: r.down_checksum,
                transaction_mode: r.transaction_mode,
                up_statements: r.up_statements,
                down_statements: r.down_statements,
                lint_results: r.lint_results,
                source_hash: r.source_hash,
                author_id: r.author_id,
                created_at: r.created_at,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    found.sort_by(|a, b| a.version_key.cmp(&b.version_key));
    for (i, v) in found.iter_mut().enumerate() {
        v.position = u32::try_from(i).unwrap_or(u32::MAX);
    }
    Ok(found)
}
