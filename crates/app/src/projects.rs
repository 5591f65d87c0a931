//! Projects: ordered series of migrations, each with the name of its history table on the targets.

use audit::Action;
use domain::enums::{Engine, Role};
use domain::error_code::ErrorCode;
use domain::ids::ProjectId;
use domain::model::{Project, ProjectReview};
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
    /// The engines its migrations are written for (default both): each version is reviewed with each one's
    /// rules, and a release to targets of another engine is refused.
    #[serde(default)]
    pub dialects: Option<Vec<Engine>>,
    /// SQL review rules switched off for every version of the project (default none).
    #[serde(default)]
    pub lint_rules_off: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectPatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub dialects: Option<Vec<Engine>>,
    #[serde(default)]
    pub lint_rules_off: Option<Vec<String>>,
}

/// The most rules a project may switch off.
const MAX_RULES_OFF: usize = 100;

/// A project's review settings from a request, checked: at least one dialect; known rule names, and never
/// the errors (a statement that does not parse cannot be switched off, only let through by an admin).
pub fn project_review(
    dialects: Option<Vec<Engine>>,
    rules_off: Option<Vec<String>>,
    current: &ProjectReview,
) -> AppResult<ProjectReview> {
    let dialects = match dialects {
        None => current.dialects.clone(),
        Some(list) => {
            let chosen: Vec<Engine> = Engine::ALL.iter().copied().filter(|e| list.contains(e)).collect();
            if chosen.is_empty() {
                return Err(AppError::invalid(
                    "dialects",
                    ErrorCode::Missing,
                    "name at least one dialect the migrations are written for: postgres, mysql",
                ));
            }
            chosen
        }
    };
    let rules_off = match rules_off {
        None => current.rules_off.clone(),
        Some(mut rules) => {
            rules.sort();
            rules.dedup();
            if rules.len() > MAX_RULES_OFF {
                return Err(AppError::invalid(
                    "lint_rules_off",
                    ErrorCode::OutOfRange,
                    format!("at most {MAX_RULES_OFF} rules may be switched off"),
                ));
            }
            if let Some(unknown) = rules.iter().find(|r| !domain::lint::may_switch_off(r)) {
                return Err(AppError::invalid(
                    "lint_rules_off",
                    ErrorCode::UnknownRule,
                    format!(
                        "`{unknown}` is not a rule of the SQL review that may be switched off (syntax errors \
                         cannot be)"
                    ),
                ));
            }
            rules
        }
    };
    Ok(ProjectReview { dialects, rules_off })
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
    let review = project_review(input.dialects, input.lint_rules_off, &ProjectReview::default())?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let project =
        storage::projects::create(&mut tx, &name, &description, &history_table, &review, caller.actor.user_id).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::ProjectCreate,
        "project",
        project.id,
        json!({
            "name": project.name.as_str(), "history_table": project.history_table.as_str(),
            "dialects": review_details(&project.review)["dialects"], "lint_rules_off": project.review.rules_off,
        }),
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
    let review = project_review(patch.dialects, patch.lint_rules_off, &current.review)?;
    let project = storage::projects::update(&mut tx, id, &description, &current.history_table, &review).await?;
    let mut details = json!({"name": project.name.as_str()});
    if review != current.review {
        details["review"] = json!({"from": review_details(&current.review), "to": review_details(&review)});
    }
    record(&mut tx, hub, caller, Action::ProjectUpdate, "project", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(project)
}

fn review_details(review: &ProjectReview) -> serde_json::Value {
    json!({
        "dialects": review.dialects.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "lint_rules_off": review.rules_off,
    })
}

pub async fn get_project(hub: &Hub, id: ProjectId) -> AppResult<Project> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::projects::get(&mut conn, id).await?)
}

pub async fn list_projects(hub: &Hub, page: &PageRequest<Name>) -> AppResult<Page<Project, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::projects::list(&mut conn, page).await?)
}
