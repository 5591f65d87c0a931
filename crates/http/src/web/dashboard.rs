//! The dashboard: what needs the viewer (runs awaiting their approval), their own runs, rollouts running
//! now with their progress, and recent failures.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use app::runs::RunFilter;
use domain::enums::Role;
use domain::ids::RunId;
use domain::model::Run;
use domain::run::RunStatus;
use maud::html;

use crate::startup::AppState;
use crate::web::runs::{decorate, run_table};
use crate::web::{PageError, Section, Viewer, layout, respond};

/// How many runs each panel shows.
const PANEL: u32 = 10;

async fn runs(state: &AppState, viewer: &Viewer, filter: RunFilter, limit: u32) -> Result<Vec<Run>, PageError> {
    let page = app::runs::list_runs(&state.hub, &filter, &app::page::<RunId>(None, Some(limit)))
        .await
        .map_err(viewer.fail())?;
    Ok(page.items)
}

fn with_status(status: RunStatus) -> RunFilter {
    RunFilter { status: Some(status), ..RunFilter::default() }
}

/// One step of the getting-started checklist: done or not, what it is, where to do it.
struct Step {
    done: bool,
    what: &'static str,
    href: String,
    link: &'static str,
}

/// The getting-started checklist, while the hub has no run at all: environment → targets → set → project →
/// migrations → request, each ticked once done, with a link to where it is done.
async fn first_steps(state: &AppState, viewer: &Viewer) -> Result<Option<Vec<Step>>, PageError> {
    let hub = &state.hub;
    let fail = || viewer.fail();
    if !runs(state, viewer, RunFilter::default(), 1).await?.is_empty() {
        return Ok(None);
    }
    let first = || app::page::<domain::values::Name>(None, Some(50));
    let environments = app::inventory::list_environments(hub, &first()).await.map_err(fail())?.items;
    let mut targets = false;
    for env in &environments {
        if !app::inventory::list_targets(hub, env.id, None, &app::page(None, Some(1)))
            .await
            .map_err(fail())?
            .items
            .is_empty()
        {
            targets = true;
            break;
        }
    }
    let sets =
        !app::inventory::list_db_sets(hub, None, &app::page(None, Some(1))).await.map_err(fail())?.items.is_empty();
    let projects = app::projects::list_projects(hub, &first()).await.map_err(fail())?.items;
    let project = projects.first().map(|p| p.id.to_string()).unwrap_or_default();
    let mut migrations = false;
    for p in &projects {
        let page = app::migrations::list_migrations(hub, p.id, &app::page(None, Some(1))).await.map_err(fail())?;
        if !page.items.is_empty() {
            migrations = true;
            break;
        }
    }
    Ok(Some(vec![
        Step {
            done: !environments.is_empty(),
            what: "An environment, with its approval policy (admin)",
            href: "/admin/environments".into(),
            link: "Environments",
        },
        Step {
            done: targets,
            what: "Targets: the databases of an environment (admin)",
            href: "/admin/targets".into(),
            link: "Targets",
        },
        Step {
            done: sets,
            what: "A db set: the targets a release goes to (admin)",
            href: "/admin/db-sets".into(),
            link: "Db sets",
        },
        Step {
            done: !projects.is_empty(),
            what: "A project: a series of migrations (manager)",
            href: "/projects".into(),
            link: "Projects",
        },
        Step {
            done: migrations,
            what: "Migrations in the project: write one, or import a directory",
            href: format!("/migrations/new?project_id={project}"),
            link: "New migration",
        },
        Step {
            done: false,
            what: "A release requested, then approved by a second person and executed",
            href: format!("/runs/new?project_id={project}"),
            link: "Request a release",
        },
    ]))
}

/// `GET /`: the dashboard of a signed-in user (others are sent to the login page).
pub(crate) async fn dashboard(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, PageError> {
    let me = viewer.principal.user.id;
    let reviewer = viewer.role() >= Role::Manager;
    // Runs others requested that wait for a decision; the rules decide whether this viewer may give it.
    let awaiting: Vec<Run> = if reviewer {
        let mut mine_to_decide = Vec::new();
        for run in runs(&state, &viewer, with_status(RunStatus::AwaitingApproval), 100).await? {
            if run.requested_by == me {
                continue;
            }
            let detail = app::runs::get_run(&state.hub, run.id).await.map_err(viewer.fail())?;
            if detail.allowed(&viewer.caller.actor).approve.is_ok() {
                mine_to_decide.push(run);
            }
            if mine_to_decide.len() >= PANEL as usize {
                break;
            }
        }
        mine_to_decide
    } else {
        Vec::new()
    };
    let mine = runs(&state, &viewer, RunFilter { requested_by: Some(me), ..RunFilter::default() }, PANEL).await?;
    let running = runs(&state, &viewer, with_status(RunStatus::Running), PANEL).await?;
    let failed = runs(&state, &viewer, with_status(RunStatus::Failed), PANEL).await?;
    let mut progress = Vec::new();
    for run in &running {
        let detail = app::runs::get_run(&state.hub, run.id).await.map_err(viewer.fail())?;
        let total: u64 = detail.items.iter().map(|(_, n)| n).sum();
        let done: u64 = detail.items.iter().filter(|(s, _)| s.is_terminal()).map(|(_, n)| n).sum();
        progress.push((run.id, done, total));
    }
    let all: Vec<Run> = awaiting.iter().chain(&mine).chain(&running).chain(&failed).cloned().collect();
    let (labels, people) = decorate(&state, &viewer, &all).await?;
    let steps = first_steps(&state, &viewer).await?;
    let drifted = app::drift::drifted(&state.hub, 20).await.map_err(viewer.fail())?;
    let body = html! {
        h1 { "Dashboard" }
        p.muted {
            "Signed in as " (viewer.principal.user.display_name.as_str()) " <" (viewer.principal.user.email.as_str()) ">, "
            (viewer.role().as_str()) "."
        }
        @if let Some(steps) = &steps {
            section.card aria-labelledby="getting-started" {
                h2 id="getting-started" { "Getting started" }
                p { "The hub has no run yet. In order:" }
                ol.checklist {
                    @for step in steps {
                        li class=(if step.done { "done" } else { "todo" }) {
                            @if step.done { span.status.status-succeeded { "done" } } @else { span.status { "to do" } }
                            " " (step.what) " · " a href=(step.href) { (step.link) }
                        }
                    }
                }
            }
        }
        @if reviewer {
            section.card {
                h2 { "Awaiting your approval" }
                (run_table(&awaiting, &labels, &people, "Nothing waits for your decision."))
            }
        }
        section.card {
            h2 { "Running now" }
            (run_table(&running, &labels, &people, "No rollout is running."))
            @if !progress.is_empty() {
                ul {
                    @for (id, done, total) in &progress {
                        li {
                            a href={ "/runs/" (id) } { code { (crate::web::short(id)) } } " "
                            progress max=(total) value=(done) aria-label="targets finished" { (done) " of " (total) }
                            " " (done) " of " (total) " targets"
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "My runs" }
            (run_table(&mine, &labels, &people, "You have not requested a run yet."))
            p { a href="/runs?mine=1" { "All my runs" } }
        }
        section.card {
            h2 { "Recent failures" }
            (run_table(&failed, &labels, &people, "No failed runs."))
        }
        @if !drifted.is_empty() {
            section.card id="drifted" {
                h2 { "Schema drift" }
                p { "These targets' schemas differ from what the hub's last apply left." }
                ul {
                    @for d in &drifted {
                        li {
                            a href={ "/admin/targets/" (d.target) "#drift" } { (d.name) } " in " (d.environment)
                            " · " (d.objects) " objects · since " (crate::web::when(d.since))
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Dashboard, "Dashboard", body)))
}
