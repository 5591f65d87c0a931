//! Inventory pages (admins): environments and their policies, targets with their write-only secrets and a
//! connection check, and db sets with membership editing for sets of thousands of targets.
//!
//! A target's password is never rendered: the password field is always empty, a refused form does not
//! keep it, and the pages show only whether the secret is sealed, a reference or absent.
//!
//! One module per resource: `environments`, `targets`, `db_sets`; the helpers they share are here.

mod db_sets;
mod environments;
mod targets;

use domain::ids::EnvironmentId;
use domain::model::Environment;
use domain::values::Name;
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::Problems;
use crate::web::{PageError, Viewer};

pub(crate) use db_sets::{change_members, create_db_set, db_set, db_sets, update_db_set};
pub(crate) use environments::{
    create_environment, create_webhook, delete_webhook, environment, environments_list, test_webhook, update_drift,
    update_environment, update_windows,
};
pub(crate) use targets::{
    accept_drift, clear_secret, create_target, delete_target, read_history, request_action, set_secret, target,
    targets, test_connection, update_target,
};

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

#[derive(Debug, Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<String>,
}
