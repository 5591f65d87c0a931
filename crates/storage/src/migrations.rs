//! Migrations: a version key and a name within a project; their content lives in [`crate::versions`].

use chrono::{DateTime, Utc};
use domain::ids::{MigrationId, ProjectId, UserId};
use domain::model::Migration;
use domain::values::{MigrationName, VersionKey};
use uuid::Uuid;

use crate::convert::parse;
use crate::{Page, PageRequest, PgConnection, PgTransaction, StorageError, StorageResult};

/// A migration to create among many at once ([`create_many`]).
#[derive(Debug, Clone, Copy)]
pub struct NewMigration<'a> {
    pub key: &'a VersionKey,
    pub name: &'a MigrationName,
    pub source_path: Option<&'a str>,
}

struct Row {
    id: Uuid,
    project_id: Uuid,
    version_key: String,
    name: String,
    source_path: Option<String>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Migration {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Migration {
            id: MigrationId::from_uuid(row.id),
            project_id: ProjectId::from_uuid(row.project_id),
            version_key: parse("migrations.version_key", &row.version_key)?,
            name: parse("migrations.name", &row.name)?,
            source_path: row.source_path,
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(migration.key = %key))]
pub async fn create(
    conn: &mut PgConnection,
    project: ProjectId,
    key: &VersionKey,
    name: &MigrationName,
    source_path: Option<&str>,
    created_by: UserId,
) -> StorageResult<Migration> {
    sqlx::query_file_as!(
        Row,
        "../../sql/migrations/create.sql",
        MigrationId::new().as_uuid(),
        project.as_uuid(),
        key.as_str(),
        name.as_str(),
        source_path,
        created_by.as_uuid()
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

/// Creates many migrations of one project in one statement and returns their ids, in the order given.
#[tracing::instrument(skip_all, fields(project.id = %project, count = new.len()))]
pub async fn create_many(
    conn: &mut PgConnection,
    project: ProjectId,
    new: &[NewMigration<'_>],
    created_by: UserId,
) -> StorageResult<Vec<MigrationId>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<MigrationId> = new.iter().map(|_| MigrationId::new()).collect();
    let uuids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
    let keys: Vec<&str> = new.iter().map(|m| m.key.as_str()).collect();
    let names: Vec<&str> = new.iter().map(|m| m.name.as_str()).collect();
    let paths: Vec<Option<&str>> = new.iter().map(|m| m.source_path).collect();
    sqlx::query_file!(
        "../../sql/migrations/create_many.sql",
        project.as_uuid(),
        &uuids,
        &keys as &[&str],
        &names as &[&str],
        &paths as &[Option<&str>],
        created_by.as_uuid()
    )
    .execute(conn)
    .await?;
    Ok(ids)
}

/// The migrations of `project` with these keys (those that exist), locked until the transaction ends.
#[tracing::instrument(skip_all, fields(project.id = %project, count = keys.len()))]
pub async fn lock_by_keys(
    tx: &mut PgTransaction<'_>,
    project: ProjectId,
    keys: &[&VersionKey],
) -> StorageResult<Vec<Migration>> {
    let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    sqlx::query_file_as!(Row, "../../sql/migrations/lock_by_keys.sql", project.as_uuid(), &keys as &[&str])
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(Migration::try_from)
        .collect()
}

#[tracing::instrument(skip_all, fields(migration.id = %id))]
pub async fn get(conn: &mut PgConnection, id: MigrationId) -> StorageResult<Migration> {
    sqlx::query_file_as!(Row, "../../sql/migrations/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("migration"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(migration.key = %key))]
pub async fn find_by_key(
    conn: &mut PgConnection,
    project: ProjectId,
    key: &VersionKey,
) -> StorageResult<Option<Migration>> {
    sqlx::query_file_as!(Row, "../../sql/migrations/find_by_key.sql", project.as_uuid(), key.as_str())
        .fetch_optional(conn)
        .await?
        .map(Migration::try_from)
        .transpose()
}

#[tracing::instrument(skip_all)]
pub async fn find_by_source_path(
    conn: &mut PgConnection,
    project: ProjectId,
    path: &str,
) -> StorageResult<Option<Migration>> {
    sqlx::query_file_as!(Row, "../../sql/migrations/find_by_source_path.sql", project.as_uuid(), path)
        .fetch_optional(conn)
        .await?
        .map(Migration::try_from)
        .transpose()
}

/// Migrations of a project, in text order of their keys (see `sql/migrations/list.sql`).
#[tracing::instrument(skip_all, fields(project.id = %project))]
pub async fn list(
    conn: &mut PgConnection,
    project: ProjectId,
    page: &PageRequest<VersionKey>,
) -> StorageResult<Page<Migration, VersionKey>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/migrations/list.sql",
        project.as_uuid(),
        page.after.as_ref().map(VersionKey::as_str),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(Migration::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |m| m.version_key.clone()))
}
