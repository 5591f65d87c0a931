//! Projects: ordered series of migrations with their history-table name.

use chrono::{DateTime, Utc};
use domain::ids::{ProjectId, UserId};
use domain::model::{Project, ProjectReview};
use domain::values::{Identifier, Name};
use uuid::Uuid;

use crate::convert::parse;
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    name: String,
    description: String,
    history_table: String,
    dialects: Vec<String>,
    lint_rules_off: Vec<String>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Project {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Project {
            id: ProjectId::from_uuid(row.id),
            name: parse("projects.name", &row.name)?,
            description: row.description,
            history_table: parse("projects.history_table", &row.history_table)?,
            review: ProjectReview {
                dialects: row.dialects.iter().map(|d| parse("projects.dialects", d)).collect::<StorageResult<_>>()?,
                rules_off: row.lint_rules_off,
            },
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(project.name = %name))]
pub async fn create(
    conn: &mut PgConnection,
    name: &Name,
    description: &str,
    history_table: &Identifier,
    review: &ProjectReview,
    created_by: UserId,
) -> StorageResult<Project> {
    sqlx::query_file_as!(
        Row,
        "../../sql/projects/create.sql",
        ProjectId::new().as_uuid(),
        name.as_str(),
        description,
        history_table.as_str(),
        &dialects(review),
        &review.rules_off,
        created_by.as_uuid()
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(project.id = %id))]
pub async fn get(conn: &mut PgConnection, id: ProjectId) -> StorageResult<Project> {
    sqlx::query_file_as!(Row, "../../sql/projects/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("project"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(project.name = %name))]
pub async fn find_by_name(conn: &mut PgConnection, name: &Name) -> StorageResult<Option<Project>> {
    sqlx::query_file_as!(Row, "../../sql/projects/find_by_name.sql", name.as_str())
        .fetch_optional(conn)
        .await?
        .map(Project::try_from)
        .transpose()
}

#[tracing::instrument(skip_all)]
pub async fn list(conn: &mut PgConnection, page: &PageRequest<Name>) -> StorageResult<Page<Project, Name>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(Row, "../../sql/projects/list.sql", page.after.as_ref().map(Name::as_str), limit)
        .fetch_all(conn)
        .await?;
    let items = rows.into_iter().map(Project::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |p| p.name.clone()))
}

#[tracing::instrument(skip_all, fields(project.id = %id))]
pub async fn update(
    conn: &mut PgConnection,
    id: ProjectId,
    description: &str,
    history_table: &Identifier,
    review: &ProjectReview,
) -> StorageResult<Project> {
    sqlx::query_file_as!(
        Row,
        "../../sql/projects/update.sql",
        id.as_uuid(),
        description,
        history_table.as_str(),
        &dialects(review),
        &review.rules_off
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("project"))?
    .try_into()
}

fn dialects(review: &ProjectReview) -> Vec<String> {
    review.dialects.iter().map(|d| d.as_str().to_owned()).collect()
}
