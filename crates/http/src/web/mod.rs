//! The web UI: server-rendered pages (maud) over the same `app` use cases as the REST API, so a rule holds
//! in both or neither.
//!
//! - One layout, one stylesheet (`/static/app.css`) and one small script (`/static/live.js`: the live run
//!   grid, the run page's header once the run ends, and the target form's port). The CSP forbids inline
//!   script and style, so there is none.
//! - Every form that changes state posts `csrf_token` (checked by the guard, with the origin). A refused
//!   form is rendered again with what was typed and each problem next to its field ([`forms`]).
//! - Errors a browser sees are HTML pages with the request id ([`PageError`]); the guard and the
//!   not-found handler use [`wants_html`] to pick HTML over JSON.

mod account;
mod assets;
mod audit;
mod dashboard;
pub(crate) mod forms;
mod imports;
mod inventory;
mod migrations;
mod projects;
mod runs;
mod sql;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use domain::enums::Role;
use maud::{DOCTYPE, Markup, html};

use crate::error::{ApiError, app_error};
use crate::guard::{Principal, request_id};

pub(crate) use account::{
    create_token, create_user, revoke_token, revoke_user_token, tokens, update_user, user_tokens, users,
};
pub(crate) use assets::{script, stylesheet};
pub(crate) use audit::audit;
pub(crate) use dashboard::dashboard;
pub(crate) use imports::{import as import_upload, import_page};
pub(crate) use inventory::{
    accept_drift, change_members, clear_secret, create_db_set, create_environment, create_target, create_webhook,
    db_set, db_sets, delete_target, delete_webhook, environment, environments_list, read_history, request_action,
    set_secret, target, targets, test_connection, test_webhook, update_db_set, update_drift, update_environment,
    update_target, update_windows,
};
pub(crate) use migrations::{create_migration, create_version, migration, migrations, new_migration, new_version};
pub(crate) use projects::{create_project, project, projects, update_project};
pub(crate) use runs::{
    approve, cancel, create_run, deny, execute, item_logs, new_run, proceed, refresh, retry, run, run_live, runs,
};

/// What a page handler answers: the page, or an error page with the request id.
pub(crate) type Page = Result<HttpResponse, PageError>;

/// A page as a response.
pub(crate) fn respond(status: StatusCode, page: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(page.into_string())
}

/// A `303 See Other` to `to` (after a form post, so a reload does not post again).
pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, to)).finish()
}

/// Whether a refusal of `req` should be an HTML page: a browser asking for a page, not the API.
pub(crate) fn wants_html(req: &HttpRequest) -> bool {
    let path = req.path();
    let api = path.starts_with("/api/") || matches!(path, "/metrics" | "/healthz" | "/readyz");
    !api && req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

/// The signed-in person looking at a page, with what the use cases need to know about the request.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub principal: Principal,
    pub caller: app::Caller,
    pub request_id: String,
}

impl Viewer {
    pub(crate) fn role(&self) -> Role {
        self.principal.user.role
    }

    pub(crate) fn csrf(&self) -> &str {
        self.principal.csrf.as_deref().unwrap_or_default()
    }

    /// A use case's failure as a page.
    pub(crate) fn fail(&self) -> impl FnOnce(app::AppError) -> PageError + '_ {
        move |e| PageError(app_error(&self.request_id, e))
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request_id = request_id(req);
        let Some(principal) = req.extensions().get::<Principal>().cloned() else {
            return ready(Err(PageError(ApiError::unauthenticated("sign in to see this page"))));
        };
        let caller = principal.caller(req);
        ready(Ok(Viewer { principal, caller, request_id }))
    }
}

/// A failure shown to a browser: an HTML page with the status, a sentence and the request id; not being
/// signed in sends the browser to the login page instead.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        error_page(&self.0, None)
    }
}

/// The page for a refusal or failure (`request_id` when the error does not carry one).
pub(crate) fn error_page(error: &ApiError, request_id: Option<&str>) -> HttpResponse {
    if let ApiError::Unauthenticated { message } = error {
        let disabled = message == crate::guard::DISABLED;
        return see_other(if disabled { "/login?error=disabled" } else { "/login" });
    }
    let status = error.status_code();
    let (title, message, id) = match error {
        ApiError::Internal { request_id } => (
            "Something went wrong",
            "An internal error occurred; quote the request id when reporting it.".to_owned(),
            Some(request_id.as_str()),
        ),
        ApiError::Unavailable { request_id } => (
            "Temporarily unavailable",
            "The service is temporarily unavailable; try again in a moment.".to_owned(),
            Some(request_id.as_str()),
        ),
        ApiError::NotFound { .. } => ("Not found", format!("{}.", sentence(&error.to_string())), request_id),
        ApiError::Forbidden { .. } => ("Not allowed", format!("{}.", sentence(&error.to_string())), request_id),
        _ => ("That did not work", format!("{}.", sentence(&error.to_string())), request_id),
    };
    let page = bare_layout(
        title,
        html! {
            h1 { (title) }
            p { (message) }
            @if let Some(id) = id.filter(|id| !id.is_empty()) {
                p { "Request id: " code.request-id { (id) } }
            }
            p { a href="/" { "Back to the dashboard" } }
        },
    );
    respond(status, page)
}

/// The first letter in upper case.
pub(crate) fn sentence(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · migrate-hub" }
            link rel="stylesheet" href=(*assets::STYLESHEET_PATH);
            link rel="icon" href="data:,";
        }
    }
}

/// A page for someone who may not be signed in (login, errors).
#[allow(clippy::needless_pass_by_value)] // maud splices markup by value
pub(crate) fn bare_layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/" { "migrate-hub" } }
                main id="main" { (body) }
            }
        }
    }
}

/// Which part of the site a page belongs to (the current navigation link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Dashboard,
    Migrations,
    Runs,
    Inventory,
    Users,
    Tokens,
    Audit,
}

/// A page of the signed-in site: navigation by role, the viewer, sign out.
#[allow(clippy::needless_pass_by_value)] // maud splices markup by value
pub(crate) fn layout(viewer: &Viewer, section: Section, title: &str, body: Markup) -> Markup {
    let user = &viewer.principal.user;
    let admin = viewer.role() == Role::Admin;
    let link = |s: Section, href: &str, text: &str| {
        html! {
            li { a href=(href) aria-current=[(s == section).then_some("page")] { (text) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "migrate-hub" }
                    nav aria-label="Main" {
                        ul {
                            (link(Section::Dashboard, "/", "Dashboard"))
                            (link(Section::Migrations, "/migrations", "Migrations"))
                            (link(Section::Runs, "/runs", "Runs"))
                            (link(Section::Tokens, "/tokens", "My tokens"))
                            @if admin {
                                (link(Section::Inventory, "/admin/environments", "Inventory"))
                                (link(Section::Users, "/admin/users", "Users"))
                                (link(Section::Audit, "/audit", "Audit"))
                            }
                        }
                    }
                    div.who {
                        span { (user.display_name.as_str()) " · " (user.role.as_str()) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf_token" value=(viewer.csrf());
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// An instant, readable and machine-readable.
pub(crate) fn when(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// An optional instant, or a dash.
pub(crate) fn maybe_when(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => when(at),
        None => html! { "—" },
    }
}

/// A status as a coloured label.
pub(crate) fn status(name: &str) -> Markup {
    html! { span class={ "status status-" (name) } { (name.replace('_', " ")) } }
}

/// A link to the next page of a list, if there is one, keeping the other query parameters.
pub(crate) fn next_link(path: &str, query: &[(&str, String)], next: Option<String>) -> Markup {
    match next {
        None => html! {},
        Some(next) => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query.iter().filter(|(k, v)| *k != "after" && !v.is_empty()) {
                url.append_pair(k, v);
            }
            url.append_pair("after", &next);
            html! { p.pager { a rel="next" href={ (path) "?" (url.finish()) } { "Next page →" } } }
        }
    }
}

/// The last 8 characters of an id, for tables (the full id is in the link and the title). Ids are UUIDv7:
/// their first characters are the time they were made, the same for every id of the same minute, and their
/// last ones are random, so these tell ids apart at a glance.
pub(crate) fn short(id: &impl ToString) -> String {
    let id = id.to_string();
    let chars: Vec<char> = id.chars().collect();
    chars[chars.len().saturating_sub(8)..].iter().collect()
}

/// What a migration's state on a target (as the hub's runs left it) means, for people.
pub(crate) fn left_as(state: domain::run::LeftAs) -> &'static str {
    use domain::run::LeftAs;
    match state {
        LeftAs::Applied => "applied",
        LeftAs::Reverted => "reverted",
        LeftAs::Failed => "failed",
        LeftAs::Recorded => "recorded as applied (baseline)",
        LeftAs::Adopted => "recorded as applied (adopted)",
        LeftAs::RolledBack => "marked rolled back",
    }
}

/// The first 8 characters of a checksum, as tools show a hash.
pub(crate) fn short_hex(hex: &str) -> &str {
    hex.get(..8).unwrap_or(hex)
}

/// A duration in milliseconds, readable.
pub(crate) fn millis(ms: Option<u64>) -> String {
    match ms {
        None => "—".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// The login page: the configured ways in, and what went wrong last time.
pub(crate) fn login(oidc_issuer: Option<&str>, password: bool, message: Option<&str>) -> Markup {
    bare_layout(
        "Sign in",
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                @if let Some(message) = message {
                    p.notice role="alert" { (message) }
                }
                @if let Some(issuer) = oidc_issuer {
                    p { a.button href="/login/oidc" { "Sign in with " (provider_name(issuer)) } }
                }
                @if password {
                    form method="post" action="/login/password" {
                        div.field {
                            label for="email" { "Email" }
                            input id="email" type="email" name="email" autocomplete="username" required;
                        }
                        div.field {
                            label for="password" { "Password" }
                            input id="password" type="password" name="password" autocomplete="current-password" required;
                        }
                        p { button type="submit" { "Sign in with a password" } }
                    }
                }
                @if oidc_issuer.is_none() && !password {
                    p { "No sign-in method is configured on this server; use an API token." }
                }
            }
        },
    )
}

fn provider_name(issuer: &str) -> &str {
    if issuer.trim_end_matches('/') == "https://accounts.google.com" { "Google" } else { issuer }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_ids_of_the_same_minute_differ() {
        let (a, b) = (domain::ids::RunId::new(), domain::ids::RunId::new());
        assert_eq!(short(&a).len(), 8);
        assert_ne!(short(&a), short(&b), "{a} {b}");
        assert!(a.to_string().ends_with(&short(&a)));
        assert_eq!(short(&"abc"), "abc");
    }
}
