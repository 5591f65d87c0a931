//! Db sets (admins): names, descriptions and membership editing for sets of thousands of targets.

use actix_web::http::StatusCode;
use actix_web::web;
use domain::ids::{DbSetId, EnvironmentId, TargetId};
use domain::model::{DbSet, Environment, Target};
use domain::values::Name;
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, PageError, Section, Viewer, layout, next_link, respond, see_other, when};

use super::{PAGE, chosen, env_options, environments};

const SET_FIELDS: &[&str] = &["environment_id", "name", "description"];

#[derive(Debug, Deserialize)]
pub(crate) struct SetsQuery {
    environment_id: Option<String>,
    after: Option<String>,
}

fn db_sets_page(
    viewer: &Viewer,
    envs: &[Environment],
    env: Option<&Environment>,
    sets: &[DbSet],
    next: Option<String>,
    form: &Form,
    problems: &Problems,
) -> Markup {
    let filter = Form::with(&[("environment_id", &env.map(|e| e.id.to_string()).unwrap_or_default())]);
    let body = html! {
        h1 { "Db sets" }
        @match env {
            None => p.empty { "There are no environments yet. " a href="/admin/environments#new" { "Create one" } " first." },
            Some(env) => {
                form.filters method="get" action="/admin/db-sets" {
                    (forms::select(&filter, &Problems::default(), "environment_id", "Environment", &env_options(envs), None))
                    button.secondary type="submit" { "Show" }
                }
                @if sets.is_empty() {
                    p.empty { "No db sets in " (env.name.as_str()) " yet." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Created" } } }
                        tbody {
                            @for s in sets {
                                tr {
                                    td { a href={ "/admin/db-sets/" (s.id) } { (s.name.as_str()) } }
                                    td { (s.description) }
                                    td { (when(s.created_at)) }
                                }
                            }
                        }
                    }
                    (next_link("/admin/db-sets", &[("environment_id", env.id.to_string())], next))
                }
                section.card {
                    h2 id="new" { "New db set in " (env.name.as_str()) }
                    (problems.summary())
                    form method="post" action="/admin/db-sets" {
                        (csrf(viewer))
                        input type="hidden" name="environment_id" value=(env.id);
                        (forms::input(form, problems, "name", "Name", Input { required: true, max_length: Some(100), hint: Some("Lower-case slug, unique in the environment."), ..Input::default() }))
                        (forms::input(form, problems, "description", "Description", Input { max_length: Some(2000), ..Input::default() }))
                        p { button type="submit" { "Create db set" } }
                    }
                }
            }
        }
    };
    layout(viewer, Section::Inventory, "Db sets", body)
}

async fn list_sets(
    state: &AppState,
    viewer: &Viewer,
    env: Option<&Environment>,
    after: Option<&str>,
) -> Result<(Vec<DbSet>, Option<String>), PageError> {
    let Some(env) = env else { return Ok((Vec::new(), None)) };
    let after = after.and_then(|a| Name::parse(a.to_owned()).ok());
    let page = app::inventory::list_db_sets(&state.hub, Some(env.id), &app::page(after, Some(PAGE)))
        .await
        .map_err(viewer.fail())?;
    Ok((page.items, page.next.map(|n| n.as_str().to_owned())))
}

/// `GET /admin/db-sets?environment_id=`.
pub(crate) async fn db_sets(state: web::Data<AppState>, viewer: Viewer, q: web::Query<SetsQuery>) -> Page {
    let envs = environments(&state, &viewer).await?;
    let env = chosen(&envs, q.environment_id.as_deref());
    let (sets, next) = list_sets(&state, &viewer, env.as_ref(), q.after.as_deref()).await?;
    let page = db_sets_page(&viewer, &envs, env.as_ref(), &sets, next, &Form::default(), &Problems::default());
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/db-sets`.
pub(crate) async fn create_db_set(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let env_id = form.required::<EnvironmentId>("environment_id", "environment", &mut problems);
    let name = form.needed("name", "name", &mut problems);
    if let (true, Some(environment_id), Some(name)) = (problems.is_empty(), env_id, name) {
        let input = app::inventory::NewDbSetInput {
            environment_id,
            name,
            description: form.text("description"),
            target_ids: Vec::new(),
        };
        match app::inventory::create_db_set(&state.hub, &viewer.caller, input).await {
            Ok(set) => return Ok(see_other(&format!("/admin/db-sets/{}", set.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, SET_FIELDS)?,
        }
    }
    let envs = environments(&state, &viewer).await?;
    let env = chosen(&envs, Some(form.get("environment_id")));
    let (sets, next) = list_sets(&state, &viewer, env.as_ref(), None).await?;
    let page = db_sets_page(&viewer, &envs, env.as_ref(), &sets, next, &form, &problems);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct MembersQuery {
    /// Filter and cursor of the member list.
    search: Option<String>,
    after: Option<String>,
    /// Filter and cursor of the list of targets to add.
    add_search: Option<String>,
    add_after: Option<String>,
    added: Option<u64>,
    removed: Option<u64>,
}

impl MembersQuery {
    fn search(&self) -> &str {
        self.search.as_deref().unwrap_or_default().trim()
    }

    fn add_search(&self) -> &str {
        self.add_search.as_deref().unwrap_or_default().trim()
    }
}

/// The id of the form the membership checkboxes belong to (they sit in two tables, each with its own
/// search form, and HTML forms do not nest).
const CHANGE_FORM: &str = "members-change";

fn target_rows(targets: &[Target], name: &str, label: &str) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { (label) } th scope="col" { "Name" } th scope="col" { "Host" } th scope="col" { "Database" } th scope="col" { "Labels" }
            } }
            tbody {
                @for t in targets {
                    tr {
                        td {
                            input type="checkbox" name=(name) value=(t.id) form=(CHANGE_FORM)
                                id={ (name) "-" (t.id) } aria-label={ (label) " " (t.name.as_str()) };
                        }
                        td { label for={ (name) "-" (t.id) } { (t.name.as_str()) } }
                        td { (t.host) ":" (t.port) }
                        td { (t.database) }
                        td { @for (k, v) in &t.labels { code { (k) "=" (v) } " " } }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // one page, its parts
fn members_page(
    viewer: &Viewer,
    set: &DbSet,
    count: u64,
    env: &Environment,
    q: &MembersQuery,
    members: (&[Target], Option<String>),
    candidates: (&[Target], Option<String>),
    problems: &Problems,
    edit: (&Form, &Problems),
) -> Markup {
    let path = format!("/admin/db-sets/{}", set.id);
    let filter = Form::with(&[("search", q.search()), ("add_search", q.add_search())]);
    let none = Problems::default();
    let body = html! {
        p.muted {
            a href={ "/admin/db-sets?environment_id=" (env.id) } { (env.name.as_str()) " db sets" } " / " (set.name.as_str())
        }
        h1 { "Db set " (set.name.as_str()) }
        @if !set.description.is_empty() { p { (set.description) } }
        p id="member-count" { strong { (count) } " members in " (env.name.as_str()) "." }
        @if q.added.is_some() || q.removed.is_some() {
            p.success role="status" { "Added " (q.added.unwrap_or(0)) ", removed " (q.removed.unwrap_or(0)) "." }
        }
        (problems.summary())
        form id=(CHANGE_FORM) method="post" action={ (path) "/members" } {
            (csrf(viewer))
            input type="hidden" name="search" value=(q.search());
            input type="hidden" name="add_search" value=(q.add_search());
        }
        div.grid2 {
            section.card {
                h2 { "Members" }
                form.filters method="get" action=(path) {
                    input type="hidden" name="add_search" value=(q.add_search());
                    (forms::input(&filter, &none, "search", "Name contains", Input { kind: "search", ..Input::default() }))
                    button.secondary type="submit" { "Search members" }
                }
                @if members.0.is_empty() {
                    p.empty { "No members" @if !q.search().is_empty() { " whose name contains “" (q.search()) "”" } "." }
                } @else {
                    (target_rows(members.0, "remove", "Remove"))
                    (next_link(&path, &[("search", q.search().to_owned()), ("add_search", q.add_search().to_owned())], members.1))
                }
            }
            section.card {
                h2 { "Other targets of " (env.name.as_str()) }
                form.filters method="get" action=(path) {
                    input type="hidden" name="search" value=(q.search());
                    (forms::input(&filter, &none, "add_search", "Name contains", Input { kind: "search", ..Input::default() }))
                    button.secondary type="submit" { "Search targets" }
                }
                @if candidates.0.is_empty() {
                    p.empty { "No other targets" @if !q.add_search().is_empty() { " whose name contains “" (q.add_search()) "”" } "." }
                } @else {
                    (target_rows(candidates.0, "add", "Add"))
                    @if let Some(next) = candidates.1 {
                        p.pager { a rel="next" href={ (path) "?" (add_page_query(q, &next)) } { "Next page →" } }
                    }
                }
            }
        }
        p { button type="submit" form=(CHANGE_FORM) { "Apply the ticked changes" } }
        section.card aria-labelledby="set-edit" {
            h2 id="set-edit" { "Name and description" }
            (edit.1.summary())
            form method="post" action=(path) {
                (csrf(viewer))
                (forms::input(edit.0, edit.1, "name", "Name", Input { required: true, max_length: Some(100),
                    hint: Some("Runs show the set by this name; runs already made keep pointing at the set."), ..Input::default() }))
                (forms::input(edit.0, edit.1, "description", "Description", Input { max_length: Some(2000), ..Input::default() }))
                p { button type="submit" { "Save" } }
            }
        }
    };
    layout(viewer, Section::Inventory, set.name.as_str(), body)
}

/// The query of the next page of candidates, keeping the member list where it is.
fn add_page_query(q: &MembersQuery, next: &str) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in
        [("search", q.search()), ("after", q.after.as_deref().unwrap_or_default()), ("add_search", q.add_search())]
    {
        if !v.is_empty() {
            url.append_pair(k, v);
        }
    }
    url.append_pair("add_after", next);
    url.finish()
}

async fn render_members(
    state: &AppState,
    viewer: &Viewer,
    id: DbSetId,
    q: &MembersQuery,
    problems: &Problems,
    status: StatusCode,
) -> Page {
    render_set(state, viewer, id, q, problems, status, None).await
}

/// The set's page; `edit`: the name and description form as typed, with its problems (else as stored).
async fn render_set(
    state: &AppState,
    viewer: &Viewer,
    id: DbSetId,
    q: &MembersQuery,
    problems: &Problems,
    status: StatusCode,
    edit: Option<(&Form, &Problems)>,
) -> Page {
    let (set, count) = app::inventory::get_db_set(&state.hub, id).await.map_err(viewer.fail())?;
    let env = app::inventory::get_environment(&state.hub, set.environment_id).await.map_err(viewer.fail())?;
    let cursor = |a: Option<&str>| a.and_then(|a| Name::parse(a.to_owned()).ok());
    let search = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let members = app::inventory::list_members(
        &state.hub,
        id,
        search(q.search()).as_deref(),
        &app::page(cursor(q.after.as_deref()), Some(PAGE)),
    )
    .await
    .map_err(viewer.fail())?;
    let candidates = app::inventory::list_non_members(
        &state.hub,
        id,
        search(q.add_search()).as_deref(),
        &app::page(cursor(q.add_after.as_deref()), Some(PAGE)),
    )
    .await
    .map_err(viewer.fail())?;
    let stored = Form::with(&[("name", set.name.as_str()), ("description", set.description.as_str())]);
    let none = Problems::default();
    let page = members_page(
        viewer,
        &set,
        count,
        &env,
        q,
        (&members.items, members.next.map(|n| n.as_str().to_owned())),
        (&candidates.items, candidates.next.map(|n| n.as_str().to_owned())),
        problems,
        edit.unwrap_or((&stored, &none)),
    );
    Ok(respond(status, page))
}

/// `GET /admin/db-sets/{id}?search=&after=&add_search=&add_after=`: members to remove, other targets to add.
pub(crate) async fn db_set(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<DbSetId>,
    q: web::Query<MembersQuery>,
) -> Page {
    render_members(&state, &viewer, *id, &q, &Problems::default(), StatusCode::OK).await
}

/// `POST /admin/db-sets/{id}`: a new name and description.
pub(crate) async fn update_db_set(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<DbSetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    if let Some(name) = form.needed("name", "name", &mut problems) {
        let patch = app::inventory::DbSetPatch {
            name: Some(name),
            description: Some(form.get("description").trim().to_owned()),
        };
        match app::inventory::update_db_set(&state.hub, &viewer.caller, *id, patch).await {
            Ok(set) => return Ok(see_other(&format!("/admin/db-sets/{}", set.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, &["name", "description"])?,
        }
    }
    let q = MembersQuery::default();
    render_set(
        &state,
        &viewer,
        *id,
        &q,
        &Problems::default(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some((&form, &problems)),
    )
    .await
}

/// `POST /admin/db-sets/{id}/members`: the ticked `add` and `remove` boxes, in one change.
pub(crate) async fn change_members(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<DbSetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let q =
        MembersQuery { search: form.text("search"), add_search: form.text("add_search"), ..MembersQuery::default() };
    let mut problems = Problems::default();
    let mut ids = |name: &str| -> Vec<TargetId> {
        let mut out = Vec::new();
        for value in form.all(name) {
            match value.parse::<TargetId>() {
                Ok(id) => out.push(id),
                Err(_) => problems.general(format!("{value:?} is not a target id")),
            }
        }
        out
    };
    let change = app::inventory::MembershipChange { add: ids("add"), remove: ids("remove") };
    if problems.is_empty() && change.add.is_empty() && change.remove.is_empty() {
        problems.general("Tick the targets to add or remove first.");
    }
    if problems.is_empty() {
        match app::inventory::change_members(&state.hub, &viewer.caller, *id, change).await {
            Ok(result) => {
                let mut url = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in [("search", q.search()), ("add_search", q.add_search())] {
                    if !v.is_empty() {
                        url.append_pair(k, v);
                    }
                }
                url.append_pair("added", &result.added.to_string());
                url.append_pair("removed", &result.removed.to_string());
                return Ok(see_other(&format!("/admin/db-sets/{}?{}", id, url.finish())));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, &[])?,
        }
    }
    render_members(&state, &viewer, *id, &q, &problems, StatusCode::UNPROCESSABLE_ENTITY).await
}
