//! Projects: ordered series of migrations, each with the name of its history table on the targets.

use audit::Action;
use domain::enums::Role;
use domain::ids::ProjectId;
use domain::model::Project;
use domain::policy::has_role;
use domain::values::{Identifier, Name};
use serde::Deserialize;
use serde_json::json;
use storage::{Page, PageRequest};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewProjectInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The history table on every target (default `migrate_hub_history`).
    #[serde(default)]
    pub history_table: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectPatch {
    #[serde(default)]
    pub description: Option<String>,
}

fn description(text: Option<String>) -> AppResult<String> {
    crate::free_text("description", text)
}

/// Creating a project decides where history lives on every target, so it takes a manager or an admin.
pub async fn create_project(hub: &Hub, caller: &Caller, input: NewProjectInput) -> AppResult<Project> {
    has_role(&caller.actor, Role::Manager)?;
    let name = Name::parse(input.name).map_err(AppError::value("name"))?;
    let description = description(input.description)?;
    let history_table = Identifier::parse(input.history_table.unwrap_or_else(|| "migrate_hub_history".to_owned()))
        .map_err(AppError::value("history_table"))?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let project = storage::projects::create(&mut tx, &name, &description, &history_table, caller.actor.user_id).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::ProjectCreate,
        "project",
        project.id,
        json!({"name": project.name.as_str(), "history_table": project.history_table.as_str()}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(project)
}

/// The history table is not editable: targets already hold history under the old name.
pub async fn update_project(hub: &Hub, caller: &Caller, id: ProjectId, patch: ProjectPatch) -> AppResult<Project> {
    has_role(&caller.actor, Role::Manager)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let current = storage::projects::get(&mut tx, id).await?;
    let description = match patch.description {
        Some(d) => description(Some(d))?,
        None => current.description.clone(),
    };
    let project = storage::projects::update(&mut tx, id, &description, &current.history_table).await?;
    record(&mut tx, hub, caller, Action::ProjectUpdate, "project", id, json!({"name": project.name.as_str()})).await?;
    tx.commit().await.map_err(db)?;
    Ok(project)
}

pub async fn get_project(hub: &Hub, id: ProjectId) -> AppResult<Project> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::projects::get(&mut conn, id).await?)
}

pub async fn list_projects(hub: &Hub, page: &PageRequest<Name>) -> AppResult<Page<Project, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::projects::list(&mut conn, page).await?)
}
