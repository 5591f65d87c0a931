//! Db sets: named groups of targets within one environment, and their membership.

use chrono::{DateTime, Utc};
use domain::ids::{DbSetId, EnvironmentId, TargetId};
use domain::model::{DbSet, Target};
use domain::values::Name;
use uuid::Uuid;

use crate::convert::{parse, unsigned};
use crate::targets::Row as TargetRow;
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    environment_id: Uuid,
    name: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for DbSet {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(DbSet {
            id: DbSetId::from_uuid(row.id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            name: parse("db_sets.name", &row.name)?,
            description: row.description,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(db_set.name = %name))]
pub async fn create(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    name: &Name,
    description: &str,
) -> StorageResult<DbSet> {
    sqlx::query_file_as!(
        Row,
        "../../sql/db_sets/create.sql",
        DbSetId::new().as_uuid(),
        environment.as_uuid(),
        name.as_str(),
        description
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(db_set.id = %id))]
pub async fn get(conn: &mut PgConnection, id: DbSetId) -> StorageResult<DbSet> {
    sqlx::query_file_as!(Row, "../../sql/db_sets/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("db set"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(db_set.name = %name))]
pub async fn find_by_name(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    name: &Name,
) -> StorageResult<Option<DbSet>> {
    sqlx::query_file_as!(Row, "../../sql/db_sets/find_by_name.sql", environment.as_uuid(), name.as_str())
        .fetch_optional(conn)
        .await?
        .map(DbSet::try_from)
        .transpose()
}

/// Db sets by name, of one environment or of all.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &mut PgConnection,
    environment: Option<EnvironmentId>,
    page: &PageRequest<Name>,
) -> StorageResult<Page<DbSet, Name>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/db_sets/list.sql",
        environment.map(|e| e.as_uuid()),
        page.after.as_ref().map(Name::as_str),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(DbSet::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |s| s.name.clone()))
}

#[tracing::instrument(skip_all, fields(db_set.id = %id))]
pub async fn update(conn: &mut PgConnection, id: DbSetId, name: &Name, description: &str) -> StorageResult<DbSet> {
    sqlx::query_file_as!(Row, "../../sql/db_sets/update.sql", id.as_uuid(), name.as_str(), description)
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("db set"))?
        .try_into()
}

/// Adds targets to a set; returns how many were new. A target of another environment is refused
/// ([`StorageError::Reference`]) and nothing is added.
#[tracing::instrument(skip_all, fields(db_set.id = %set, count = targets.len()))]
pub async fn add_members(conn: &mut PgConnection, set: DbSetId, targets: &[TargetId]) -> StorageResult<u64> {
    let ids: Vec<Uuid> = targets.iter().map(|t| t.as_uuid()).collect();
    let done = sqlx::query_file!("../../sql/db_sets/add_members.sql", set.as_uuid(), &ids).execute(conn).await?;
    Ok(done.rows_affected())
}

/// Removes targets from a set; returns how many were members.
#[tracing::instrument(skip_all, fields(db_set.id = %set, count = targets.len()))]
pub async fn remove_members(conn: &mut PgConnection, set: DbSetId, targets: &[TargetId]) -> StorageResult<u64> {
    let ids: Vec<Uuid> = targets.iter().map(|t| t.as_uuid()).collect();
    let done = sqlx::query_file!("../../sql/db_sets/remove_members.sql", set.as_uuid(), &ids).execute(conn).await?;
    Ok(done.rows_affected())
}

/// Members by target name, optionally only those whose name contains `search`.
#[tracing::instrument(skip_all, fields(db_set.id = %set))]
pub async fn list_members(
    conn: &mut PgConnection,
    set: DbSetId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> StorageResult<Page<Target, Name>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        TargetRow,
        "../../sql/db_sets/list_members.sql",
        set.as_uuid(),
        search,
        page.after.as_ref().map(Name::as_str),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(Target::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |t| t.name.clone()))
}

/// Targets of the set's environment that are not members, by name, optionally only those whose name
/// contains `search` (for choosing members to add).
#[tracing::instrument(skip_all, fields(db_set.id = %set))]
pub async fn list_non_members(
    conn: &mut PgConnection,
    set: DbSetId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> StorageResult<Page<Target, Name>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        TargetRow,
        "../../sql/db_sets/list_non_members.sql",
        set.as_uuid(),
        search,
        page.after.as_ref().map(Name::as_str),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(Target::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |t| t.name.clone()))
}

#[tracing::instrument(skip_all, fields(db_set.id = %set))]
pub async fn count_members(conn: &mut PgConnection, set: DbSetId) -> StorageResult<u64> {
    let count = sqlx::query_file_scalar!("../../sql/db_sets/count_members.sql", set.as_uuid()).fetch_one(conn).await?;
    unsigned("count", count)
}
