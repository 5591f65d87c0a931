//! Run pages: the list with filters, the request form (a release of a project's migrations up to, or down
//! to, a version, or a run of one migration; its Preview button shows what the request would pin and what
//! pre-flight finds, without requesting), the detail (approval panel, the release's versions, actions,
//! the per-target grid that refreshes itself while the run is active) and one target's log.
//!
//! Whether a button is enabled is `app::runs::RunDetail::allowed`, i.e. the same `domain::policy`
//! decisions the actions take; a disabled button says why. The actions post to the same use cases as the
//! REST API, and a refusal is shown on the run page.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use app::lookup::RunLabel;
use app::runs::{Allowed, Preview, RunDetail, RunFilter};
use domain::ErrorCode;
use domain::enums::{Direction, FailurePolicy, Resolution, Risk, Role};
use domain::ids::{DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, UserId};
use domain::model::{
    Migration, ReleaseVersion, Run, RunAction, RunItem, RunWave, RunWaves, Severity, ValidationMessage,
};
use domain::policy::{ApprovalState, Denial};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::{Name, VersionKey};
use domain::waves::{Advance, WaveState};
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{
    Page, PageError, Section, Viewer, layout, maybe_when, millis, next_link, respond, see_other, short, short_hex,
    status, when,
};

/// A table of runs with what they release, their environment, requester and status.
pub(crate) fn run_table(
    runs: &[Run],
    labels: &HashMap<RunId, RunLabel>,
    people: &HashMap<UserId, app::lookup::Person>,
    empty: &str,
) -> Markup {
    html! {
        @if runs.is_empty() {
            p.empty { (empty) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Release" } th scope="col" { "Environment" }
                    th scope="col" { "Direction" } th scope="col" { "Requested by" } th scope="col" { "Status" }
                    th scope="col" { "Requested" }
                } }
                tbody {
                    @for run in runs {
                        @let label = labels.get(&run.id);
                        tr {
                            td { a href={ "/runs/" (run.id) } title=(run.id) { code { (short(&run.id)) } } }
                            td { @if let Some(l) = label { (release_label(l)) } }
                            td { (label.map(|l| l.environment.as_str()).unwrap_or_default()) }
                            td { (run.direction.as_str()) }
                            td { (people.get(&run.requested_by).map(|p| p.name.as_str()).unwrap_or("—")) }
                            td { (status(run.status.as_str())) }
                            td { (when(run.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// What a run releases: one migration as its key, name and version; several as
/// "project: first → last (n migrations)", in apply order.
fn release_label(label: &RunLabel) -> Markup {
    html! {
        @if label.versions == 1 {
            a href={ "/migrations/" (label.migration) } { code { (label.version_key) } } " " (label.name) " "
            span.muted { "v" (label.version_no) }
        } @else {
            a href={ "/migrations?project_id=" (label.project) } { (label.project_name) } ": "
            code { (label.version_key) } " → " code { (label.last_key) } " "
            span.muted { "(" (label.versions) " migrations)" }
        }
    }
}

/// Labels and people for a list of runs.
pub(crate) async fn decorate(
    state: &AppState,
    viewer: &Viewer,
    runs: &[Run],
) -> Result<(HashMap<RunId, RunLabel>, HashMap<UserId, app::lookup::Person>), PageError> {
    let ids: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    let users: Vec<UserId> = runs.iter().map(|r| r.requested_by).collect();
    let labels = app::lookup::run_labels(&state.hub, &ids).await.map_err(viewer.fail())?;
    let people = app::lookup::people(&state.hub, &users).await.map_err(viewer.fail())?;
    Ok((labels, people))
}

async fn environments(state: &AppState, viewer: &Viewer) -> Result<Vec<(String, String)>, PageError> {
    let page = app::inventory::list_environments(&state.hub, &app::page::<Name>(None, Some(500)))
        .await
        .map_err(viewer.fail())?;
    Ok(page.items.iter().map(|e| (e.id.to_string(), e.name.as_str().to_owned())).collect())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    environment_id: Option<String>,
    mine: Option<String>,
    from: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// A day (`YYYY-MM-DD`, as a date input sends it) as its first instant, UTC.
fn day(form: &Form, name: &'static str, problems: &mut Problems) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = form.optional::<chrono::NaiveDate>(name, "date (YYYY-MM-DD)", problems)?;
    Some(date.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// `GET /runs`: runs, newest first, filtered by status, environment and requester.
pub(crate) async fn runs(state: web::Data<AppState>, viewer: Viewer, q: web::Query<ListQuery>) -> Page {
    let q = q.into_inner();
    let form = Form::with(&[
        ("status", q.status.as_deref().unwrap_or_default()),
        ("environment_id", q.environment_id.as_deref().unwrap_or_default()),
        ("mine", q.mine.as_deref().unwrap_or_default()),
        ("from", q.from.as_deref().unwrap_or_default()),
        ("before", q.before.as_deref().unwrap_or_default()),
    ]);
    let mut problems = Problems::default();
    let filter = RunFilter {
        status: form.optional::<RunStatus>("status", "status", &mut problems),
        environment: form.optional::<EnvironmentId>("environment_id", "environment", &mut problems),
        requested_by: (!form.get("mine").is_empty()).then_some(viewer.principal.user.id),
        created_from: day(&form, "from", &mut problems),
        created_before: day(&form, "before", &mut problems),
    };
    let after = q.after.as_deref().and_then(|a| a.parse::<RunId>().ok());
    let page = app::runs::list_runs(&state.hub, &filter, &app::page(after, Some(50))).await.map_err(viewer.fail())?;
    let (labels, people) = decorate(&state, &viewer, &page.items).await?;
    let environments = environments(&state, &viewer).await?;
    let query = [
        ("status", form.get("status").to_owned()),
        ("environment_id", form.get("environment_id").to_owned()),
        ("mine", form.get("mine").to_owned()),
        ("from", form.get("from").to_owned()),
        ("before", form.get("before").to_owned()),
    ];
    let body = html! {
        h1 { "Runs" }
        (problems.summary())
        form.filters method="get" action="/runs" {
            (forms::select(&form, &problems, "status", "Status", &forms::names(RunStatus::NAMES), Some("any status")))
            (forms::select(&form, &problems, "environment_id", "Environment", &environments, Some("any environment")))
            div.field {
                label for="mine" { "Requester" }
                select id="mine" name="mine" {
                    option value="" { "anyone" }
                    option value="1" selected[!form.get("mine").is_empty()] { "me" }
                }
            }
            (forms::input(&form, &problems, "from", "Requested from", Input { kind: "date", ..Input::default() }))
            (forms::input(&form, &problems, "before", "Requested before", Input { kind: "date", ..Input::default() }))
            button.secondary type="submit" { "Filter" }
        }
        (run_table(&page.items, &labels, &people, "No runs match."))
        (next_link("/runs", &query, page.next.map(|n| n.to_string())))
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Runs, "Runs", body)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewQuery {
    migration_id: Option<MigrationId>,
    project_id: Option<ProjectId>,
}

/// What a request form releases: one migration (its newest version), or a project's migrations.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Migration(MigrationId),
    Project(ProjectId),
}

impl Subject {
    /// The subject named by a form or a query: exactly one of `migration_id` and `project_id`.
    fn of(migration: Option<MigrationId>, project: Option<ProjectId>) -> Result<Self, PageError> {
        match (migration, project) {
            (Some(m), None) => Ok(Subject::Migration(m)),
            (None, Some(p)) => Ok(Subject::Project(p)),
            _ => Err(PageError(crate::error::ApiError::bad_request(
                ErrorCode::InvalidForm,
                "name either a migration (migration_id) or a project (project_id) to release",
            ))),
        }
    }
}

const RUN_FIELDS: &[&str] = &[
    "environment_id",
    "db_set_id",
    "direction",
    "up_to",
    "down_to",
    "failure_policy",
    "concurrency_limit",
    "comment",
    "lint_override",
    "waves",
    "not_before",
];

/// Every migration of a project, in version order (all pages).
async fn project_migrations(
    state: &AppState,
    viewer: &Viewer,
    project: ProjectId,
) -> Result<Vec<Migration>, PageError> {
    let mut all = Vec::new();
    let mut after: Option<VersionKey> = None;
    loop {
        let page = app::migrations::list_migrations(&state.hub, project, &app::page(after, Some(app::MAX_PAGE)))
            .await
            .map_err(viewer.fail())?;
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// The database sets as options, each with its environment's name.
async fn set_options(
    state: &AppState,
    viewer: &Viewer,
    environments: &[(String, String)],
) -> Result<Vec<(String, String)>, PageError> {
    let sets = app::inventory::list_db_sets(&state.hub, None, &app::page::<Name>(None, Some(500)))
        .await
        .map_err(viewer.fail())?
        .items;
    let env_names: HashMap<&str, &str> = environments.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect();
    Ok(sets
        .iter()
        .map(|s| {
            let env = env_names.get(s.environment_id.to_string().as_str()).copied().unwrap_or("?");
            (s.id.to_string(), format!("{} ({env})", s.name.as_str()))
        })
        .collect())
}

/// The request form of a release (one migration or a project's), with the preview below it when asked.
async fn run_form(
    state: &AppState,
    viewer: &Viewer,
    subject: Subject,
    form: &Form,
    problems: &Problems,
    preview: Option<&Preview>,
) -> Page {
    let environments = environments(state, viewer).await?;
    let set_options = set_options(state, viewer, &environments).await?;
    let status_code = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    // What differs between the two forms: the heading, what the release is, and the fields choosing it.
    let (title, intro, hidden, choice) = match subject {
        Subject::Migration(id) => {
            let (migration, latest) = app::migrations::get_migration(&state.hub, id).await.map_err(viewer.fail())?;
            let intro = html! {
                p.muted { a href={ "/migrations/" (migration.id) } { code { (migration.version_key.as_str()) } " " (migration.name.as_str()) } }
                h1 { "Request a run" }
                @if let Some(latest) = &latest {
                    p { "The run applies version " (latest.version_no) " (up checksum " code { (short_hex(&latest.checksums.up.to_hex())) } "). "
                        "If the migration changes before the run starts, the run must be refreshed to the new version and approved again." }
                }
            };
            let hidden = html! {
                input type="hidden" name="migration_id" value=(migration.id);
                input type="hidden" name="version" value=(form.get("version"));
            };
            let choice = html! {
                (forms::select(form, problems, "direction", "Direction", &forms::names(Direction::NAMES), None))
            };
            ("Request a run", intro, hidden, choice)
        }
        Subject::Project(id) => {
            let project = app::projects::get_project(&state.hub, id).await.map_err(viewer.fail())?;
            let migrations = project_migrations(state, viewer, id).await?;
            let keys: Vec<(String, String)> = migrations
                .iter()
                .map(|m| (m.version_key.as_str().to_owned(), format!("{} {}", m.version_key.as_str(), m.name.as_str())))
                .collect();
            // Going down to the newest would revert nothing.
            let below_newest = &keys[..keys.len().saturating_sub(1)];
            let intro = html! {
                p.muted { a href={ "/migrations?project_id=" (project.id) } { (project.name.as_str()) } " / migrations" }
                h1 { "Request a release of " (project.name.as_str()) }
                p { "A release applies the project's migrations in order, each at its newest version, up to the one you choose; "
                    "a down release reverts every migration above the one you choose, newest first. "
                    "It pins those versions and their content checksum: if one changes before the run starts, "
                    "the run must be updated to the newest versions and approved again." }
                @if migrations.is_empty() {
                    p.notice { "This project has no migrations yet: there is nothing to release." }
                }
            };
            let hidden = html! { input type="hidden" name="project_id" value=(project.id); };
            let choice = html! {
                dl.facts {
                    dt { "Project" } dd { (project.name.as_str()) " (" (migrations.len()) " migrations)" }
                }
                (forms::select(form, problems, "direction", "Direction", &forms::names(Direction::NAMES), None))
                (forms::select_with_hint(form, problems, "up_to", "Up to (direction up)", &keys, None,
                    Some("The last migration applied; every migration before it is included.")))
                (forms::select_with_hint(form, problems, "down_to", "Down to (direction down)", below_newest,
                    Some("Choose the version to go back to"),
                    Some("Every migration above this one is reverted, newest first; this one stays.")))
            };
            ("Request a release", intro, hidden, choice)
        }
    };
    let body = html! {
        (intro)
        (problems.summary())
        form.card method="post" action="/runs/new" {
            (csrf(viewer))
            (hidden)
            input type="hidden" name="idempotency_key" value=(form.get("idempotency_key"));
            @if let Some(preview) = preview {
                input type="hidden" name="content_checksum" value=(preview.content.to_hex());
            }
            (choice)
            (forms::select(form, problems, "environment_id", "Environment", &environments, Some("Choose an environment")))
            (forms::select(form, problems, "db_set_id", "Database set", &set_options, Some("Choose a set of the environment")))
            (forms::select(form, problems, "failure_policy", "When a target fails", &forms::names(FailurePolicy::NAMES), None))
            (forms::input(form, problems, "concurrency_limit", "Concurrency", Input {
                kind: "number", min: Some(1), max: Some(app::runs::MAX_CONCURRENCY), required: true,
                hint: Some("How many targets are migrated at once."), ..Input::default()
            }))
            fieldset.waves {
                legend { "Waves (optional)" }
                (forms::input(form, problems, "waves", "Waves", Input {
                    max_length: Some(200),
                    hint: Some("Roll out in stages, each reaching this far in all: 1, 10%, 100% is one canary, then a tenth of the set, then the rest. Add :N to let a wave fail N targets (10%:2); over that the run halts. Empty: every target at once."),
                    ..Input::default()
                }))
                (forms::select_with_hint(form, problems, "advance", "Next wave", &forms::names(Advance::NAMES), None,
                    Some("auto: when the previous wave succeeded; manual: when someone allowed to execute presses Continue.")))
                (forms::input(form, problems, "first_label", "Canaries first (label)", Input {
                    max_length: Some(300),
                    hint: Some("key=value: targets with this label go first, e.g. canary=true."),
                    ..Input::default()
                }))
            }
            (forms::input(form, problems, "not_before", "Not before (UTC, optional)", Input {
                kind: "datetime-local",
                hint: Some("Nothing of the run starts before this, once executed; the environment's maintenance windows hold it too."),
                ..Input::default()
            }))
            (forms::textarea(form, problems, "comment", "Comment (optional)", Some("Why, and anything the approver should know."), 3))
            @if viewer.role() == Role::Admin {
                (forms::textarea(form, problems, "lint_override", "Override the SQL review (admins, optional)",
                    Some("Only where the environment's policy refuses what the review found: why this release may go ahead anyway. Audited and shown on the run."), 2))
            }
            // Preview comes first: pressing Enter in a field previews rather than requests.
            div.actions {
                button.secondary type="submit" name="action" value="preview" { "Preview" }
                button type="submit" name="action" value="request" { "Request run" }
            }
        }
        @if let Some(preview) = preview {
            (preview_section(preview, form.text("direction").as_deref().unwrap_or("up")))
        }
    };
    Ok(respond(status_code, layout(viewer, Section::Runs, title, body)))
}

/// What a request would pin and what pre-flight finds on the set's targets.
fn preview_section(preview: &Preview, direction: &str) -> Markup {
    let targets = plural(preview.targets, "target");
    html! {
        section.card id="preview" aria-labelledby="preview-heading" {
            h2 id="preview-heading" {
                "Preview: " (direction) " release of " (preview.project.name.as_str()) ", " (plural(preview.versions.len(), "migration"))
            }
            p { "Requesting now pins these versions, in apply order:" }
            (versions_table("preview-versions", &preview.versions, &HashMap::new()))
            dl.facts {
                dt { "Content checksum" } dd { code id="preview-content" { (preview.content.to_hex()) } }
                dt { "Targets" } dd { (targets) }
            }
            h3 { "Pre-flight" }
            @if preview.problems.is_empty() {
                p id="preflight" { "Pre-flight: no problems on " (targets) "." }
            } @else {
                p { "Pre-flight found " (plural(preview.problems.len(), "problem")) " on " (targets) "; a request would be refused:" }
                ul.messages id="preflight" {
                    @for problem in &preview.problems {
                        li.error { code { (problem.code()) } " " (super::sentence(&problem.to_string())) "." }
                    }
                }
            }
            @if preview.targets == 0 {
                p.notice { "The database set has no targets: a run of it would be refused." }
            }
            h3 { "SQL review" }
            p id="preview-risk" {
                "Risk: " strong class=(format!("risk-{}", preview.review.risk)) { (preview.review.risk) }
                " · needs " (plural(usize::from(preview.approvals_needed), "approval"))
            }
            @if !preview.refused.is_empty() {
                p.notice id="review-refused" {
                    "The environment's policy refuses " (plural(preview.refused.len(), "finding"))
                    ": a request would be refused unless an admin overrides it with a reason."
                }
            }
            @let shown: Vec<(String, ValidationMessage)> =
                preview.review.findings.iter().map(|f| (f.version_key.clone(), f.message.clone())).collect();
            (findings_list("preview-review", &shown, "No finding in the review of these versions."))
        }
    }
}

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// `GET /runs/new?migration_id=…` (a run of one migration) or `?project_id=…` (a release of the project).
pub(crate) async fn new_run(state: web::Data<AppState>, viewer: Viewer, q: web::Query<NewQuery>) -> Page {
    let subject = Subject::of(q.migration_id, q.project_id)?;
    // One key per form: posting the same form twice (a double click, a retry) makes one run.
    let key = uuid::Uuid::new_v4().to_string();
    let mut pairs = vec![
        ("idempotency_key", key),
        ("direction", "up".to_owned()),
        ("failure_policy", "stop_on_first_failure".to_owned()),
        ("concurrency_limit", "1".to_owned()),
    ];
    match subject {
        Subject::Migration(id) => {
            let (_, latest) = app::migrations::get_migration(&state.hub, id).await.map_err(viewer.fail())?;
            pairs.push(("version", latest.map(|v| v.version_no.to_string()).unwrap_or_default()));
        }
        Subject::Project(id) => {
            // Up to the newest by default.
            let migrations = project_migrations(&state, &viewer, id).await?;
            let newest = migrations.last().map(|m| m.version_key.as_str().to_owned()).unwrap_or_default();
            pairs.push(("up_to", newest));
        }
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_form(&state, &viewer, subject, &Form::with(&pairs), &Problems::default(), None).await
}

/// `POST /runs/new`: the request form's two buttons, `action=preview` (show what would be pinned and what
/// pre-flight finds) and `action=request` (the default: request the run).
pub(crate) async fn create_run(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let subject = Subject::of(
        form.text("migration_id").and_then(|m| m.parse().ok()),
        form.text("project_id").and_then(|p| p.parse().ok()),
    )?;
    let mut problems = Problems::default();
    let environment_id = form.required::<EnvironmentId>("environment_id", "environment", &mut problems);
    let db_set_id = form.required::<DbSetId>("db_set_id", "database set", &mut problems);
    let direction = form.optional::<Direction>("direction", "direction", &mut problems);
    let failure_policy = form.optional::<FailurePolicy>("failure_policy", "failure policy", &mut problems);
    let concurrency_limit = form.required::<u32>("concurrency_limit", "number of targets", &mut problems);
    let advance = form.optional::<Advance>("advance", "wave advance", &mut problems);
    let waves = match form.text("waves").map(|text| domain::waves::parse_list(&text)) {
        None => None,
        Some(Ok(specs)) => Some(specs),
        Some(Err(e)) => {
            problems.add("waves", e.to_string());
            None
        }
    };
    let not_before = match form.text("not_before") {
        None => None,
        Some(text) => match chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M") {
            Ok(at) => Some(at.and_utc()),
            Err(_) => {
                problems.add("not_before", "write a date and time, e.g. 2026-12-12T02:00 (UTC)");
                None
            }
        },
    };
    let mut preview = None;
    if let (true, Some(environment_id), Some(db_set_id)) = (problems.is_empty(), environment_id, db_set_id) {
        let (migration_id, project_id) = match subject {
            Subject::Migration(m) => (Some(m), None),
            Subject::Project(p) => (None, Some(p)),
        };
        // Both selects are on the form; only the one of the chosen direction counts.
        let down = direction == Some(Direction::Down);
        let input = app::runs::RunRequest {
            migration_id,
            version: form.text("version").and_then(|v| v.parse::<u32>().ok()),
            project_id,
            up_to: if project_id.is_some() && !down { form.text("up_to") } else { None },
            down_to: if project_id.is_some() && down { form.text("down_to") } else { None },
            direction,
            kind: None,
            environment_id,
            db_set_id: Some(db_set_id),
            target_id: None,
            from: None,
            from_table: None,
            version_key: None,
            resolution: None,
            seen_statements_done: None,
            seen_checksum: None,
            failure_policy,
            concurrency_limit,
            comment: form.text("comment"),
            // What the last preview showed: the request is refused if the release would pin other content.
            content_checksum: form.text("content_checksum").filter(|_| form.get("action") != "preview"),
            lint_override: form.text("lint_override"),
            // The form always sends an advance; it counts only with waves.
            advance: advance.filter(|_| waves.is_some()),
            first_label: form.text("first_label").filter(|_| waves.is_some()),
            waves,
            not_before,
        };
        if form.get("action") == "preview" {
            match app::runs::preview(&state.hub, &input).await {
                Ok(found) => preview = Some(found),
                Err(e) => problems = Problems::from_app(&viewer, e, RUN_FIELDS)?,
            }
        } else {
            match app::runs::request_run(
                &state.hub,
                &viewer.caller,
                state.keys.as_deref(),
                input,
                form.text("idempotency_key"),
            )
            .await
            {
                Ok(requested) => return Ok(see_other(&format!("/runs/{}", requested.run.id))),
                Err(e) => problems = Problems::from_app(&viewer, e, RUN_FIELDS)?,
            }
        }
    }
    run_form(&state, &viewer, subject, &form, &problems, preview.as_ref()).await
}

/// A button of the run page: enabled, or disabled with the reason next to it.
fn action(run: RunId, viewer: &Viewer, verb: &str, label: &str, allowed: Result<(), Denial>, class: &str) -> Markup {
    let reason_id = format!("{verb}-reason");
    html! {
        form method="post" action={ "/runs/" (run) "/" (verb) } {
            (csrf(viewer))
            button type="submit" class=(class) disabled[allowed.is_err()]
                aria-describedby=[allowed.is_err().then_some(reason_id.as_str())] { (label) }
            @if let Err(denial) = allowed {
                p.reason id=(reason_id) { (super::sentence(&denial.to_string())) "." }
            }
        }
    }
}

fn approval_panel(
    detail: &RunDetail,
    viewer: &Viewer,
    allowed: &Allowed,
    people: &HashMap<UserId, app::lookup::Person>,
) -> Markup {
    let run = &detail.run;
    let policy = &detail.environment.policy;
    let name = |id: &UserId| people.get(id).map_or_else(|| short(id), |p| format!("{} <{}>", p.name, p.email));
    let state = match detail.approval.state {
        ApprovalState::NotRequired => "not required in this environment".to_owned(),
        ApprovalState::Pending { have, need } => format!("{have} of {need} approvals"),
        ApprovalState::Approved => "approved".to_owned(),
        ApprovalState::Denied => "denied".to_owned(),
    };
    let deciding = run.status == RunStatus::AwaitingApproval;
    html! {
        section.card aria-labelledby="approval-heading" {
            h2 id="approval-heading" { "Approval" }
            dl.facts {
                dt { "Requested by" } dd { (name(&run.requested_by)) " · " (when(run.created_at)) }
                dt { "Approval" } dd { (state) }
                dt { "Pinned content" } dd { code id="content-checksum" { (run.content.to_hex()) } }
                dt { "Revision" } dd { (run.revision) }
                @if !run.comment.is_empty() { dt { "Comment" } dd { (run.comment) } }
            }
            @if detail.approvals.iter().any(|a| a.revision != run.revision) {
                p.notice { "Some decisions were given for an earlier revision of this run; they no longer count." }
            }
            @if !detail.approvals.is_empty() {
                h3 { "Decisions" }
                table {
                    thead { tr { th scope="col" { "Who" } th scope="col" { "Decision" } th scope="col" { "Direction" } th scope="col" { "Content" } th scope="col" { "Comment" } th scope="col" { "When" } } }
                    tbody {
                        @for a in &detail.approvals {
                            tr {
                                td { (name(&a.approver)) }
                                td { (status(a.decision.as_str())) }
                                td { (a.direction.as_str()) }
                                td {
                                    code { (short_hex(&a.pinned.to_hex())) }
                                    @if a.revision != run.revision || a.pinned != run.content { " " span.muted { "(earlier revision)" } }
                                    @if a.carried_from.is_some() { " " span.muted { "(carried over from the retried run)" } }
                                }
                                td.comment { (a.comment) }
                                td.nowrap { (when(a.created_at)) }
                            }
                        }
                    }
                }
            }
            @if policy.approval_required && deciding {
                h3 { "Your decision" }
                (decision_form(run.id, viewer, &run.content.to_hex(), allowed))
            }
        }
    }
}

/// Approve and deny: one comment box, two buttons, each disabled with its reason when refused.
fn decision_form(run: RunId, viewer: &Viewer, content: &str, allowed: &Allowed) -> Markup {
    let reasons: Vec<String> = {
        let mut reasons: Vec<String> = [allowed.approve, allowed.deny]
            .iter()
            .filter_map(|a| a.err())
            .map(|d| format!("{}.", super::sentence(&d.to_string())))
            .collect();
        reasons.dedup();
        reasons
    };
    let refused = |a: &Result<(), Denial>| a.is_err().then_some("decision-reason");
    html! {
        form method="post" action={ "/runs/" (run) "/approve" } {
            (csrf(viewer))
            input type="hidden" name="content_checksum" value=(content);
            div.field {
                label for="decision-comment" { "Comment" }
                textarea id="decision-comment" name="comment" rows="2" disabled[allowed.approve.is_err() && allowed.deny.is_err()] {}
            }
            div.actions {
                button type="submit" disabled[allowed.approve.is_err()] aria-describedby=[refused(&allowed.approve)] { "Approve" }
                button.danger type="submit" formaction={ "/runs/" (run) "/deny" } disabled[allowed.deny.is_err()]
                    aria-describedby=[refused(&allowed.deny)] { "Deny" }
            }
            @if !reasons.is_empty() {
                p.reason id="decision-reason" { @for r in &reasons { (r) " " } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunQuery {
    after: Option<String>,
    /// Set by the redirect after Execute: the page confirms it beside the grid.
    executed: Option<String>,
}

/// `GET /runs/{id}`.
pub(crate) async fn run(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<RunId>,
    q: web::Query<RunQuery>,
) -> Page {
    let detail = app::runs::get_run(&state.hub, *id).await.map_err(viewer.fail())?;
    let executed = q.executed.is_some();
    let body = run_page(&state, &viewer, &detail, (q.after.as_deref(), executed), &Problems::default()).await?;
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Runs, "Run", body)))
}

/// The run's page; `after`: the grid's page; `executed`: confirm an Execute just done, beside the grid.
async fn run_page(
    state: &AppState,
    viewer: &Viewer,
    detail: &RunDetail,
    (after, executed): (Option<&str>, bool),
    problems: &Problems,
) -> Result<Markup, PageError> {
    let run = &detail.run;
    let allowed = detail.allowed(&viewer.caller.actor);
    let mut users: Vec<UserId> = detail.approvals.iter().map(|a| a.approver).collect();
    users.push(run.requested_by);
    let people = app::lookup::people(&state.hub, &users).await.map_err(viewer.fail())?;
    let grid = grid(state, viewer, detail, after).await?;
    let single = detail.single();
    Ok(html! {
        p.muted { a href="/runs" { "Runs" } " / " code { (run.id) } }
        h1 {
            @match &run.action {
                RunAction::Release => { (run.direction.as_str()) " release of " }
                RunAction::Baseline => { "Baseline of " }
                RunAction::Adopt { from, .. } => { "Adoption from " (from.as_str()) " of " }
                RunAction::Recovery { resolution, .. } => { "Recovery (" (resolution.as_str().replace('_', " ")) ") of " }
            }
            (detail.project.name.as_str()) ": "
            @match single {
                Some(v) => { code { (v.version_key.as_str()) } " " (v.name.as_str()) }
                None => { (detail.versions.len()) " migrations" }
            }
            " in " (detail.environment.name.as_str())
        }
        (problems.summary())
        (action_notice(detail))
        (schedule_notice(detail))
        @if detail.approval.stale {
            div.notice id="stale" {
                p {
                    "A migration of this run changed after it was requested, so the content it pins is no longer the newest. "
                    "Executing is refused until the run is updated to the newest versions; that asks for approval again."
                }
                (action(run.id, viewer, "refresh", "Update to the newest versions", allowed.refresh, ""))
            }
        }
        @if let Some(original) = run.retry_of {
            p.muted { "Retries run " a href={ "/runs/" (original) } { code { (short(&original)) } } " for its unfinished targets, over the same content." }
        }
        @if !detail.retries.is_empty() {
            p.muted { "Retried by " @for r in &detail.retries { a href={ "/runs/" (r) } { code { (short(r)) } } " " } }
        }
        div.grid2 {
            (approval_panel(detail, viewer, &allowed, &people))
            section.card aria-labelledby="actions-heading" {
                h2 id="actions-heading" { "Run" }
                dl.facts {
                    dt { "Project" } dd { (detail.project.name.as_str()) }
                    @if let Some(set) = &detail.db_set {
                        dt { "Database set" } dd { (set.name.as_str()) }
                    }
                    @if let Some(target) = &detail.target {
                        dt { "Target" } dd { a href={ "/targets/" (target.id) } { (target.name.as_str()) } }
                    }
                    dt { "Failure policy" } dd { (run.failure_policy.as_str().replace('_', " ")) }
                    dt { "Concurrency" } dd { (run.concurrency_limit) " at a time" }
                    @if let Some(at) = detail.not_before { dt { "Not before" } dd { (when(at)) } }
                    dt { "Queued" } dd { (maybe_when(run.queued_at)) }
                    dt { "Started" } dd { (maybe_when(run.started_at)) }
                    dt { "Finished" } dd id="run-finished" { (maybe_when(run.finished_at)) }
                }
                @if !run.status.is_terminal() {
                    div.actions {
                        @if matches!(run.status, RunStatus::AwaitingApproval | RunStatus::Approved) {
                            (action(run.id, viewer, "execute", "Execute", allowed.execute, ""))
                        }
                        (action(run.id, viewer, "cancel", "Cancel run", allowed.cancel, "secondary"))
                    }
                }
                @if matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) {
                    div.actions {
                        (action(run.id, viewer, "retry", "Retry unfinished targets", allowed.retry, ""))
                    }
                }
            }
        }
        (release_table(detail))
        (review(detail))
        @if executed {
            p.success id="executed" role="status" {
                "Executed: the run is queued and the workers are applying it. The grid below follows each target."
            }
        }
        (grid)
        @if let Some(v) = single {
            section.card {
                h2 { "Content (version " (v.version.version_no) ")" }
                (super::migrations::version_content(&v.version))
            }
        }
    })
}

/// When a run that is not finished will go on, if a schedule or the environment's maintenance windows hold
/// it back now.
fn schedule_notice(detail: &RunDetail) -> Markup {
    let run = &detail.run;
    if run.status.is_terminal() {
        return html! {};
    }
    let now = chrono::Utc::now();
    let scheduled = detail.not_before.filter(|at| *at > now);
    let window = &detail.window;
    html! {
        @if let Some(at) = scheduled {
            p.notice id="schedule" { "Scheduled: nothing of this run starts before " (when(at)) "." }
        }
        @if window.any {
            @if let Some(closes) = window.closes_at {
                p.muted id="window" { "The environment's maintenance window is open until " (when(closes)) "." }
            } @else {
                p.notice id="window" {
                    "Outside the environment's maintenance windows: workers claim nothing of this run until the next opens"
                    @if let Some(next) = window.next_opens_at { ", " (when(next)) }
                    ". An item running when a window closes finishes its migration; the rest continues in the next window."
                }
            }
        }
    }
}

/// What a baseline, adoption or recovery will do, in words, with the row a recovery was requested on as the
/// server read it: what the approver decides on.
fn action_notice(detail: &RunDetail) -> Markup {
    html! {
        @match &detail.run.action {
            RunAction::Release => {}
            RunAction::Baseline => {
                div.notice id="action" { p {
                    "Records the " (detail.versions.len()) " versions below as applied on each target without running them "
                    "(the database was brought up to date by other means). Versions already recorded as applied are left as they are."
                } }
            }
            RunAction::Adopt { from, table } => {
                div.notice id="action" { p {
                    "Reads " (from.as_str()) "'s history table " code { (table.as_deref().unwrap_or(from.default_table())) }
                    " on each target and records the versions it applied as applied, without running them. "
                    "At request it applied the versions below; each worker reads the table again and records only what "
                    (from.as_str()) " applied on its target, and records nothing when that history is dirty, holds versions not "
                    "listed here, or stored checksums that differ from the files."
                } }
            }
            RunAction::Recovery { resolution, seen } => {
                div.notice id="action" {
                    p {
                        "The history row of this version on the target, as the hub read it at request: "
                        strong { (seen.status.as_str()) " at statement " (seen.statements_done) " of " (seen.statements_total) }
                        " (checksum " code { (short(&seen.checksum.iter().map(|b| format!("{b:02x}")).collect::<String>())) } ")"
                        @if let Some(error) = &seen.error { ": " code { (error.as_str()) } }
                        "."
                    }
                    p {
                        @match resolution {
                            Resolution::MarkApplied => "Marks it applied: someone finished the migration by hand. ",
                            Resolution::MarkRolledBack => "Marks it rolled back: someone undid by hand what ran; the row goes and the version is pending again. ",
                            Resolution::Resume => "Resumes it: runs the statements after the recorded one, with progress as in any apply. ",
                        }
                        "The worker does this under the target's lock, and only while the row is still exactly this one."
                    }
                }
            }
        }
    }
}

/// The SQL review of the pinned versions for the run's direction (`domain::lint`, kept with each version):
/// what whoever approves must see, beside the approval panel. Warnings and errors, and the findings a
/// `migrate-hub:ignore` comment marked as seen.
fn review(detail: &RunDetail) -> Markup {
    let direction = detail.run.direction;
    // The review pinned at request (what the approver decides on); a run from before the review shows the
    // versions' messages as they were kept.
    let shown: Vec<(String, ValidationMessage)> = match &detail.review {
        Some(findings) => findings.iter().map(|f| (f.version_key.clone(), f.message.clone())).collect(),
        None => detail
            .versions
            .iter()
            .flat_map(|v| v.version.lint_results.iter().map(move |m| (v.version_key.as_str().to_owned(), m.clone())))
            .filter(|(_, m)| m.direction == direction && (m.severity != Severity::Info || m.ignored))
            .collect(),
    };
    let needed = detail.environment.policy.approvals_needed(detail.run.risk);
    html! {
        section.card aria-labelledby="review-heading" {
            h2 id="review-heading" { "SQL review" }
            @if let Some(risk) = detail.run.risk {
                p id="risk" {
                    "Risk: " strong class=(format!("risk-{risk}")) { (risk) }
                    @if risk == Risk::High && detail.environment.policy.approval_required {
                        " · a high-risk release needs " (needed) " approvals in " (detail.environment.name.as_str())
                    }
                }
            }
            @if let Some(o) = &detail.run.lint_override {
                p.notice id="lint-override" {
                    "An admin let this release go ahead although the environment's policy refused its review: "
                    q { (o.reason) }
                }
            }
            (findings_list("review", &shown, "No warning or error in the review of these versions."))
        }
    }
}

/// SQL review findings, each with its version, rule, statement, line, message and help.
fn findings_list(id: &str, findings: &[(String, ValidationMessage)], empty: &str) -> Markup {
    html! {
        @if findings.is_empty() {
            p.empty id=(id) { (empty) }
        } @else {
            ul.messages id=(id) {
                @for (key, m) in findings {
                    @let severity = if m.ignored { "ignored" } else { match m.severity {
                        Severity::Info => "info",
                        Severity::Warning => "warning",
                        Severity::Error => "error",
                    } };
                    li class=(severity) {
                        strong { (severity) } " · " code { (key) } " · " code { (m.code) }
                        @if let Some(i) = m.statement_index { " · statement " (i + 1) }
                        @if let Some(line) = m.line { " · line " (line) }
                        @if let Some(engine) = m.engine { " · " (engine) }
                        ": " (m.message)
                        @if let Some(help) = &m.help { br; span.hint { (help) } }
                    }
                }
            }
        }
    }
}

/// The versions the run applies, in apply order, as pinned; newer versions of a run not started are
/// pointed out with a diff link.
fn release_table(detail: &RunDetail) -> Markup {
    let newer: HashMap<MigrationId, u32> = detail.newer.iter().copied().collect();
    html! {
        section.card aria-labelledby="release-heading" {
            h2 id="release-heading" { "Migrations (" (detail.versions.len()) ", in apply order)" }
            (versions_table("release", &detail.versions, &newer))
        }
    }
}

/// Versions in apply order: position, key, name, version number (with a diff link to `newer` ones) and
/// short checksums.
fn versions_table(id: &str, versions: &[ReleaseVersion], newer: &HashMap<MigrationId, u32>) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th.num scope="col" { "#" } th scope="col" { "Version" } th scope="col" { "Name" }
                th.num scope="col" { "Pinned version" } th scope="col" { "Up checksum" } th scope="col" { "Down checksum" }
            } }
            tbody {
                @for v in versions {
                    tr {
                        td.num { (v.position + 1) }
                        td { code { (v.version_key.as_str()) } }
                        td { a href={ "/migrations/" (v.version.migration_id) "?version=" (v.version.version_no) } { (v.name.as_str()) } }
                        td.num {
                            (v.version.version_no)
                            @if let Some(newest) = newer.get(&v.version.migration_id) {
                                " " a href={ "/migrations/" (v.version.migration_id) "?version=" (newest) "&compare=" (v.version.version_no) "#diff" } { "(now " (newest) ": see what changed)" }
                            }
                        }
                        td { code { (short(&v.version.checksums.up.to_hex())) } }
                        td { @match v.version.checksums.down { Some(c) => code { (short(&c.to_hex())) }, None => span.muted { "none" } } }
                    }
                }
            }
        }
    }
}

/// The live part of the run page: status, progress and the per-target grid.
async fn grid(state: &AppState, viewer: &Viewer, detail: &RunDetail, after: Option<&str>) -> Result<Markup, PageError> {
    let run = &detail.run;
    let after = after.and_then(|a| a.parse::<u32>().ok());
    let page =
        app::runs::list_items(&state.hub, run.id, None, &app::page(after, Some(500))).await.map_err(viewer.fail())?;
    let targets: Vec<_> = page.items.iter().map(|i| i.target_id).collect();
    let names = app::lookup::target_names(&state.hub, &targets).await.map_err(viewer.fail())?;
    let total: u64 = detail.items.iter().map(|(_, n)| n).sum();
    let done: u64 = detail.items.iter().filter(|(s, _)| s.is_terminal()).map(|(_, n)| n).sum();
    let live = !run.status.is_terminal();
    let counts = detail.items.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect::<Vec<_>>().join(", ");
    Ok(html! {
        section.card id="live" data-live=(if live { "true" } else { "false" }) data-live-src={ "/runs/" (run.id) "/live" } aria-live="polite" {
            h2 { "Targets" }
            p {
                "Status: " span id="run-status" class={ "status status-" (run.status.as_str()) } { (run.status.as_str()) }
                @if total > 0 {
                    " · " progress max=(total) value=(done) aria-label="targets finished" { (done) " of " (total) }
                    " " (done) " of " (total) " targets finished"
                    @if !counts.is_empty() { span.muted { " (" (counts) ")" } }
                }
            }
            @if let Some(waves) = &detail.waves {
                (waves_panel(viewer, detail, waves))
            }
            @if page.items.is_empty() {
                p.empty { "No targets yet: items are made when the run is executed." }
            } @else {
                table id="items" {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Target" } th scope="col" { "Status" }
                        th.num scope="col" { "Migration" } th.num scope="col" { "Statement" } th.num scope="col" { "Attempts" }
                        th.num scope="col" { "Duration" } th scope="col" { "Error" } th scope="col" { "Log" }
                    } }
                    tbody {
                        @for (i, item) in page.items.iter().enumerate() {
                            @if let Some(wave) = detail.waves.as_ref().and_then(|w| w.wave_of(item.ordinal)) {
                                @if i == 0 || item.ordinal == wave.first {
                                    tr.wave-band data-wave=(wave.wave + 1) {
                                        th colspan="9" scope="rowgroup" {
                                            "Wave " (wave.wave + 1) " · " (wave.spec) " · " (plural((wave.end - wave.first) as usize, "target"))
                                        }
                                    }
                                }
                            }
                            (item_row(run.id, item, names.get(&item.target_id).map(String::as_str)))
                        }
                    }
                }
                (next_link(&format!("/runs/{}", run.id), &[], page.next.map(|n| n.to_string())))
            }
            script src=(*super::assets::SCRIPT_PATH) defer {}
        }
    })
}

/// Where the run stands in its waves, each wave's items by status, and Continue when a person is needed.
fn waves_panel(viewer: &Viewer, detail: &RunDetail, waves: &RunWaves) -> Markup {
    let run = &detail.run;
    let state = waves.state(run.status);
    let current = waves.current as usize + 1;
    let total = waves.waves.len();
    let allowed = detail.allowed(&viewer.caller.actor).proceed;
    html! {
        div id="waves" data-state=(serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) {
            p {
                @match state {
                    WaveState::NotStarted => { "Rolls out in " (plural(total, "wave")) }
                    WaveState::Running => { "Wave " (current) " of " (total) " is running" }
                    WaveState::AwaitingContinue => {
                        strong { "Wave " (current) " of " (total) " succeeded." }
                        " The next wave starts when someone allowed to execute runs in this environment continues it."
                    }
                    WaveState::Halted => {
                        strong { "Halted at wave " (current) " of " (total) ": " (plural(waves.failed as usize, "target")) " failed" }
                        ", more than the " (waves.allowed) " it allows. Nothing more is claimed. Continue to go on despite these failures, or cancel the run."
                    }
                    WaveState::Ended => { "Rolled out in " (plural(total, "wave")) }
                }
                @if waves.advance == Advance::Manual && state != WaveState::Ended { " · each next wave waits for Continue" }
                @if let Some(label) = &waves.first_label { " · targets labelled " code { (label.to_string()) } " first" }
            }
            table.waves {
                thead { tr {
                    th scope="col" { "Wave" } th scope="col" { "Reach" } th.num scope="col" { "Targets" }
                    th scope="col" { "Items" } th.num scope="col" { "Failures allowed" } th scope="col" { "Started" }
                } }
                tbody {
                    @for w in &waves.waves {
                        tr data-wave=(w.wave + 1) aria-current=[(w.wave == waves.current && state != WaveState::Ended).then_some("step")] {
                            td { (w.wave + 1) }
                            td { (w.spec) }
                            td.num { (w.end - w.first) }
                            td { (wave_counts(w)) }
                            td.num {
                                (w.max_failures)
                                @if w.tolerated_failures > 0 { " (+" (w.tolerated_failures) " tolerated)" }
                            }
                            td {
                                @match (&w.started_at, &w.started_by) {
                                    (Some(at), Some((_, who))) => { (when(*at)) " · continued by " (who) }
                                    (Some(at), None) => { (when(*at)) }
                                    (None, _) if w.wave == 0 => { (maybe_when(run.started_at)) }
                                    (None, _) => { "–" }
                                }
                            }
                        }
                    }
                }
            }
            @if matches!(state, WaveState::AwaitingContinue | WaveState::Halted) {
                div.actions {
                    (action(run.id, viewer, "continue",
                        if state == WaveState::Halted { "Continue despite the failures" } else { "Continue to the next wave" },
                        allowed, ""))
                }
            }
        }
    }
}

fn wave_counts(w: &RunWave) -> String {
    let parts: Vec<String> = [
        ("succeeded", w.succeeded),
        ("skipped", w.skipped),
        ("failed", w.failed),
        ("running", w.running),
        ("pending", w.pending),
        ("cancelled", w.cancelled),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{n} {what}"))
    .collect();
    parts.join(", ")
}

fn item_row(run: RunId, item: &RunItem, name: Option<&str>) -> Markup {
    let statements = match item.statements_total {
        Some(total) => format!("{} / {total}", item.statements_done),
        None => format!("{} / ?", item.statements_done),
    };
    // The migration being applied while running ("3 of 7"), or how many finished.
    let migrations = match (item.migrations_total, item.status) {
        (Some(total), RunItemStatus::Running) => format!("{} of {total}", (item.migrations_done + 1).min(total)),
        (Some(total), _) => format!("{} of {total} done", item.migrations_done),
        (None, _) => "–".to_owned(),
    };
    html! {
        tr data-status=(item.status.as_str()) data-target=(item.target_id) {
            td.num { (item.ordinal + 1) }
            td { (name.unwrap_or("(deleted target)")) }
            td { (status(item.status.as_str())) }
            td.num { (migrations) }
            td.num { (statements) }
            td.num { (item.attempts) " / " (item.max_attempts) }
            td.num { (millis(item.duration_ms)) }
            td {
                @if let Some(message) = &item.error_message {
                    @if let Some(code) = &item.error_code { code { (code) } " " }
                    (message)
                }
            }
            td { a href={ "/runs/" (run) "/items/" (item.id) } aria-label={ "Logs of " (name.unwrap_or("target")) } { "Logs" } }
        }
    }
}

/// `GET /runs/{id}/live`: the grid alone, for the page's script.
pub(crate) async fn run_live(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    let detail = app::runs::get_run(&state.hub, *id).await.map_err(viewer.fail())?;
    let grid = grid(&state, &viewer, &detail, None).await?;
    Ok(respond(StatusCode::OK, grid))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    comment: Option<String>,
    content_checksum: Option<String>,
}

async fn after_action(state: &AppState, viewer: &Viewer, id: RunId, result: app::AppResult<Run>) -> Page {
    match result {
        Ok(_) => Ok(see_other(&format!("/runs/{id}"))),
        Err(e) => {
            let problems = Problems::from_app(viewer, e, &[])?;
            let detail = app::runs::get_run(&state.hub, id).await.map_err(viewer.fail())?;
            let body = run_page(state, viewer, &detail, (None, false), &problems).await?;
            let code = StatusCode::CONFLICT;
            Ok(respond(code, layout(viewer, Section::Runs, "Run", body)))
        }
    }
}

fn decision(form: DecisionForm) -> app::runs::DecisionInput {
    app::runs::DecisionInput {
        comment: form.comment.filter(|c| !c.trim().is_empty()),
        content_checksum: form.content_checksum.filter(|c| !c.is_empty()),
        version: None,
    }
}

/// `POST /runs/{id}/approve`.
pub(crate) async fn approve(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<RunId>,
    form: web::Form<DecisionForm>,
) -> Page {
    let result = app::runs::approve(&state.hub, &viewer.caller, *id, decision(form.into_inner())).await;
    after_action(&state, &viewer, *id, result).await
}

/// `POST /runs/{id}/deny`.
pub(crate) async fn deny(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<RunId>,
    form: web::Form<DecisionForm>,
) -> Page {
    let result = app::runs::deny(&state.hub, &viewer.caller, *id, decision(form.into_inner())).await;
    after_action(&state, &viewer, *id, result).await
}

/// `POST /runs/{id}/refresh`.
pub(crate) async fn refresh(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    let result = app::runs::refresh(&state.hub, &viewer.caller, *id).await;
    after_action(&state, &viewer, *id, result).await
}

/// `POST /runs/{id}/retry`: the new run's page.
pub(crate) async fn retry(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    match app::runs::retry(&state.hub, &viewer.caller, *id).await {
        Ok(run) => Ok(see_other(&format!("/runs/{}", run.id))),
        Err(e) => after_action(&state, &viewer, *id, Err(e)).await,
    }
}

/// `POST /runs/{id}/continue`: start the next wave, or resume a halted run.
pub(crate) async fn proceed(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    let result = app::waves::continue_run(&state.hub, &viewer.caller, *id).await;
    after_action(&state, &viewer, *id, result).await
}

/// `POST /runs/{id}/execute`.
pub(crate) async fn execute(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    match app::runs::execute(&state.hub, &viewer.caller, *id).await {
        // To the grid, with a confirmation beside it.
        Ok(_) => Ok(see_other(&format!("/runs/{id}?executed=1#executed"))),
        result => after_action(&state, &viewer, *id, result).await,
    }
}

/// `POST /runs/{id}/cancel`.
pub(crate) async fn cancel(state: web::Data<AppState>, viewer: Viewer, id: web::Path<RunId>) -> Page {
    let result = app::runs::cancel(&state.hub, &viewer.caller, *id).await;
    after_action(&state, &viewer, *id, result).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    after: Option<String>,
}

/// `GET /runs/{id}/items/{item_id}`: one target's log.
pub(crate) async fn item_logs(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(RunId, RunItemId)>,
    q: web::Query<LogQuery>,
) -> Page {
    let (run_id, item_id) = path.into_inner();
    let after = q.after.as_deref().and_then(|a| a.parse::<u32>().ok());
    let (item, logs) =
        app::runs::item_logs(&state.hub, run_id, item_id, &app::page(after, Some(500))).await.map_err(viewer.fail())?;
    let names = app::lookup::target_names(&state.hub, &[item.target_id]).await.map_err(viewer.fail())?;
    let name = names.get(&item.target_id).map_or("(deleted target)", String::as_str);
    let body = html! {
        p.muted { a href="/runs" { "Runs" } " / " a href={ "/runs/" (run_id) } { code { (short(&run_id)) } } " / " (name) }
        h1 { "Log of " (name) }
        dl.facts.card {
            dt { "Status" } dd { (status(item.status.as_str())) }
            dt { "Migrations" } dd { (item.migrations_done) " of " (item.migrations_total.map_or("?".to_owned(), |t| t.to_string())) " done" }
            dt { "Statements" } dd { (item.statements_done) " of " (item.statements_total.map_or("?".to_owned(), |t| t.to_string())) " of the current migration" }
            dt { "Attempts" } dd { (item.attempts) " of " (item.max_attempts) }
            dt { "Started" } dd { (maybe_when(item.started_at)) }
            dt { "Finished" } dd { (maybe_when(item.finished_at)) }
            dt { "Duration" } dd { (millis(item.duration_ms)) }
            @if let Some(message) = &item.error_message {
                dt { "Error" } dd { @if let Some(code) = &item.error_code { code { (code) } " " } (message) }
            }
        }
        @if logs.items.is_empty() {
            p.empty { "No log lines yet." }
        } @else {
            table id="log" {
                thead { tr {
                    th.num scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Level" }
                    th scope="col" { "Migration" } th.num scope="col" { "Statement" } th.num scope="col" { "Duration" } th.num scope="col" { "Rows" }
                    th scope="col" { "Message" }
                } }
                tbody {
                    @for line in &logs.items {
                        tr class={ "log-" (line.level.as_str()) } {
                            td.num { (line.seq) }
                            td { (when(line.created_at)) }
                            td { (line.level.as_str()) }
                            td { @if let Some(key) = &line.version_key { code { (key) } } }
                            // Stored from 1 (lines older than releases were stored from 0).
                            td.num { (line.statement_index.map_or(String::new(), |i| i.to_string())) }
                            td.num { (line.duration_ms.map_or(String::new(), |d| millis(Some(d)))) }
                            td.num { (line.rows_affected.map_or(String::new(), |r| r.to_string())) }
                            td { pre.logline { (line.message) } }
                        }
                    }
                }
            }
            (next_link(&format!("/runs/{run_id}/items/{item_id}"), &[], logs.next.map(|n| n.to_string())))
        }
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Runs, "Target log", body)))
}
