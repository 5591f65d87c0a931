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
    let body = html! {
        h1 { "Dashboard" }
        p.muted {
            "Signed in as " (viewer.principal.user.display_name.as_str()) " <" (viewer.principal.user.email.as_str()) ">, "
            (viewer.role().as_str()) "."
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
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Dashboard, "Dashboard", body)))
}
