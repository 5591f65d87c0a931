//! Environments and their policies (admins).

use actix_web::http::StatusCode;
use actix_web::web;
use app::inventory::{EnvironmentPatch, NewEnvironmentInput};
use domain::enums::{LintBlock, Role};
use domain::ids::EnvironmentId;
use domain::model::Environment;
use domain::policy::EnvironmentPolicy;
use domain::values::Name;
use maud::{Markup, html};

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, Section, Viewer, layout, millis, respond, see_other, when};

use super::{SavedQuery, environments, yes_no};

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

fn environment_page(viewer: &Viewer, env: &Environment, form: &Form, problems: &Problems, extras: &Extras) -> Markup {
    let (windows, windows_form, windows_problems) = (&extras.windows, &extras.windows_form, &extras.windows_problems);
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
        section.card id="maintenance-windows" {
            h2 { "Maintenance windows" }
            p {
                @if windows.windows.is_empty() {
                    "None: workers apply this environment's runs at any time."
                } @else if let Some(closes) = windows.state.closes_at {
                    "A window is open now, until " (when(closes)) "."
                } @else {
                    "No window is open now"
                    @if let Some(next) = windows.state.next_opens_at { "; the next opens " (when(next)) }
                    ". Workers claim this environment's items only inside a window; an item running when it closes finishes its migration and the rest waits."
                }
            }
            (windows_problems.summary())
            form method="post" action={ "/admin/environments/" (env.id) "/windows" } {
                (csrf(viewer))
                (forms::textarea(windows_form, windows_problems, "windows", "Windows, one per line",
                    Some("DAYS HH:MM-HH:MM ZONE, e.g. Sat 02:00-05:00 Europe/Berlin or Mon-Fri 22:00-02:00 UTC (past midnight into the next day). Empty: no windows."), 4))
                p { button type="submit" { "Save windows" } }
            }
        }
        section.card id="drift-schedule" {
            h2 { "Drift detection" }
            p {
                @match extras.drift_every {
                    Some(secs) => { "Targets are checked every " (secs / 60) " minutes for changes made outside the hub, against what the hub's last apply left." }
                    None => { "Off: targets are not checked for changes made outside the hub." }
                }
            }
            form method="post" action={ "/admin/environments/" (env.id) "/drift" } {
                (csrf(viewer))
                (forms::input(&extras.drift_form, &extras.drift_problems, "check_every_minutes", "Check every (minutes)", Input {
                    kind: "number", min: Some(1), max: Some(10_080),
                    hint: Some("Empty: off. The first baseline of a target is taken by the next release applied to it."),
                    ..Input::default()
                }))
                p { button type="submit" { "Save" } }
            }
        }
        (webhooks_section(viewer, env, extras))
    };
    layout(viewer, Section::Inventory, env.name.as_str(), body)
}

/// `GET /admin/environments/{id}`.
pub(crate) async fn environment(state: web::Data<AppState>, viewer: Viewer, id: web::Path<EnvironmentId>) -> Page {
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    let extras = Extras::load(&state, &viewer, env.id).await?;
    Ok(respond(StatusCode::OK, environment_page(&viewer, &env, &env_values(&env), &Problems::default(), &extras)))
}

/// The environment page's sections beside its policy: maintenance windows and webhooks, each with its form.
pub(crate) struct Extras {
    windows: app::windows::Windows,
    windows_form: Form,
    windows_problems: Problems,
    hooks: Vec<domain::webhooks::Webhook>,
    deliveries: Vec<domain::webhooks::Delivery>,
    hook_form: Form,
    hook_problems: Problems,
    /// A webhook just made and its secret, shown this once.
    created: Option<(String, String)>,
    drift_every: Option<u32>,
    drift_form: Form,
    drift_problems: Problems,
}

impl Extras {
    async fn load(state: &AppState, viewer: &Viewer, env: EnvironmentId) -> Result<Extras, crate::web::PageError> {
        let windows = windows_of(state, viewer, env).await?;
        let windows_form = Form::with(&[("windows", windows.windows.join("\n").as_str())]);
        let hooks = app::webhooks::list_webhooks(&state.hub, &viewer.caller, env).await.map_err(viewer.fail())?;
        let deliveries = app::webhooks::deliveries(&state.hub, &viewer.caller, env, 20).await.map_err(viewer.fail())?;
        let drift_every = app::drift::schedule_of(&state.hub, env).await.map_err(viewer.fail())?;
        let minutes = drift_every.map(|s| (s / 60).to_string()).unwrap_or_default();
        Ok(Extras {
            drift_every,
            drift_form: Form::with(&[("check_every_minutes", minutes.as_str())]),
            drift_problems: Problems::default(),
            windows,
            windows_form,
            windows_problems: Problems::default(),
            hooks,
            deliveries,
            hook_form: Form::with(&[("format", "json")]),
            hook_problems: Problems::default(),
            created: None,
        })
    }
}

fn webhooks_section(viewer: &Viewer, env: &Environment, extras: &Extras) -> Markup {
    let events: Vec<(String, String)> =
        domain::webhooks::WebhookEvent::NAMES.iter().map(|n| ((*n).to_owned(), (*n).to_owned())).collect();
    let origin = |id: &uuid::Uuid| {
        extras
            .hooks
            .iter()
            .find(|h| h.id == *id)
            .map_or_else(|| "(deleted)".to_owned(), |h| app::webhooks::origin_of(&h.url))
    };
    html! {
        section.card id="webhooks" {
            h2 { "Webhooks" }
            p { "Events of this environment's runs are POSTed to these URLs by the workers, signed: "
                code { "X-MigrateHub-Signature: t=…,v1=…" } " is HMAC-SHA256 under the webhook's secret over "
                code { "<t>.<body>" } ". Failed deliveries are tried again with backoff; redirects are not followed." }
            @if let Some((url, secret)) = &extras.created {
                div.success id="webhook-secret" role="status" {
                    p { "Webhook to " code { (url) } " added. Its signing secret, shown this once:" }
                    p { code { (secret) } }
                }
            }
            @if extras.hooks.is_empty() {
                p.empty { "No webhooks." }
            } @else {
                table id="webhook-list" {
                    thead { tr { th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Body" } th scope="col" { "Added" } th scope="col" { "" } } }
                    tbody {
                        @for hook in &extras.hooks {
                            tr {
                                td { code { (app::webhooks::origin_of(&hook.url)) } }
                                td { (hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")) }
                                td { (hook.format.as_str()) }
                                td.nowrap { (when(hook.created_at)) }
                                td {
                                    div.actions {
                                        form method="post" action={ "/admin/webhooks/" (hook.id) "/test" } {
                                            (csrf(viewer)) button.secondary type="submit" { "Send test" }
                                        }
                                        form method="post" action={ "/admin/webhooks/" (hook.id) "/delete" } {
                                            (csrf(viewer)) button.danger type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add a webhook" }
            (extras.hook_problems.summary())
            form method="post" action={ "/admin/environments/" (env.id) "/webhooks" } {
                (csrf(viewer))
                (forms::input(&extras.hook_form, &extras.hook_problems, "url", "URL", Input {
                    kind: "url", required: true, max_length: Some(2000),
                    hint: Some("http(s) only; never the hub's own address."), ..Input::default()
                }))
                (forms::checkboxes(&extras.hook_form, &extras.hook_problems, "events", "Events", &events))
                (forms::select(&extras.hook_form, &extras.hook_problems, "format", "Body",
                    &forms::names(domain::webhooks::WebhookFormat::NAMES), None))
                p { button type="submit" { "Add webhook" } }
            }
            h3 { "Deliveries" }
            @if extras.deliveries.is_empty() {
                p.empty { "Nothing sent yet." }
            } @else {
                table id="webhook-deliveries" {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "To" } th scope="col" { "Status" } th.num scope="col" { "Attempts" } th scope="col" { "Last answer" } } }
                    tbody {
                        @for d in &extras.deliveries {
                            tr data-status=(d.status) {
                                td.nowrap { (when(d.created_at)) }
                                td { (d.event) }
                                td { code { (origin(&d.webhook_id)) } }
                                td { (crate::web::status(&d.status)) @if d.status == "pending" && d.attempts > 0 { " · next " (when(d.next_attempt_at)) } }
                                td.num { (d.attempts) }
                                td {
                                    @if let Some(code) = d.last_status_code { (code) " " }
                                    @if let Some(e) = &d.last_error { (e) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /admin/environments/{id}/webhooks`: adds a webhook; the page shows its secret once.
pub(crate) async fn create_webhook(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<EnvironmentId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    let mut problems = Problems::default();
    let events = form.checked::<domain::webhooks::WebhookEvent>("events", "event", &mut problems);
    let format = form.optional::<domain::webhooks::WebhookFormat>("format", "body", &mut problems);
    let mut created = None;
    if problems.is_empty() {
        let input = app::webhooks::WebhookInput { url: form.get("url").to_owned(), events, format };
        match app::webhooks::create_webhook(&state.hub, &viewer.caller, state.keys.as_deref(), env.id, input).await {
            Ok(made) => {
                use secrecy::ExposeSecret;
                created = Some((app::webhooks::origin_of(&made.webhook.url), made.secret.expose_secret().to_owned()));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, &["url", "events"])?,
        }
    }
    let mut extras = Extras::load(&state, &viewer, env.id).await?;
    let status = if created.is_some() { StatusCode::CREATED } else { StatusCode::UNPROCESSABLE_ENTITY };
    if created.is_none() {
        extras.hook_form = form;
        extras.hook_problems = problems;
    }
    extras.created = created;
    Ok(respond(status, environment_page(&viewer, &env, &env_values(&env), &Problems::default(), &extras)))
}

/// `POST /admin/environments/{id}/drift`: the drift check interval (empty: off).
pub(crate) async fn update_drift(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<EnvironmentId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    let mut problems = Problems::default();
    let minutes = form.optional::<u32>("check_every_minutes", "number of minutes", &mut problems);
    if problems.is_empty() {
        let input = app::drift::DriftSchedule { check_every_minutes: minutes };
        match app::drift::set_schedule(&state.hub, &viewer.caller, env.id, input).await {
            Ok(()) => return Ok(see_other(&format!("/admin/environments/{}#drift-schedule", env.id))),
            Err(e) => problems = Problems::from_app(&viewer, e, &["check_every_minutes"])?,
        }
    }
    let mut extras = Extras::load(&state, &viewer, env.id).await?;
    extras.drift_form = form;
    extras.drift_problems = problems;
    let page = environment_page(&viewer, &env, &env_values(&env), &Problems::default(), &extras);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
}

/// `POST /admin/webhooks/{id}/test`.
pub(crate) async fn test_webhook(state: web::Data<AppState>, viewer: Viewer, id: web::Path<uuid::Uuid>) -> Page {
    let hook = app::webhooks::test_webhook(&state.hub, &viewer.caller, *id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/admin/environments/{}#webhooks", hook.environment_id)))
}

/// `POST /admin/webhooks/{id}/delete`.
pub(crate) async fn delete_webhook(state: web::Data<AppState>, viewer: Viewer, id: web::Path<uuid::Uuid>) -> Page {
    let hook = app::webhooks::delete_webhook(&state.hub, &viewer.caller, *id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/admin/environments/{}#webhooks", hook.environment_id)))
}

async fn windows_of(
    state: &AppState,
    viewer: &Viewer,
    env: EnvironmentId,
) -> Result<app::windows::Windows, crate::web::PageError> {
    app::windows::windows_of(&state.hub, env, chrono::Utc::now()).await.map_err(viewer.fail())
}

/// `POST /admin/environments/{id}/windows`: the windows, one per line (empty: none).
pub(crate) async fn update_windows(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<EnvironmentId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(viewer.fail())?;
    let input = app::windows::WindowsInput { windows: form.get("windows").lines().map(str::to_owned).collect() };
    let problems = match app::windows::set_windows(&state.hub, &viewer.caller, env.id, input).await {
        Ok(_) => return Ok(see_other(&format!("/admin/environments/{}#maintenance-windows", env.id))),
        Err(e) => Problems::from_app(&viewer, e, &["windows"])?,
    };
    let mut extras = Extras::load(&state, &viewer, env.id).await?;
    extras.windows_form = form;
    extras.windows_problems = problems;
    let page = environment_page(&viewer, &env, &env_values(&env), &Problems::default(), &extras);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
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
    let extras = Extras::load(&state, &viewer, env.id).await?;
    let page = environment_page(&viewer, &env, &form, &problems, &extras);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
}
