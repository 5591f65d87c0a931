//! Targets (admins): connection settings, write-only secrets, the connection check, the history tables read
//! live, and the recoveries, adoptions and baselines requested from them.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web;
use app::inventory::{ConnectionTest, Password, TargetHistory};
use domain::enums::{Engine, TlsMode};
use domain::ids::{EnvironmentId, ProjectId, TargetId};
use domain::model::{Environment, MigrationOnTarget, SecretSource, Target};
use domain::values::Name;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, PageError, Section, Viewer, layout, left_as, next_link, respond, see_other, short, when};

use super::{PAGE, SavedQuery, chosen, env_options, environments, password_input};

const TARGET_FIELDS: &[&str] = &[
    "environment_id",
    "name",
    "engine",
    "host",
    "port",
    "database",
    "schema",
    "username",
    "tls_mode",
    "labels",
    "variables",
    "password",
    "secret_ref",
];

/// `key=value` lines as a map; a problem for a line without `=`.
fn map_field(form: &Form, name: &'static str, problems: &mut Problems) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (n, line) in form.get(name).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => {
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            None => problems.add(name, format!("line {} is not key=value", n + 1)),
        }
    }
    map
}

fn map_text(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn secret_status(secret: &SecretSource) -> &'static str {
    match secret {
        SecretSource::None => "none",
        SecretSource::Sealed { .. } => "sealed",
        SecretSource::Reference { .. } => "reference",
    }
}

/// The connection fields shared by the create and edit forms.
fn connection_fields(form: &Form, problems: &Problems) -> Markup {
    let text = |max| Input { required: true, max_length: Some(max), ..Input::default() };
    html! {
        (forms::input(form, problems, "name", "Name", Input { hint: Some("Lower-case slug, unique in the environment."), ..text(100) }))
        (forms::input(form, problems, "host", "Host", text(253)))
        (forms::input(form, problems, "port", "Port", Input { kind: "number", required: true, min: Some(1), max: Some(65535), ..Input::default() }))
        (forms::input(form, problems, "database", "Database", text(128)))
        (forms::input(form, problems, "schema", "Schema (optional)", Input { hint: Some("Postgres: the schema migrations run in."), max_length: Some(63), ..Input::default() }))
        (forms::input(form, problems, "username", "Username", text(128)))
        (forms::select(form, problems, "tls_mode", "TLS mode", &forms::names(TlsMode::NAMES), None))
        (forms::textarea(form, problems, "labels", "Labels", Some("One key=value per line."), 3))
        (forms::textarea(form, problems, "variables", "Variables", Some("Values for ${name} placeholders in migrations, one key=value per line."), 3))
        // The port follows the engine's default until typed.
        script src=(*crate::web::assets::SCRIPT_PATH) defer {}
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TargetsQuery {
    environment_id: Option<String>,
    search: Option<String>,
    after: Option<String>,
    saved: Option<String>,
    deleted: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one page, its parts
fn targets_page(
    viewer: &Viewer,
    envs: &[Environment],
    env: Option<&Environment>,
    search: &str,
    targets: &[Target],
    next: Option<String>,
    form: &Form,
    problems: &Problems,
    notice: Option<&str>,
) -> Markup {
    let filter =
        Form::with(&[("environment_id", &env.map(|e| e.id.to_string()).unwrap_or_default()), ("search", search)]);
    let none = Problems::default();
    let body = html! {
        h1 { "Targets" }
        @if let Some(notice) = notice { p.success role="status" { (notice) } }
        @match env {
            None => p.empty { "There are no environments yet. " a href="/admin/environments#new" { "Create one" } " first." },
            Some(env) => {
                form.filters method="get" action="/admin/targets" {
                    (forms::select(&filter, &none, "environment_id", "Environment", &env_options(envs), None))
                    (forms::input(&filter, &none, "search", "Name contains", Input { kind: "search", ..Input::default() }))
                    button.secondary type="submit" { "Show" }
                }
                @if targets.is_empty() {
                    p.empty { @if search.is_empty() { "No targets in " (env.name.as_str()) " yet." } @else { "No target name contains “" (search) "”." } }
                } @else {
                    table {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Engine" } th scope="col" { "Host" }
                            th scope="col" { "Database" } th scope="col" { "User" } th scope="col" { "TLS" }
                            th scope="col" { "Secret" } th scope="col" { "Labels" }
                        } }
                        tbody {
                            @for t in targets {
                                tr {
                                    td { a href={ "/admin/targets/" (t.id) } { (t.name.as_str()) } }
                                    td { (t.engine.as_str()) }
                                    td { (t.host) ":" (t.port) }
                                    td { (t.database) @if let Some(s) = &t.schema { " / " (s.as_str()) } }
                                    td { (t.username) }
                                    td { (t.tls_mode.as_str()) }
                                    td { (secret_status(&t.secret)) }
                                    td { @for (k, v) in &t.labels { code { (k) "=" (v) } " " } }
                                }
                            }
                        }
                    }
                    (next_link("/admin/targets", &[("environment_id", env.id.to_string()), ("search", search.to_owned())], next))
                }
                section.card {
                    h2 id="new" { "New target in " (env.name.as_str()) }
                    (problems.summary())
                    form method="post" action="/admin/targets" {
                        (csrf(viewer))
                        input type="hidden" name="environment_id" value=(env.id);
                        (forms::select(form, problems, "engine", "Engine", &forms::names(Engine::NAMES), None))
                        (connection_fields(form, problems))
                        (password_input(problems, "password", "Password (optional)", "Sealed at rest and never shown again. Leave blank for none or to give a reference."))
                        (forms::input(form, problems, "secret_ref", "Or a secret reference (optional)", Input { hint: Some("env:NAME or file:/path, read by the workers."), max_length: Some(1000), ..Input::default() }))
                        p { button type="submit" { "Create target" } }
                    }
                }
            }
        }
    };
    layout(viewer, Section::Inventory, "Targets", body)
}

async fn list_targets(
    state: &AppState,
    viewer: &Viewer,
    env: Option<&Environment>,
    search: &str,
    after: Option<&str>,
) -> Result<(Vec<Target>, Option<String>), PageError> {
    let Some(env) = env else { return Ok((Vec::new(), None)) };
    let after = after.and_then(|a| Name::parse(a.to_owned()).ok());
    let search = (!search.is_empty()).then_some(search);
    let page = app::inventory::list_targets(&state.hub, env.id, search, &app::page(after, Some(PAGE)))
        .await
        .map_err(viewer.fail())?;
    Ok((page.items, page.next.map(|n| n.as_str().to_owned())))
}

fn new_target_form() -> Form {
    Form::with(&[("engine", "postgres"), ("tls_mode", "prefer"), ("port", "5432")])
}

/// `GET /admin/targets?environment_id=&search=&after=`.
pub(crate) async fn targets(state: web::Data<AppState>, viewer: Viewer, q: web::Query<TargetsQuery>) -> Page {
    let envs = environments(&state, &viewer).await?;
    let env = chosen(&envs, q.environment_id.as_deref());
    let search = q.search.as_deref().unwrap_or_default().trim().to_owned();
    let (items, next) = list_targets(&state, &viewer, env.as_ref(), &search, q.after.as_deref()).await?;
    // Only a target name is shown back (a link cannot make the page say anything else).
    let name = |n: &Option<String>| n.as_deref().filter(|n| Name::parse((*n).to_owned()).is_ok()).map(str::to_owned);
    let notice = match (name(&q.saved), name(&q.deleted)) {
        (Some(saved), _) => Some(format!("Target {saved} saved.")),
        (None, Some(deleted)) => Some(format!("Target {deleted} deleted.")),
        (None, None) => None,
    };
    let page = targets_page(
        &viewer,
        &envs,
        env.as_ref(),
        &search,
        &items,
        next,
        &new_target_form(),
        &Problems::default(),
        notice.as_deref(),
    );
    Ok(respond(StatusCode::OK, page))
}

/// The connection settings typed in `form`, as a patch (every field given).
fn target_patch(form: &Form, problems: &mut Problems) -> app::inventory::TargetPatch {
    for (name, what) in [("name", "name"), ("host", "host"), ("database", "database"), ("username", "username")] {
        form.needed(name, what, problems);
    }
    app::inventory::TargetPatch {
        name: form.text("name"),
        host: form.text("host"),
        port: form.required::<u16>("port", "port", problems),
        database: form.text("database"),
        schema: Some(form.text("schema")),
        username: form.text("username"),
        tls_mode: form.optional::<TlsMode>("tls_mode", "TLS mode", problems),
        labels: Some(map_field(form, "labels", problems)),
        variables: Some(map_field(form, "variables", problems)),
        // The settings form has no password; the secret form sets one.
        password: None,
    }
}

/// `POST /admin/targets`.
pub(crate) async fn create_target(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let envs = environments(&state, &viewer).await?;
    let mut problems = Problems::default();
    let env_id = form.required::<EnvironmentId>("environment_id", "environment", &mut problems);
    let engine = form.required::<Engine>("engine", "engine", &mut problems);
    let patch = target_patch(&form, &mut problems);
    if let (true, Some(environment_id), Some(engine)) = (problems.is_empty(), env_id, engine) {
        let input = app::inventory::NewTargetInput {
            environment_id,
            name: patch.name.unwrap_or_default(),
            engine,
            host: patch.host.unwrap_or_default(),
            port: patch.port.unwrap_or_default(),
            database: patch.database.unwrap_or_default(),
            schema: patch.schema.flatten(),
            username: patch.username.unwrap_or_default(),
            tls_mode: patch.tls_mode,
            labels: patch.labels.unwrap_or_default(),
            variables: patch.variables.unwrap_or_default(),
            password: form.raw("password").map(|p| Password(SecretString::from(p))),
            secret_ref: form.text("secret_ref"),
        };
        match app::inventory::create_target(&state.hub, state.keys.as_deref(), &viewer.caller, input).await {
            Ok(t) => {
                return Ok(see_other(&format!(
                    "/admin/targets?environment_id={}&saved={}",
                    t.environment_id,
                    t.name.as_str()
                )));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, TARGET_FIELDS)?,
        }
    }
    let env = chosen(&envs, Some(form.get("environment_id")));
    let (items, next) = list_targets(&state, &viewer, env.as_ref(), "", None).await?;
    let page = targets_page(&viewer, &envs, env.as_ref(), "", &items, next, &form, &problems, None);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
}

fn target_values(t: &Target) -> Form {
    let port = t.port.to_string();
    let (labels, variables) = (map_text(&t.labels), map_text(&t.variables));
    Form::with(&[
        ("name", t.name.as_str()),
        ("host", &t.host),
        ("port", &port),
        ("database", &t.database),
        ("schema", t.schema.as_ref().map(|s| s.as_str()).unwrap_or_default()),
        ("username", &t.username),
        ("tls_mode", t.tls_mode.as_str()),
        ("labels", &labels),
        ("variables", &variables),
    ])
}

/// What the target page shows besides the target: the edit form, the secret form, a connection check.
#[derive(Default)]
struct TargetView<'a> {
    form: Option<Form>,
    problems: Problems,
    secret_problems: Problems,
    delete_problems: Problems,
    test: Option<&'a ConnectionTest>,
    history: Option<&'a TargetHistory>,
    /// Why a recovery, adoption or baseline request from this page was refused.
    request_problems: Problems,
    notice: Option<&'a str>,
}

/// What the hub knows of a target's contents: what its runs applied there, and its schema drift.
pub(crate) struct OnTarget {
    applied: Vec<MigrationOnTarget>,
    drift: Option<app::drift::DriftState>,
}

fn target_page(viewer: &Viewer, env: &Environment, t: &Target, on: &OnTarget, view: TargetView<'_>) -> Markup {
    let form = view.form.unwrap_or_else(|| target_values(t));
    let none = Form::default();
    let body = html! {
        p.muted {
            a href="/admin/environments" { "Environments" } " / "
            a href={ "/admin/targets?environment_id=" (env.id) } { (env.name.as_str()) " targets" } " / " (t.name.as_str())
        }
        h1 { "Target " (t.name.as_str()) }
        @if let Some(notice) = view.notice { p.success role="status" { (notice) } }
        dl.facts {
            dt { "Engine" } dd { (t.engine.as_str()) }
            dt { "Environment" } dd { (env.name.as_str()) }
            dt { "Secret" } dd id="secret-status" { (secret_status(&t.secret)) }
            dt { "Created" } dd { (when(t.created_at)) }
            dt { "Changed" } dd { (when(t.updated_at)) }
        }
        section.card {
            h2 { "Connection check" }
            p { "Connects as a worker would, with the stored secret, and runs a trivial query (5 s timeout)." }
            @match view.test {
                Some(ConnectionTest::Ok { server_version }) => {
                    p.success id="connection-test" role="status" { "Connected. Server version: " code { (server_version) } }
                }
                Some(ConnectionTest::Failed { stage, message }) => {
                    div.problems id="connection-test" role="alert" {
                        p { strong { "Could not connect (" (stage) "):" } " " (message) }
                    }
                }
                None => {}
            }
            form method="post" action={ "/admin/targets/" (t.id) "/test" } {
                (csrf(viewer))
                button.secondary type="submit" { "Test connection" }
            }
        }
        (applied_here(&on.applied))
        (drift_section(viewer, t, on.drift.as_ref()))
        section.card {
            h2 id="history" { "History on the target" }
            p { "Reads the history tables of the hub's projects on this target, as a worker connects (reads only). \
                 A migration that stopped part-way outside a transaction is dirty and blocks its project there." }
            (view.request_problems.summary())
            @if let Some(history) = view.history { (history_table(viewer, t, history)) }
            form method="post" action={ "/admin/targets/" (t.id) "/history" } {
                (csrf(viewer))
                button.secondary type="submit" { "Read history" }
            }
        }
        section.card {
            h2 { "Connection settings" }
            (view.problems.summary())
            form method="post" action={ "/admin/targets/" (t.id) } {
                (csrf(viewer))
                (connection_fields(&form, &view.problems))
                p { button type="submit" { "Save settings" } }
            }
        }
        section.card {
            h2 id="secret" { "Secret" }
            p { "The secret is write-only: it is sealed at rest and never shown. Currently: " strong { (secret_status(&t.secret)) } "." }
            (view.secret_problems.summary())
            form method="post" action={ "/admin/targets/" (t.id) "/secret" } {
                (csrf(viewer))
                (password_input(&view.secret_problems, "password", "New password", "Replaces the current secret."))
                (forms::input(&none, &view.secret_problems, "secret_ref", "Or a secret reference", Input { hint: Some("env:NAME or file:/path, read by the workers."), max_length: Some(1000), ..Input::default() }))
                p { button type="submit" { "Set secret" } }
            }
            @if t.secret != SecretSource::None {
                form method="post" action={ "/admin/targets/" (t.id) "/secret/clear" } {
                    (csrf(viewer))
                    p { button.secondary type="submit" { "Remove the secret" } }
                }
            }
        }
        section.card {
            h2 { "Delete" }
            p { "A target that is part of runs cannot be deleted; it leaves every db set it is in." }
            (view.delete_problems.summary())
            form method="post" action={ "/admin/targets/" (t.id) "/delete" } {
                (csrf(viewer))
                div.field {
                    label.check { input type="checkbox" name="confirm" value="yes" required; " Yes, delete " (t.name.as_str()) }
                }
                button.danger type="submit" { "Delete target" }
            }
        }
    };
    layout(viewer, Section::Inventory, t.name.as_str(), body)
}

/// Per project, what the hub's runs left on the target: each migration's state, the version the run
/// pinned, when, and which run.
fn applied_here(applied: &[MigrationOnTarget]) -> Markup {
    let mut projects: Vec<(&MigrationOnTarget, Vec<&MigrationOnTarget>)> = Vec::new();
    for m in applied {
        match projects.last_mut() {
            Some((first, rows)) if first.project_id == m.project_id => rows.push(m),
            _ => projects.push((m, vec![m])),
        }
    }
    html! {
        section.card {
            h2 id="applied" { "Applied here" }
            p { "What the hub's runs did on this target, per project: the newest run that ended each migration here. \
                 Changes made outside the hub show only in the history tables, below." }
            @if projects.is_empty() {
                p.muted { "No run has applied anything to this target yet." }
            }
            @for (first, rows) in &projects {
                h3 { a href={ "/projects/" (first.project_id) } { (first.project_name.as_str()) } }
                table {
                    thead { tr {
                        th scope="col" { "Migration" } th scope="col" { "State" } th scope="col" { "Version" }
                        th scope="col" { "When" } th scope="col" { "Run" }
                    } }
                    tbody {
                        @for m in rows {
                            tr {
                                td { a href={ "/migrations/" (m.migration_id) } { code { (m.version_key.as_str()) } " " (m.migration_name.as_str()) } }
                                td { span class={ "state state-" (m.state.as_str()) } { (left_as(m.state)) } }
                                td.num { (m.version_no) }
                                td { (when(m.finished_at)) }
                                td { a href={ "/runs/" (m.run_id) } title=(m.run_id) { code { (short(&m.run_id)) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The target, its environment, and where the hub's runs left each migration on it.
async fn target_and_env(
    state: &AppState,
    viewer: &Viewer,
    id: TargetId,
) -> Result<(Target, Environment, OnTarget), PageError> {
    let t = app::inventory::get_target(&state.hub, id).await.map_err(viewer.fail())?;
    let env = app::inventory::get_environment(&state.hub, t.environment_id).await.map_err(viewer.fail())?;
    let applied = app::inventory::applied_on_target(&state.hub, t.id).await.map_err(viewer.fail())?;
    let drift = app::drift::drift_of(&state.hub, t.id).await.map_err(viewer.fail())?;
    Ok((t, env, OnTarget { applied, drift }))
}

/// The target's schema drift, with Accept for admins.
fn drift_section(viewer: &Viewer, t: &Target, drift: Option<&app::drift::DriftState>) -> Markup {
    html! {
        section.card id="drift" {
            h2 { "Schema drift" }
            @match drift {
                None => {
                    p.muted { "Not fingerprinted: drift is checked where the environment sets a schedule, from the first release applied after that." }
                }
                Some(d) => {
                    @if let Some(since) = d.drifted_since {
                        p.notice id="drift-state" {
                            strong { "Drifted" } " since " (when(since)) ": the schema differs from what the hub's last apply left ("
                            (d.differences.len()) " objects)."
                        }
                        table id="drift-objects" {
                            thead { tr { th scope="col" { "Object" } th scope="col" { "Change" } } }
                            tbody {
                                @for diff in &d.differences {
                                    tr { td { code { (diff.object) } } td { (diff.change.as_str()) } }
                                }
                            }
                        }
                        form method="post" action={ "/admin/targets/" (t.id) "/drift/accept" } {
                            (csrf(viewer))
                            button type="submit" { "Accept the current schema as the baseline" }
                        }
                    } @else {
                        p id="drift-state" { "No drift: the schema is what the hub's last apply left"
                            @if let Some(at) = d.checked_at { " (checked " (when(at)) ")" } "." }
                    }
                    p.muted {
                        "Baseline from " (when(d.baseline_at))
                        @if d.accepted_by.is_some() { ", accepted by an admin" } @else { ", left by a release" }
                        @if let Some(next) = d.next_check_at { " · next check " (when(next)) }
                        "."
                    }
                }
            }
        }
    }
}

/// `POST /admin/targets/{id}/drift/accept`.
pub(crate) async fn accept_drift(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    app::drift::accept(&state.hub, &viewer.caller, *id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/admin/targets/{id}#drift")))
}

/// `GET /admin/targets/{id}`.
pub(crate) async fn target(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    q: web::Query<SavedQuery>,
) -> Page {
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let notice = match q.saved.as_deref() {
        Some("settings") => Some("Settings saved.".to_owned()),
        Some("settings-secret-dropped") => Some(
            "Settings saved. The sealed password was removed: it was entered for the previous engine, host, port, \
             database or user, and is never sent anywhere else. Set it again below."
                .to_owned(),
        ),
        Some("secret") => Some("Secret saved.".to_owned()),
        _ => None,
    };
    let page =
        target_page(&viewer, &env, &t, &applied, TargetView { notice: notice.as_deref(), ..TargetView::default() });
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/targets/{id}`: the connection settings.
pub(crate) async fn update_target(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let mut problems = Problems::default();
    let patch = target_patch(&form, &mut problems);
    if problems.is_empty() {
        match app::inventory::update_target(&state.hub, state.keys.as_deref(), &viewer.caller, t.id, patch).await {
            Ok(updated) if updated.secret_dropped => {
                return Ok(see_other(&format!("/admin/targets/{}?saved=settings-secret-dropped", updated.target.id)));
            }
            Ok(updated) => return Ok(see_other(&format!("/admin/targets/{}?saved=settings", updated.target.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, TARGET_FIELDS)?,
        }
    }
    let view = TargetView { form: Some(form), problems, ..TargetView::default() };
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, &applied, view)))
}

/// `POST /admin/targets/{id}/secret`: a new password (sealed) or reference.
pub(crate) async fn set_secret(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let input = app::inventory::SecretInput {
        password: form.raw("password").map(|p| Password(SecretString::from(p))),
        secret_ref: form.text("secret_ref"),
    };
    let problems =
        match app::inventory::set_target_secret(&state.hub, state.keys.as_deref(), &viewer.caller, t.id, input).await {
            Ok(t) => return Ok(see_other(&format!("/admin/targets/{}?saved=secret", t.id))),
            Err(e) => Problems::from_app(&viewer, e, TARGET_FIELDS)?,
        };
    let view = TargetView { secret_problems: problems, ..TargetView::default() };
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, &applied, view)))
}

/// `POST /admin/targets/{id}/secret/clear`.
pub(crate) async fn clear_secret(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    let t = app::inventory::clear_target_secret(&state.hub, &viewer.caller, *id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/admin/targets/{}?saved=secret", t.id)))
}

/// `POST /admin/targets/{id}/delete`: only with the confirmation box ticked.
pub(crate) async fn delete_target(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let mut problems = Problems::default();
    if form.get("confirm") != "yes" {
        problems.general("Tick the box to confirm the deletion.");
    } else {
        match app::inventory::delete_target(&state.hub, &viewer.caller, t.id).await {
            Ok(()) => {
                return Ok(see_other(&format!("/admin/targets?environment_id={}&deleted={}", env.id, t.name.as_str())));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, &[])?,
        }
    }
    let view = TargetView { delete_problems: problems, ..TargetView::default() };
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, &applied, view)))
}

/// A target's history as read, or why it could not be.
fn history_table(viewer: &Viewer, target: &Target, history: &TargetHistory) -> Markup {
    html! {
        @match history {
            TargetHistory::Failed { stage, message } => {
                div.problems id="target-history" role="alert" {
                    p { strong { "Could not read the history (" (stage) "):" } " " (message) }
                }
            }
            TargetHistory::Read { tables, lock_holder, projects } => {
                div id="target-history" {
                    @match lock_holder {
                        Some(holder) => p.notice id="target-lock" { "The target lock is held: " (holder) "." }
                        None => p.muted id="target-lock" { "Nobody holds the target lock now." }
                    }
                    @for table in tables {
                        h3 { code { (table.table) } }
                        @match &table.rows {
                            None => p.muted { "No such table on this target: nothing was applied with it." }
                            Some(rows) if rows.is_empty() => p.muted { "The table is empty." }
                            Some(rows) => {
                                table {
                                    thead { tr { th { "Project" } th { "Version" } th { "Status" } th { "Statements" } th { "Finished" } th { "Run" } th { "Checksum" } th { "Recovery" } } }
                                    tbody {
                                        @for r in rows {
                                            tr.dirty[r.dirty()] {
                                                td { @match &r.project { Some((_, name)) => (name.as_str()), None => span.muted { "(no project)" } } }
                                                td { code { (r.row.version) } " " (r.row.name) }
                                                td {
                                                    @if r.dirty() { strong { (r.row.status) } } @else { (r.row.status) }
                                                    @if let Some(error) = &r.row.error { br; span.muted { (error) } }
                                                }
                                                td { (r.row.statements_done) " of " (r.row.statements_total) }
                                                td { (r.row.finished_at.as_deref().unwrap_or("")) }
                                                td { @if let Some(run) = &r.row.run_id { a href={ "/runs/" (run) } { "run" } } }
                                                td { code title=(r.row.checksum) { (r.row.checksum.get(..12).unwrap_or(&r.row.checksum)) } }
                                                td {
                                                    @if let (true, Some((project, _))) = (r.dirty(), &r.project) {
                                                        (recovery_form(viewer, target, *project, &r.row))
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                                @let dirty: Vec<&str> = rows.iter().filter(|r| r.dirty()).map(|r| r.row.version.as_str()).collect();
                                @if !dirty.is_empty() {
                                    p.problems role="alert" {
                                        "Dirty: " (dirty.join(", ")) ". Finish or undo what ran by hand, then record it with "
                                        code { "migrate-hub repair --version V --mark-applied | --mark-rolled-back" }
                                        ", or run the rest with " code { "--resume" } " (same content only); or request a recovery "
                                        "here, which is approved and carried out by a worker like a run."
                                    }
                                }
                            }
                        }
                    }
                    @if !projects.is_empty() { (adoption_form(viewer, target, projects)) }
                }
            }
        }
    }
}

/// A dirty row's recovery request: the resolution, with the row as read (a request is refused if the row
/// changed since).
fn recovery_form(viewer: &Viewer, target: &Target, project: ProjectId, row: &app::inventory::ShownRow) -> Markup {
    html! {
        form.inline method="post" action={ "/admin/targets/" (target.id) "/request" } {
            (csrf(viewer))
            input type="hidden" name="kind" value="recovery";
            input type="hidden" name="project_id" value=(project);
            input type="hidden" name="version_key" value=(row.version);
            input type="hidden" name="seen_statements_done" value=(row.statements_done);
            input type="hidden" name="seen_checksum" value=(row.checksum);
            label { span.visually-hidden { "Resolution for " (row.version) } select name="resolution" {
                option value="mark_applied" { "Mark applied (finished by hand)" }
                option value="mark_rolled_back" { "Mark rolled back (undone by hand)" }
                option value="resume" { "Resume the remaining statements" }
            } }
            button.secondary type="submit" { "Request recovery" }
        }
    }
}

/// Adoption of another tool's history, or a baseline, for one of the hub's projects on this target.
fn adoption_form(viewer: &Viewer, target: &Target, projects: &[(ProjectId, Name)]) -> Markup {
    html! {
        h3 id="adopt" { "Adopt or baseline" }
        p.muted {
            "Record versions as applied without running them, approved and carried out by a worker like a run: "
            "those another tool applied here (read from its history table now and again by the worker), "
            "or every version up to one (a database brought up to date by other means)."
        }
        form method="post" action={ "/admin/targets/" (target.id) "/request" } {
            (csrf(viewer))
            div.field { label for="adopt-project" { "Project" }
                select id="adopt-project" name="project_id" {
                    @for (id, name) in projects { option value=(id) { (name.as_str()) } }
                } }
            div.field { label for="adopt-kind" { "Action" }
                select id="adopt-kind" name="kind" {
                    option value="adopt" { "Adopt another tool's history" }
                    option value="baseline" { "Baseline: record up to a version" }
                } }
            div.field { label for="adopt-from" { "Tool (adoption)" }
                select id="adopt-from" name="from" {
                    @for tool in domain::enums::ForeignTool::ALL {
                        option value=(tool.as_str()) { (tool.as_str()) " (" (tool.default_table()) ")" }
                    }
                } }
            div.field { label for="adopt-table" { "History table, if not the tool's default (adoption)" }
                input id="adopt-table" name="from_table" maxlength="128"; }
            div.field { label for="adopt-up-to" { "Up to version (baseline; empty: the newest)" }
                input id="adopt-up-to" name="up_to" maxlength="64"; }
            div.field { label for="adopt-comment" { "Comment" }
                input id="adopt-comment" name="comment" maxlength="2000"; }
            button type="submit" { "Request" }
        }
    }
}

/// `POST /admin/targets/{id}/request`: a recovery, adoption or baseline of this target, requested like a
/// run (then approved and executed on the run's page).
pub(crate) async fn request_action(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let mut problems = Problems::default();
    let kind = form.required::<domain::enums::RunKind>("kind", "action", &mut problems);
    let project_id = form.required::<ProjectId>("project_id", "project", &mut problems);
    let adopting = kind == Some(domain::enums::RunKind::Adopt);
    let recovering = kind == Some(domain::enums::RunKind::Recovery);
    let from = if adopting { form.optional::<domain::enums::ForeignTool>("from", "tool", &mut problems) } else { None };
    let resolution = if recovering {
        form.optional::<domain::enums::Resolution>("resolution", "resolution", &mut problems)
    } else {
        None
    };
    let seen_statements_done =
        if recovering { form.optional::<u32>("seen_statements_done", "statements seen", &mut problems) } else { None };
    if problems.is_empty() {
        let input = app::runs::RunRequest {
            migration_id: None,
            version: None,
            project_id,
            up_to: form.text("up_to").filter(|_| kind == Some(domain::enums::RunKind::Baseline)),
            down_to: None,
            direction: None,
            kind,
            environment_id: env.id,
            db_set_id: None,
            target_id: Some(t.id),
            from,
            from_table: form.text("from_table").filter(|_| adopting),
            version_key: form.text("version_key").filter(|_| recovering),
            resolution,
            seen_statements_done,
            seen_checksum: form.text("seen_checksum").filter(|_| recovering),
            failure_policy: None,
            concurrency_limit: None,
            comment: form.text("comment"),
            content_checksum: None,
            lint_override: None,
            waves: None,
            advance: None,
            first_label: None,
            not_before: None,
        };
        match app::runs::request_run(&state.hub, &viewer.caller, state.keys.as_deref(), input, None).await {
            Ok(requested) => return Ok(see_other(&format!("/runs/{}", requested.run.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, &[])?,
        }
    }
    let view = TargetView { request_problems: problems, ..TargetView::default() };
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, &applied, view)))
}

/// `POST /admin/targets/{id}/history`: the target's history tables, read and shown on its page.
pub(crate) async fn read_history(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    let history = app::inventory::target_history(&state.hub, &viewer.caller, state.keys.as_deref(), *id)
        .await
        .map_err(viewer.fail())?;
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let page =
        target_page(&viewer, &env, &t, &applied, TargetView { history: Some(&history), ..TargetView::default() });
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/targets/{id}/test`: the connection check, shown on the target's page.
pub(crate) async fn test_connection(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    let outcome = app::inventory::test_connection(&state.hub, &viewer.caller, state.keys.as_deref(), *id)
        .await
        .map_err(viewer.fail())?;
    let (t, env, applied) = target_and_env(&state, &viewer, *id).await?;
    let page = target_page(&viewer, &env, &t, &applied, TargetView { test: Some(&outcome), ..TargetView::default() });
    Ok(respond(StatusCode::OK, page))
}
