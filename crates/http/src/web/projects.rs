//! Project pages: the list with a create form, and a project's page to edit its description and how its
//! migrations are reviewed (dialects, switched-off rules). Creating and editing take a manager, as in the API.

use actix_web::http::StatusCode;
use actix_web::web;
use app::projects::{NewProjectInput, ProjectPatch};
use domain::enums::{Engine, Role};
use domain::ids::ProjectId;
use domain::model::Project;
use domain::values::Name;
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, Section, Viewer, layout, respond, see_other, when};

const FIELDS: &[&str] = &["name", "description", "history_table", "dialects", "lint_rules_off"];

#[derive(Debug, Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<String>,
}

async fn all_projects(state: &AppState, viewer: &Viewer) -> Result<Vec<Project>, crate::web::PageError> {
    Ok(app::projects::list_projects(&state.hub, &app::page::<Name>(None, Some(500)))
        .await
        .map_err(viewer.fail())?
        .items)
}

/// The review fields, shared by the create and edit forms.
fn review_fields(form: &Form, problems: &Problems) -> Markup {
    html! {
        (forms::checkboxes(form, problems, "dialects", "Written for (the SQL review runs each one's rules; a release to another engine is refused)", &forms::names(Engine::NAMES)))
        (forms::textarea(form, problems, "lint_rules_off", "SQL review rules switched off (optional)",
            Some("Rule names, separated by spaces, commas or lines, e.g. prefer-text-field. Syntax errors cannot be switched off."), 2))
    }
}

fn rules_off(form: &Form) -> Option<Vec<String>> {
    Some(
        form.get("lint_rules_off")
            .split([' ', ',', '\n', '\r', '\t'])
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

fn values(project: &Project) -> Form {
    let rules = project.review.rules_off.join(" ");
    let mut pairs: Vec<(&str, &str)> = vec![
        ("name", project.name.as_str()),
        ("description", project.description.as_str()),
        ("history_table", project.history_table.as_str()),
        ("lint_rules_off", rules.as_str()),
    ];
    pairs.extend(project.review.dialects.iter().map(|d| ("dialects", d.as_str())));
    Form::with(&pairs)
}

fn list_page(viewer: &Viewer, projects: &[Project], form: &Form, problems: &Problems, saved: Option<&str>) -> Markup {
    let manager = viewer.role() >= Role::Manager;
    let body = html! {
        h1 { "Projects" }
        @if let Some(name) = saved { p.success role="status" { "Project " strong { (name) } " saved." } }
        @if projects.is_empty() {
            p.empty { "No projects yet." @if manager { " Create the first one below." } @else { " A manager creates them." } }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "History table" }
                    th scope="col" { "Written for" }
                    th scope="col" { "Rules off" }
                    th scope="col" { "Migrations" }
                } }
                tbody {
                    @for p in projects {
                        tr {
                            td { a href={ "/projects/" (p.id) } { (p.name.as_str()) }
                                @if !p.description.is_empty() { br; span.muted { (p.description) } } }
                            td { code { (p.history_table.as_str()) } }
                            td { (p.review.dialects.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { @if p.review.rules_off.is_empty() { span.muted { "none" } } @else { (p.review.rules_off.len()) } }
                            td { a href={ "/migrations?project_id=" (p.id) } { "migrations" } }
                        }
                    }
                }
            }
        }
        @if manager {
            section.card aria-labelledby="new-project" {
                h2 id="new-project" { "New project" }
                (problems.summary())
                form method="post" action="/projects" {
                    (csrf(viewer))
                    (forms::input(form, problems, "name", "Name", Input { required: true, max_length: Some(100),
                        hint: Some("Lowercase letters, digits and dashes, e.g. orders."), ..Input::default() }))
                    (forms::input(form, problems, "description", "Description (optional)", Input { max_length: Some(2000), ..Input::default() }))
                    (forms::input(form, problems, "history_table", "History table", Input { max_length: Some(63),
                        hint: Some("The table that records applied migrations on every target; it cannot be changed later."), ..Input::default() }))
                    (review_fields(form, problems))
                    p { button type="submit" { "Create project" } }
                }
            }
        }
    };
    layout(viewer, Section::Migrations, "Projects", body)
}

/// `GET /projects`.
pub(crate) async fn projects(state: web::Data<AppState>, viewer: Viewer, q: web::Query<SavedQuery>) -> Page {
    let projects = all_projects(&state, &viewer).await?;
    let saved = q.saved.as_deref().filter(|n| Name::parse((*n).to_owned()).is_ok());
    let form = Form::with(&[("history_table", "migrate_hub_history"), ("dialects", "postgres"), ("dialects", "mysql")]);
    Ok(respond(StatusCode::OK, list_page(&viewer, &projects, &form, &Problems::default(), saved)))
}

/// `POST /projects`.
pub(crate) async fn create_project(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let name = form.needed("name", "name", &mut problems);
    let dialects = Some(form.checked::<Engine>("dialects", "dialect", &mut problems));
    if let (true, Some(name)) = (problems.is_empty(), name) {
        let input = NewProjectInput {
            name,
            description: form.text("description"),
            history_table: form.text("history_table"),
            dialects,
            lint_rules_off: rules_off(&form),
        };
        match app::projects::create_project(&state.hub, &viewer.caller, input).await {
            Ok(project) => return Ok(see_other(&format!("/projects?saved={}", project.name.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, FIELDS)?,
        }
    }
    let projects = all_projects(&state, &viewer).await?;
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, list_page(&viewer, &projects, &form, &problems, None)))
}

fn project_page(viewer: &Viewer, project: &Project, form: &Form, problems: &Problems) -> Markup {
    let manager = viewer.role() >= Role::Manager;
    let body = html! {
        p.muted { a href="/projects" { "Projects" } " / " (project.name.as_str()) }
        h1 { "Project " (project.name.as_str()) }
        p.muted { "Created " (when(project.created_at)) ", last changed " (when(project.updated_at)) "." }
        dl.facts {
            dt { "History table" } dd { code { (project.history_table.as_str()) } " (fixed: targets hold history under this name)" }
        }
        div.actions {
            a.button.secondary href={ "/migrations?project_id=" (project.id) } { "Migrations" }
            a.button.secondary href={ "/projects/" (project.id) "/import" } { "Import a directory" }
            a.button.secondary href={ "/runs/new?project_id=" (project.id) } { "Request a release" }
        }
        section.card {
            h2 { "Description and SQL review" }
            (problems.summary())
            @if manager {
                form method="post" action={ "/projects/" (project.id) } {
                    (csrf(viewer))
                    (forms::input(form, problems, "description", "Description", Input { max_length: Some(2000), ..Input::default() }))
                    (review_fields(form, problems))
                    p { button type="submit" { "Save project" } }
                }
            } @else {
                p { "Written for " (project.review.dialects.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(" and ")) "." }
                @if !project.review.rules_off.is_empty() {
                    p { "Rules switched off: " @for r in &project.review.rules_off { code { (r) } " " } }
                }
            }
        }
    };
    layout(viewer, Section::Migrations, project.name.as_str(), body)
}

/// `GET /projects/{id}`.
pub(crate) async fn project(state: web::Data<AppState>, viewer: Viewer, id: web::Path<ProjectId>) -> Page {
    let project = app::projects::get_project(&state.hub, *id).await.map_err(viewer.fail())?;
    Ok(respond(StatusCode::OK, project_page(&viewer, &project, &values(&project), &Problems::default())))
}

/// `POST /projects/{id}`: description, dialects and switched-off rules (the name and history table stay).
pub(crate) async fn update_project(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<ProjectId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let project = app::projects::get_project(&state.hub, *id).await.map_err(viewer.fail())?;
    let mut problems = Problems::default();
    let patch = ProjectPatch {
        description: Some(form.get("description").trim().to_owned()),
        dialects: Some(form.checked::<Engine>("dialects", "dialect", &mut problems)),
        lint_rules_off: rules_off(&form),
    };
    if problems.is_empty() {
        match app::projects::update_project(&state.hub, &viewer.caller, project.id, patch).await {
            Ok(saved) => return Ok(see_other(&format!("/projects?saved={}", saved.name.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, FIELDS)?,
        }
    }
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, project_page(&viewer, &project, &form, &problems)))
}
