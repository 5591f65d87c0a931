//! Inventory pages (admins): environments and their policies, targets with their write-only secrets and a
//! connection check, and db sets with membership editing for sets of thousands of targets.
//!
//! A target's password is never rendered: the password field is always empty, a refused form does not
//! keep it, and the pages show only whether the secret is sealed, a reference or absent.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web;
use app::inventory::{ConnectionTest, EnvironmentPatch, NewEnvironmentInput, Password, TargetHistory};
use domain::enums::{Engine, LintBlock, Role, TlsMode};
use domain::ids::{DbSetId, EnvironmentId, ProjectId, TargetId};
use domain::model::{DbSet, Environment, SecretSource, Target};
use domain::policy::EnvironmentPolicy;
use domain::values::Name;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, PageError, Section, Viewer, layout, millis, next_link, respond, see_other, when};

/// Rows per page of the target and member lists.
const PAGE: u32 = 100;

/// Every environment, by name (at most 500: more would not fit a select either).
async fn environments(state: &AppState, viewer: &Viewer) -> Result<Vec<Environment>, PageError> {
    let page = app::inventory::list_environments(&state.hub, &app::page::<Name>(None, Some(500)))
        .await
        .map_err(viewer.fail())?;
    Ok(page.items)
}

fn env_options(envs: &[Environment]) -> Vec<(String, String)> {
    envs.iter().map(|e| (e.id.to_string(), e.name.as_str().to_owned())).collect()
}

/// The chosen environment, else the first one.
fn chosen(envs: &[Environment], wanted: Option<&str>) -> Option<Environment> {
    let wanted = wanted.and_then(|w| w.parse::<EnvironmentId>().ok());
    wanted.and_then(|id| envs.iter().find(|e| e.id == id)).or(envs.first()).cloned()
}

/// A checkbox list (`name` posted once per checked box).
/// A password input that never shows a value, not even the one just typed.
fn password_input(problems: &Problems, name: &str, label: &str, hint: &str) -> Markup {
    html! {
        div.field.invalid[problems.of(name).is_some()] {
            label for=(name) { (label) }
            p.hint id={ (name) "-hint" } { (hint) }
            input id=(name) name=(name) type="password" value="" autocomplete="new-password"
                aria-describedby={ (name) "-hint" } aria-invalid=[problems.of(name).map(|_| "true")];
            @if let Some(problem) = problems.of(name) { p.field-error id={ (name) "-error" } { (problem) } }
        }
    }
}

fn yes_no() -> Vec<(String, String)> {
    vec![("true".to_owned(), "yes".to_owned()), ("false".to_owned(), "no".to_owned())]
}

// --- environments ---

const ENV_FIELDS: &[&str] = &[
    "name",
    "description",
    "approval_required",
    "approvals_required",
    "execute_roles",
    "lock_timeout_ms",
    "statement_timeout_ms",
    "target_lock_wait_ms",
    "allow_out_of_order",
    "lock_retries",
    "lock_retry_max_delay_ms",
    "lint_block",
    "high_risk_approvals",
];

fn roles(policy: &EnvironmentPolicy) -> String {
    policy.execute_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

fn ms(d: std::time::Duration) -> String {
    (d.as_millis() as u64).to_string()
}

/// The form values of an environment as stored.
fn env_values(env: &Environment) -> Form {
    let p = &env.policy;
    let mut pairs: Vec<(&str, String)> = vec![
        ("name", env.name.as_str().to_owned()),
        ("description", env.description.clone()),
        ("approval_required", p.approval_required.to_string()),
        ("approvals_required", p.approvals_required.to_string()),
        ("lock_timeout_ms", ms(p.lock_timeout)),
        ("statement_timeout_ms", p.statement_timeout.map(ms).unwrap_or_default()),
        ("target_lock_wait_ms", ms(p.target_lock_wait)),
        ("allow_out_of_order", p.allow_out_of_order.to_string()),
        ("lock_retries", p.lock_retries.to_string()),
        ("lock_retry_max_delay_ms", ms(p.lock_retry_max_delay)),
        ("lint_block", p.lint_block.as_str().to_owned()),
        ("high_risk_approvals", p.high_risk_approvals.to_string()),
    ];
    pairs.extend(p.execute_roles.iter().map(|r| ("execute_roles", r.as_str().to_owned())));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Form::with(&borrowed)
}

/// The policy fields, shared by the create and edit forms.
fn policy_fields(form: &Form, problems: &Problems) -> Markup {
    let number = |hint| Input { kind: "number", hint: Some(hint), min: Some(0), ..Input::default() };
    html! {
        (forms::input(form, problems, "description", "Description", Input { max_length: Some(2000), ..Input::default() }))
        (forms::select(form, problems, "approval_required", "Approval required", &yes_no(), None))
        (forms::input(form, problems, "approvals_required", "Approvals needed",
            Input { kind: "number", hint: Some("1 to 10 when approval is required, else 0; blank for the default."), min: Some(0), max: Some(10), ..Input::default() }))
        (forms::checkboxes(form, problems, "execute_roles", "Roles that may execute approved runs", &forms::names(Role::NAMES)))
        (forms::input(form, problems, "lock_timeout_ms", "Lock timeout (ms)", number("How long a statement waits for a table lock.")))
        (forms::input(form, problems, "statement_timeout_ms", "Statement timeout (ms)", number("Blank: no statement timeout.")))
        (forms::input(form, problems, "target_lock_wait_ms", "Target lock wait (ms)", number("How long a worker waits for another worker's lock on a target.")))
        (forms::select(form, problems, "allow_out_of_order", "Out-of-order migrations allowed", &yes_no(), None))
        (forms::input(form, problems, "lock_retries", "Retries after a lock timeout",
            Input { kind: "number", hint: Some("0 to 10: a statement that gave up waiting for a lock runs again after a wait (a transaction again as a whole)."), min: Some(0), max: Some(10), ..Input::default() }))
        (forms::input(form, problems, "lock_retry_max_delay_ms", "Longest wait between those retries (ms)", number("The waits double from 200 ms up to this, with jitter.")))
        (forms::select_with_hint(form, problems, "lint_block", "SQL review refuses a release with", &forms::names(LintBlock::NAMES), None,
            Some("error: a statement that does not parse; warning: any warning too; never: nothing (the approver still sees every finding).")))
        (forms::input(form, problems, "high_risk_approvals", "Extra approvals for a high-risk release",
            Input { kind: "number", hint: Some("0 to 10, on top of the approvals needed, for a release with a destructive or long-locking statement."), min: Some(0), max: Some(10), ..Input::default() }))
    }
}

fn environments_page(
    viewer: &Viewer,
    envs: &[Environment],
    form: &Form,
    problems: &Problems,
    created: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Environments" }
        @if let Some(name) = created { p.success role="status" { "Environment " strong { (name) } " saved." } }
        @if envs.is_empty() {
            p.empty { "No environments yet: create the first one below." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Approval" }
                    th scope="col" { "Execute roles" }
                    th scope="col" { "Lock timeout" }
                    th scope="col" { "Statement timeout" }
                    th scope="col" { "Target lock wait" }
                    th scope="col" { "Out of order" }
                    th scope="col" { "Inventory" }
                } }
                tbody {
                    @for env in envs {
                        @let p = &env.policy;
                        tr {
                            td { a href={ "/admin/environments/" (env.id) } { (env.name.as_str()) }
                                @if !env.description.is_empty() { br; span.muted { (env.description) } } }
                            td { @if p.approval_required { (p.approvals_required) " required" } @else { "not required" } }
                            td { (roles(p)) }
                            td { (millis(Some(p.lock_timeout.as_millis() as u64))) }
                            td { (millis(p.statement_timeout.map(|d| d.as_millis() as u64))) }
                            td { (millis(Some(p.target_lock_wait.as_millis() as u64))) }
                            td { @if p.allow_out_of_order { "allowed" } @else { "refused" } }
                            td {
                                a href={ "/admin/targets?environment_id=" (env.id) } { "targets" } " · "
                                a href={ "/admin/db-sets?environment_id=" (env.id) } { "db sets" }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 id="new" { "New environment" }
            (problems.summary())
            form method="post" action="/admin/environments" {
                (csrf(viewer))
                (forms::input(form, problems, "name", "Name", Input {
                    hint: Some("Lower-case slug, e.g. prod."), required: true, max_length: Some(100), ..Input::default()
                }))
                (policy_fields(form, problems))
                p { button type="submit" { "Create environment" } }
            }
        }
    };
    layout(viewer, Section::Inventory, "Environments", body)
}

fn new_env_form() -> Form {
    let p = EnvironmentPolicy::production_default();
    let mut pairs = vec![("approval_required", "true".to_owned()), ("allow_out_of_order", "false".to_owned())];
    pairs.extend(p.execute_roles.iter().map(|r| ("execute_roles", r.as_str().to_owned())));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Form::with(&borrowed)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<String>,
}

/// `GET /admin/environments`.
pub(crate) async fn environments_list(state: web::Data<AppState>, viewer: Viewer, q: web::Query<SavedQuery>) -> Page {
    let envs = environments(&state, &viewer).await?;
    // Only a name is shown back (a link cannot make the page say anything else).
    let saved = q.saved.as_deref().filter(|n| Name::parse((*n).to_owned()).is_ok());
    let page = environments_page(&viewer, &envs, &new_env_form(), &Problems::default(), saved);
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/environments`.
pub(crate) async fn create_environment(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let approval_required = form.optional::<bool>("approval_required", "choice", &mut problems);
    let approvals_required = form.optional::<u8>("approvals_required", "number of approvals", &mut problems);
    let lock_timeout_ms = form.optional::<u32>("lock_timeout_ms", "number of milliseconds", &mut problems);
    let statement_timeout_ms = form.optional::<u32>("statement_timeout_ms", "number of milliseconds", &mut problems);
    let target_lock_wait_ms = form.optional::<u32>("target_lock_wait_ms", "number of milliseconds", &mut problems);
    let allow_out_of_order = form.optional::<bool>("allow_out_of_order", "choice", &mut problems);
    let lock_retries = form.optional::<u8>("lock_retries", "number of retries", &mut problems);
    let lock_retry_max_delay_ms =
        form.optional::<u32>("lock_retry_max_delay_ms", "number of milliseconds", &mut problems);
    let lint_block = form.optional::<LintBlock>("lint_block", "choice", &mut problems);
    let high_risk_approvals = form.optional::<u8>("high_risk_approvals", "number of approvals", &mut problems);
    let execute_roles = form.checked::<Role>("execute_roles", "role", &mut problems);
    let name = form.needed("name", "name", &mut problems);
    if let (true, Some(name)) = (problems.is_empty(), name) {
        let input = NewEnvironmentInput {
            name,
            description: form.text("description"),
            approval_required,
            approvals_required,
            execute_roles: Some(execute_roles),
            lock_timeout_ms,
            statement_timeout_ms,
            target_lock_wait_ms,
            allow_out_of_order,
            lock_retries,
            lock_retry_max_delay_ms,
            lint_block,
            high_risk_approvals,
        };
        match app::inventory::create_environment(&state.hub, &viewer.caller, input).await {
            Ok(env) => return Ok(see_other(&format!("/admin/environments?saved={}", env.name.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, ENV_FIELDS)?,
        }
    }
    let envs = environments(&state, &viewer).await?;
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, environments_page(&viewer, &envs, &form, &problems, None)))
}

fn environment_page(viewer: &Viewer, env: &Environment, form: &Form, problems: &Problems) -> Markup {
    let body = html! {
        p.muted { a href="/admin/environments" { "Environments" } " / " (env.name.as_str()) }
        h1 { "Environment " (env.name.as_str()) }
        p.muted { "Created " (when(env.created_at)) ", last changed " (when(env.updated_at)) "." }
        div.actions {
            a.button.secondary href={ "/admin/targets?environment_id=" (env.id) } { "Targets" }
            a.button.secondary href={ "/admin/db-sets?environment_id=" (env.id) } { "Db sets" }
        }
        section.card {
            h2 { "Policy" }
            p { "Changes apply to runs from their next decision on; runs already executing keep their limits." }
            (problems.summary())
            form method="post" action={ "/admin/environments/" (env.id) } {
                (csrf(viewer))
                (policy_fields(form, problems))
                p { button type="submit" { "Save policy" } }
            }
        }
    };
    layout(viewer, Section::Inventory, env.name.as_str(), body)
}

/// `GET /admin/environments/{id}`.
pub(crate) async fn environment(state: web::Data<AppState>, viewer: Viewer, id: web::Path<EnvironmentId>) -> Page {
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    Ok(respond(StatusCode::OK, environment_page(&viewer, &env, &env_values(&env), &Problems::default())))
}

/// `POST /admin/environments/{id}`: blank numbers keep their value, except the statement timeout, which
/// blank removes.
pub(crate) async fn update_environment(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<EnvironmentId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    let mut problems = Problems::default();
    let patch = EnvironmentPatch {
        description: Some(form.get("description").trim().to_owned()),
        approval_required: form.optional::<bool>("approval_required", "choice", &mut problems),
        approvals_required: form.optional::<u8>("approvals_required", "number of approvals", &mut problems),
        execute_roles: Some(form.checked::<Role>("execute_roles", "role", &mut problems)),
        lock_timeout_ms: form.optional::<u32>("lock_timeout_ms", "number of milliseconds", &mut problems),
        statement_timeout_ms: Some(form.optional::<u32>(
            "statement_timeout_ms",
            "number of milliseconds",
            &mut problems,
        )),
        target_lock_wait_ms: form.optional::<u32>("target_lock_wait_ms", "number of milliseconds", &mut problems),
        allow_out_of_order: form.optional::<bool>("allow_out_of_order", "choice", &mut problems),
        lock_retries: form.optional::<u8>("lock_retries", "number of retries", &mut problems),
        lock_retry_max_delay_ms: form.optional::<u32>(
            "lock_retry_max_delay_ms",
            "number of milliseconds",
            &mut problems,
        ),
        lint_block: form.optional::<LintBlock>("lint_block", "choice", &mut problems),
        high_risk_approvals: form.optional::<u8>("high_risk_approvals", "number of approvals", &mut problems),
    };
    if problems.is_empty() {
        match app::inventory::update_environment(&state.hub, &viewer.caller, env.id, patch).await {
            Ok(env) => return Ok(see_other(&format!("/admin/environments?saved={}", env.name.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, ENV_FIELDS)?,
        }
    }
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, environment_page(&viewer, &env, &form, &problems)))
}

// --- targets ---

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
        script src=(*super::assets::SCRIPT_PATH) defer {}
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

fn target_page(viewer: &Viewer, env: &Environment, t: &Target, view: TargetView<'_>) -> Markup {
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

async fn target_and_env(state: &AppState, viewer: &Viewer, id: TargetId) -> Result<(Target, Environment), PageError> {
    let t = app::inventory::get_target(&state.hub, id).await.map_err(viewer.fail())?;
    let env = app::inventory::get_environment(&state.hub, t.environment_id).await.map_err(viewer.fail())?;
    Ok((t, env))
}

/// `GET /admin/targets/{id}`.
pub(crate) async fn target(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    q: web::Query<SavedQuery>,
) -> Page {
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
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
    let page = target_page(&viewer, &env, &t, TargetView { notice: notice.as_deref(), ..TargetView::default() });
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
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
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
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, view)))
}

/// `POST /admin/targets/{id}/secret`: a new password (sealed) or reference.
pub(crate) async fn set_secret(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<TargetId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
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
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, view)))
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
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
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
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, view)))
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
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
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
        };
        match app::runs::request_run(&state.hub, &viewer.caller, state.keys.as_deref(), input, None).await {
            Ok(requested) => return Ok(see_other(&format!("/runs/{}", requested.run.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, &[])?,
        }
    }
    let view = TargetView { request_problems: problems, ..TargetView::default() };
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, target_page(&viewer, &env, &t, view)))
}

/// `POST /admin/targets/{id}/history`: the target's history tables, read and shown on its page.
pub(crate) async fn read_history(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    let history = app::inventory::target_history(&state.hub, &viewer.caller, state.keys.as_deref(), *id)
        .await
        .map_err(viewer.fail())?;
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
    let page = target_page(&viewer, &env, &t, TargetView { history: Some(&history), ..TargetView::default() });
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/targets/{id}/test`: the connection check, shown on the target's page.
pub(crate) async fn test_connection(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TargetId>) -> Page {
    let outcome = app::inventory::test_connection(&state.hub, &viewer.caller, state.keys.as_deref(), *id)
        .await
        .map_err(viewer.fail())?;
    let (t, env) = target_and_env(&state, &viewer, *id).await?;
    let page = target_page(&viewer, &env, &t, TargetView { test: Some(&outcome), ..TargetView::default() });
    Ok(respond(StatusCode::OK, page))
}

// --- db sets ---

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
