//! Migration pages: the list with where each migration stands per environment, the detail (SQL with line
//! numbers, the statement split, validation messages, versions and the diff between two), and the forms
//! that create a migration or a new version of one.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use domain::enums::{Role, TransactionMode};
use domain::ids::{MigrationId, ProjectId};
use domain::model::{Migration, MigrationVersion, Project, Severity, TargetOfMigration};
use domain::values::{Name, VersionKey};
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{
    Page, PageError, Section, Viewer, layout, left_as, next_link, respond, see_other, short, short_hex, sql, status,
    when,
};

/// The projects, by name (at most one page of 500: more would not fit a select either).
async fn projects(state: &AppState, viewer: &Viewer) -> Result<Vec<Project>, PageError> {
    let page =
        app::projects::list_projects(&state.hub, &app::page::<Name>(None, Some(500))).await.map_err(viewer.fail())?;
    Ok(page.items)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    project_id: Option<String>,
    after: Option<String>,
}

/// `GET /migrations`: a project's migrations, with each one's newest run per environment.
pub(crate) async fn migrations(state: web::Data<AppState>, viewer: Viewer, q: web::Query<ListQuery>) -> Page {
    let projects = projects(&state, &viewer).await?;
    let chosen = q.project_id.as_deref().and_then(|p| p.parse::<ProjectId>().ok());
    let project = chosen.and_then(|id| projects.iter().find(|p| p.id == id)).or(projects.first());
    let environments = app::inventory::list_environments(&state.hub, &app::page::<Name>(None, Some(500)))
        .await
        .map_err(viewer.fail())?
        .items;
    let (items, next) = match project {
        None => (Vec::new(), None),
        Some(project) => {
            let after = q.after.as_deref().and_then(|a| a.parse::<VersionKey>().ok());
            let page = app::migrations::list_migrations(&state.hub, project.id, &app::page(after, Some(100)))
                .await
                .map_err(viewer.fail())?;
            (page.items, page.next.map(|k| k.as_str().to_owned()))
        }
    };
    let ids: Vec<MigrationId> = items.iter().map(|m| m.id).collect();
    let latest = app::migrations::latest_runs(&state.hub, &ids).await.map_err(viewer.fail())?;
    let runs: HashMap<_, _> = latest.iter().map(|l| ((l.migration, l.environment), l)).collect();
    let options: Vec<(String, String)> =
        projects.iter().map(|p| (p.id.to_string(), p.name.as_str().to_owned())).collect();
    let filter = Form::with(&[("project_id", &project.map(|p| p.id.to_string()).unwrap_or_default())]);
    let body = html! {
        h1 { "Migrations" }
        @if projects.is_empty() {
            p.empty { "There are no projects yet. " a href="/projects" { "Projects" } ": a manager creates one there." }
        } @else {
            form.filters method="get" action="/migrations" {
                (forms::select(&filter, &Problems::default(), "project_id", "Project", &options, None))
                button.secondary type="submit" { "Show" }
                a.button href={ "/migrations/new?project_id=" (filter.get("project_id")) } { "New migration" }
                a.button.secondary href={ "/projects/" (filter.get("project_id")) } { "Project settings" }
                a.button.secondary href="/projects" { "All projects" }
            }
            @if items.is_empty() {
                p.empty { "No migrations in this project yet." }
            } @else {
                div.actions {
                    a.button href={ "/runs/new?project_id=" (filter.get("project_id")) } { "Request a release of this project" }
                }
                table {
                    caption.muted { "Newest run of each migration per environment" }
                    thead { tr {
                        th scope="col" { "Version key" }
                        th scope="col" { "Name" }
                        @for env in &environments { th scope="col" { (env.name.as_str()) } }
                        th scope="col" { "Created" }
                    } }
                    tbody {
                        @for m in &items {
                            tr {
                                td { a href={ "/migrations/" (m.id) } { code { (m.version_key.as_str()) } } }
                                td { (m.name.as_str()) }
                                @for env in &environments {
                                    td {
                                        @match runs.get(&(m.id, env.id)) {
                                            Some(run) => a href={ "/runs/" (run.run) } title={ (run.direction.as_str()) " run" } {
                                                (status(run.status.as_str()))
                                            },
                                            None => span.muted { "never run" },
                                        }
                                    }
                                }
                                td { (when(m.created_at)) }
                            }
                        }
                    }
                }
                (next_link("/migrations", &[("project_id", filter.get("project_id").to_owned())], next))
            }
        }
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Migrations, "Migrations", body)))
}

const MODES: &[&str] = TransactionMode::NAMES;

fn sql_fields(form: &Form, problems: &Problems) -> Markup {
    html! {
        (forms::textarea(form, problems, "up_sql", "Up SQL", Some("Applied by the run, statement by statement."), 14))
        (forms::textarea(form, problems, "down_sql", "Down SQL (optional)", Some("Reverts the up SQL; a down run needs its own approval."), 8))
        (forms::select(form, problems, "transaction_mode", "Transaction mode", &forms::names(MODES), None))
    }
}

fn migration_form(viewer: &Viewer, projects: &[Project], form: &Form, problems: &Problems) -> Markup {
    let options: Vec<(String, String)> =
        projects.iter().map(|p| (p.id.to_string(), p.name.as_str().to_owned())).collect();
    let body = html! {
        h1 { "New migration" }
        (problems.summary())
        form.card method="post" action="/migrations/new" {
            (csrf(viewer))
            (forms::select(form, problems, "project_id", "Project", &options, Some("Choose a project")))
            (forms::input(form, problems, "version_key", "Version key", Input {
                hint: Some("Sorts the migrations of the project, e.g. 20261121_0001."), required: true, max_length: Some(200), ..Input::default()
            }))
            (forms::input(form, problems, "name", "Name", Input { required: true, max_length: Some(200), ..Input::default() }))
            (sql_fields(form, problems))
            p { button type="submit" { "Create migration" } }
        }
    };
    layout(viewer, Section::Migrations, "New migration", body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewQuery {
    project_id: Option<String>,
}

/// `GET /migrations/new`.
pub(crate) async fn new_migration(state: web::Data<AppState>, viewer: Viewer, q: web::Query<NewQuery>) -> Page {
    let projects = projects(&state, &viewer).await?;
    let form =
        Form::with(&[("project_id", q.project_id.as_deref().unwrap_or_default()), ("transaction_mode", "transaction")]);
    Ok(respond(StatusCode::OK, migration_form(&viewer, &projects, &form, &Problems::default())))
}

const MIGRATION_FIELDS: &[&str] = &["project_id", "version_key", "name", "up_sql", "down_sql", "transaction_mode"];

/// `POST /migrations/new`.
pub(crate) async fn create_migration(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let project_id = form.required::<ProjectId>("project_id", "project", &mut problems);
    let mode = form.optional::<TransactionMode>("transaction_mode", "transaction mode", &mut problems);
    let version_key = form.needed("version_key", "version key", &mut problems);
    let name = form.needed("name", "name", &mut problems);
    if form.raw("up_sql").is_none() {
        problems.add("up_sql", "enter the up SQL");
    }
    if let (true, Some(project_id), Some(version_key), Some(name)) =
        (problems.is_empty(), project_id, version_key, name)
    {
        let input = app::migrations::NewMigrationInput {
            project_id,
            version_key,
            name,
            up_sql: form.get("up_sql").to_owned(),
            down_sql: form.raw("down_sql"),
            transaction_mode: mode,
        };
        match app::migrations::create_migration(&state.hub, &viewer.caller, state.limits, input).await {
            Ok((migration, _)) => return Ok(see_other(&format!("/migrations/{}", migration.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, MIGRATION_FIELDS)?,
        }
    }
    let projects = projects(&state, &viewer).await?;
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, migration_form(&viewer, &projects, &form, &problems)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DetailQuery {
    version: Option<u32>,
    compare: Option<u32>,
}

fn messages(version: &MigrationVersion) -> Markup {
    let risk = domain::lint::risk(version.lint_results.iter().filter(|m| m.is_finding()));
    html! {
        p id="version-risk" { "SQL review risk: " strong class=(format!("risk-{risk}")) { (risk) } }
        @if version.lint_results.is_empty() {
            p.empty { "No messages." }
        } @else {
            ul.messages {
                @for m in &version.lint_results {
                    @let severity = if m.ignored { "ignored" } else {
                        match m.severity { Severity::Info => "info", Severity::Warning => "warning", Severity::Error => "error" }
                    };
                    li class=(severity) {
                        strong { (severity) } " · " code { (m.code) } " · " (m.direction.as_str())
                        @if let Some(i) = m.statement_index { " · statement " (i + 1) }
                        @if let Some(line) = m.line { " · line " (line) @if let Some(c) = m.column { ", column " (c) } }
                        @if let Some(engine) = m.engine { " · " (engine) }
                        ": " (m.message)
                        @if let Some(help) = &m.help { br; span.hint { (help) } }
                    }
                }
            }
        }
    }
}

/// The content of one version: SQL, statements, messages.
pub(crate) fn version_content(version: &MigrationVersion) -> Markup {
    html! {
        dl.facts {
            dt { "Transaction mode" } dd { (version.transaction_mode.as_str().replace('_', " ")) }
            dt { "Up checksum" } dd { code { (version.checksums.up.to_hex()) } }
            dt { "Down checksum" } dd {
                @match version.checksums.down { Some(c) => code { (c.to_hex()) }, None => span.muted { "no down SQL" } }
            }
        }
        h3 { "Up SQL" }
        (sql::code(&version.up_sql, "Up SQL"))
        h3 { "Down SQL" }
        @match &version.down_sql {
            Some(down) => (sql::code(down, "Down SQL")),
            None => p.empty { "None: this migration cannot be reverted by a down run." },
        }
        h3 { "Statements" }
        div.grid2 {
            div { h4 { "Up" } (sql::statements(&version.up_sql, &version.up_statements)) }
            div { h4 { "Down" } (sql::statements(version.down_sql.as_deref().unwrap_or_default(), &version.down_statements)) }
        }
        h3 { "Validation messages" }
        (messages(version))
    }
}

/// `GET /migrations/{id}`: one migration, one of its versions (the newest by default), and optionally the
/// diff from another version.
pub(crate) async fn migration(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<MigrationId>,
    q: web::Query<DetailQuery>,
) -> Page {
    let (migration, latest) = app::migrations::get_migration(&state.hub, *id).await.map_err(viewer.fail())?;
    let project = app::projects::get_project(&state.hub, migration.project_id).await.map_err(viewer.fail())?;
    let versions = app::migrations::list_versions(&state.hub, migration.id, &app::page::<u32>(None, Some(500)))
        .await
        .map_err(viewer.fail())?
        .items;
    let version = match (q.version, latest) {
        (Some(n), _) => app::migrations::get_version(&state.hub, migration.id, n).await.map_err(viewer.fail())?,
        (None, Some(latest)) => latest,
        (None, None) => return Err(PageError(crate::error::ApiError::NotFound { what: "migration version" })),
    };
    let compare = match q.compare {
        Some(n) if n != version.version_no => {
            Some(app::migrations::get_version(&state.hub, migration.id, n).await.map_err(viewer.fail())?)
        }
        _ => None,
    };
    let newest = versions.iter().map(|v| v.version_no).max().unwrap_or(version.version_no);
    let targets = app::migrations::status_per_target(&state.hub, migration.id).await.map_err(viewer.fail())?;
    let shown = Shown { migration: &migration, project: &project, versions: &versions, version: &version, newest };
    let body = detail(&viewer, &shown, compare.as_ref(), &targets);
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Migrations, migration.name.as_str(), body)))
}

/// What a migration's page is about: the migration, its project, its versions and the one shown.
struct Shown<'a> {
    migration: &'a Migration,
    project: &'a Project,
    versions: &'a [MigrationVersion],
    version: &'a MigrationVersion,
    newest: u32,
}

fn detail(
    viewer: &Viewer,
    shown: &Shown<'_>,
    compare: Option<&MigrationVersion>,
    targets: &[TargetOfMigration],
) -> Markup {
    let Shown { migration, project, versions, version, newest } = *shown;
    let admin = viewer.role() >= Role::Admin;
    let options: Vec<(String, String)> =
        versions.iter().map(|v| (v.version_no.to_string(), format!("version {}", v.version_no))).collect();
    let default_compare = version.version_no.saturating_sub(1).max(1).to_string();
    let compare_form = Form::with(&[
        ("version", &version.version_no.to_string()),
        ("compare", &compare.map_or(default_compare, |c| c.version_no.to_string())),
    ]);
    html! {
        p.muted { a href={ "/migrations?project_id=" (project.id) } { (project.name.as_str()) } " / migrations" }
        h1 { code { (migration.version_key.as_str()) } " " (migration.name.as_str()) }
        div.actions {
            a.button href={ "/runs/new?migration_id=" (migration.id) } { "Request a run" }
            a.button.secondary href={ "/migrations/" (migration.id) "/versions/new" } { "New version" }
        }
        @if version.version_no != newest {
            p.notice { "You are looking at version " (version.version_no) "; the newest is "
                a href={ "/migrations/" (migration.id) } { "version " (newest) } "." }
        }
        section.card {
            h2 { "Versions" }
            table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Created" } th scope="col" { "Up checksum" } th scope="col" { "SQL review risk" } th scope="col" { "Messages" } } }
                tbody {
                    @for v in versions {
                        tr {
                            td { a href={ "/migrations/" (migration.id) "?version=" (v.version_no) } { "version " (v.version_no) } }
                            td { (when(v.created_at)) }
                            td { code { (short_hex(&v.checksums.up.to_hex())) } }
                            @let risk = domain::lint::risk(v.lint_results.iter().filter(|m| m.is_finding()));
                            td { span class=(format!("risk-{risk}")) { (risk) } }
                            td.num { (v.lint_results.len()) }
                        }
                    }
                }
            }
            @if versions.len() > 1 {
                h3 id="diff" { "Compare versions" }
                form.filters method="get" action={ "/migrations/" (migration.id) } {
                    (forms::select(&compare_form, &Problems::default(), "compare", "From", &options, None))
                    (forms::select(&compare_form, &Problems::default(), "version", "To", &options, None))
                    button.secondary type="submit" { "Show the difference" }
                }
                @if let Some(old) = compare {
                    h4 { "Up SQL: version " (old.version_no) " → version " (version.version_no) }
                    (sql::diff(&old.up_sql, &version.up_sql))
                    h4 { "Down SQL: version " (old.version_no) " → version " (version.version_no) }
                    (sql::diff(old.down_sql.as_deref().unwrap_or_default(), version.down_sql.as_deref().unwrap_or_default()))
                }
            }
        }
        section.card {
            h2 id="targets" { "On targets" }
            p { "Where the hub's runs left this migration, per target: the newest run that ended it there." }
            @if targets.is_empty() {
                p.muted { "No run has reached a target with it yet." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Environment" } th scope="col" { "Target" } th scope="col" { "State" }
                        th scope="col" { "Version" } th scope="col" { "When" } th scope="col" { "Run" }
                    } }
                    tbody {
                        @for t in targets {
                            tr {
                                td { (t.environment_name.as_str()) }
                                td {
                                    @if admin { a href={ "/admin/targets/" (t.target_id) } { (t.target_name.as_str()) } }
                                    @else { (t.target_name.as_str()) }
                                }
                                td { span class={ "state state-" (t.state.as_str()) } { (left_as(t.state)) } }
                                td.num { (t.version_no) }
                                td { (when(t.finished_at)) }
                                td { a href={ "/runs/" (t.run_id) } title=(t.run_id) { code { (short(&t.run_id)) } } }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Version " (version.version_no) }
            p.muted { "Created " (when(version.created_at)) }
            (version_content(version))
        }
    }
}

fn version_form(viewer: &Viewer, migration: &Migration, form: &Form, problems: &Problems) -> Markup {
    let body = html! {
        p.muted { a href={ "/migrations/" (migration.id) } { code { (migration.version_key.as_str()) } " " (migration.name.as_str()) } }
        h1 { "New version" }
        p { "A new version replaces the content of runs not yet started; their approvals stop counting and must be given again." }
        (problems.summary())
        form.card method="post" action={ "/migrations/" (migration.id) "/versions/new" } {
            (csrf(viewer))
            (sql_fields(form, problems))
            p { button type="submit" { "Save version" } }
        }
    };
    layout(viewer, Section::Migrations, "New version", body)
}

/// `GET /migrations/{id}/versions/new`: the newest content, to edit.
pub(crate) async fn new_version(state: web::Data<AppState>, viewer: Viewer, id: web::Path<MigrationId>) -> Page {
    let (migration, latest) = app::migrations::get_migration(&state.hub, *id).await.map_err(viewer.fail())?;
    let form = match &latest {
        Some(v) => Form::with(&[
            ("up_sql", &v.up_sql),
            ("down_sql", v.down_sql.as_deref().unwrap_or_default()),
            ("transaction_mode", v.transaction_mode.as_str()),
        ]),
        None => Form::default(),
    };
    Ok(respond(StatusCode::OK, version_form(&viewer, &migration, &form, &Problems::default())))
}

/// `POST /migrations/{id}/versions/new`.
pub(crate) async fn create_version(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<MigrationId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (migration, _) = app::migrations::get_migration(&state.hub, *id).await.map_err(viewer.fail())?;
    let mut problems = Problems::default();
    let mode = form.optional::<TransactionMode>("transaction_mode", "transaction mode", &mut problems);
    if form.raw("up_sql").is_none() {
        problems.add("up_sql", "enter the up SQL");
    }
    if problems.is_empty() {
        let input = app::migrations::VersionInput {
            up_sql: form.get("up_sql").to_owned(),
            down_sql: form.raw("down_sql"),
            transaction_mode: mode,
        };
        match app::migrations::create_version(&state.hub, &viewer.caller, state.limits, migration.id, input).await {
            Ok((version, _)) => {
                return Ok(see_other(&format!("/migrations/{}?version={}", migration.id, version.version_no)));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, MIGRATION_FIELDS)?,
        }
    }
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, version_form(&viewer, &migration, &form, &problems)))
}
