//! Account pages: users (admins: roles, disabling, pre-provisioning) and each person's API tokens.
//!
//! A new token's value is on the page that answers the form post, marked `no-store`, and never again:
//! the hub keeps only its MAC. The rules (last admin, whose tokens) are `app::identity`'s.

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use app::identity::{CreatedToken, DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, NewTokenInput, NewUserInput, UserChange};
use chrono::Utc;
use domain::enums::{Role, TokenScope};
use domain::ids::{TokenId, UserId};
use domain::model::{ApiToken, User};
use domain::values::Email;
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems, csrf};
use crate::web::{Page, PageError, Section, Viewer, layout, maybe_when, next_link, respond, see_other, status, when};

// --- users ---

const USER_FIELDS: &[&str] = &["email", "display_name", "role"];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UsersQuery {
    after: Option<String>,
    saved: Option<String>,
}

fn users_page(
    viewer: &Viewer,
    users: &[User],
    next: Option<String>,
    form: &Form,
    problems: &Problems,
    notice: Option<&str>,
) -> Markup {
    let roles = forms::names(Role::NAMES);
    let body = html! {
        h1 { "Users" }
        @if let Some(notice) = notice { p.success role="status" { (notice) } }
        (problems.summary())
        table {
            thead { tr {
                th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Sign-in" }
                th scope="col" { "Last login" } th scope="col" { "Role" } th scope="col" { "Status" }
            } }
            tbody {
                @for u in users {
                    @let id = u.id.to_string();
                    tr id={ "user-" (id) } {
                        td { (u.email.as_str()) br; a href={ "/admin/users/" (id) "/tokens" } { "API tokens" } }
                        td { (u.display_name.as_str()) }
                        td {
                            @if u.oidc_identity.is_some() { "OIDC" } @else if u.has_password { "password" } @else { span.muted { "not yet signed in" } }
                        }
                        td { (maybe_when(u.last_login_at)) }
                        td {
                            form.inline method="post" action={ "/admin/users/" (id) } {
                                (csrf(viewer))
                                label.visually-hidden for={ "role-" (id) } { "Role of " (u.email.as_str()) }
                                select id={ "role-" (id) } name="role" {
                                    @for (value, text) in &roles {
                                        option value=(value) selected[value == u.role.as_str()] { (text) }
                                    }
                                }
                                " "
                                button.secondary type="submit" { "Change role" }
                            }
                        }
                        td {
                            @if u.disabled { (status("disabled")) } @else { (status("active")) }
                            form.inline method="post" action={ "/admin/users/" (id) } {
                                (csrf(viewer))
                                input type="hidden" name="disabled" value=(!u.disabled);
                                " "
                                @if u.disabled {
                                    button.secondary type="submit" { "Enable" }
                                } @else {
                                    button.danger type="submit" { "Disable" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/admin/users", &[], next))
        section.card {
            h2 id="new" { "Add a user" }
            p { "Pre-provisions an account: the first sign-in with this email (OIDC) binds to it, with this role." }
            form method="post" action="/admin/users" {
                (csrf(viewer))
                (forms::input(form, problems, "email", "Email", Input { kind: "email", required: true, max_length: Some(254), ..Input::default() }))
                (forms::input(form, problems, "display_name", "Display name (optional)", Input { max_length: Some(200), ..Input::default() }))
                (forms::select(form, problems, "role", "Role", &roles, None))
                p { button type="submit" { "Add user" } }
            }
        }
    };
    layout(viewer, Section::Users, "Users", body)
}

async fn list_users(
    state: &AppState,
    viewer: &Viewer,
    after: Option<&str>,
) -> Result<(Vec<User>, Option<String>), PageError> {
    let after = after.and_then(|a| Email::parse(a).ok());
    let page = app::identity::list_users(&state.hub, &viewer.caller, &app::page(after, Some(100)))
        .await
        .map_err(viewer.fail())?;
    Ok((page.items, page.next.map(|e| e.as_str().to_owned())))
}

/// `GET /admin/users`.
pub(crate) async fn users(state: web::Data<AppState>, viewer: Viewer, q: web::Query<UsersQuery>) -> Page {
    let (users, next) = list_users(&state, &viewer, q.after.as_deref()).await?;
    let form = Form::with(&[("role", "user")]);
    // Only an email address is shown back (a link cannot make the page say anything else).
    let notice = q
        .saved
        .as_deref()
        .filter(|email| Email::parse((*email).to_owned()).is_ok())
        .map(|email| format!("{email} saved."));
    let page = users_page(&viewer, &users, next, &form, &Problems::default(), notice.as_deref());
    Ok(respond(StatusCode::OK, page))
}

/// `POST /admin/users`: pre-provisions a user.
pub(crate) async fn create_user(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let role = form.optional::<Role>("role", "role", &mut problems);
    let email = form.needed("email", "email address", &mut problems);
    if let (true, Some(email)) = (problems.is_empty(), email) {
        let input = NewUserInput { email, display_name: form.text("display_name"), role };
        match app::identity::create_user(&state.hub, &viewer.caller, input).await {
            Ok(user) => return Ok(see_other(&format!("/admin/users?saved={}", user.email.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, USER_FIELDS)?,
        }
    }
    let (users, next) = list_users(&state, &viewer, None).await?;
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, users_page(&viewer, &users, next, &form, &problems, None)))
}

/// `POST /admin/users/{id}`: `role` and/or `disabled`.
pub(crate) async fn update_user(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<UserId>,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let change = UserChange {
        role: form.optional::<Role>("role", "role", &mut problems),
        disabled: form.optional::<bool>("disabled", "choice", &mut problems),
    };
    if problems.is_empty() {
        match app::identity::update_user(&state.hub, &viewer.caller, *id, change).await {
            Ok(user) => return Ok(see_other(&format!("/admin/users?saved={}", user.email.as_str()))),
            Err(e) => problems = Problems::from_app(&viewer, e, &[])?,
        }
    }
    let (users, next) = list_users(&state, &viewer, None).await?;
    let page = users_page(&viewer, &users, next, &Form::with(&[("role", "user")]), &problems, None);
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page))
}

// --- tokens ---

const TOKEN_FIELDS: &[&str] = &["name", "scope", "expires_in_days"];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokensQuery {
    after: Option<String>,
    revoked: Option<String>,
}

fn token_state(t: &ApiToken) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.is_usable_at(Utc::now()) {
        "active"
    } else {
        "expired"
    }
}

/// Tokens with their state and, for those not revoked, a Revoke button posting to `revoke(token)`.
fn token_table(viewer: &Viewer, tokens: &[ApiToken], revoke: impl Fn(&ApiToken) -> String) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Scope" }
                th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used" }
                th scope="col" { "Status" } th scope="col" { span.visually-hidden { "Actions" } }
            } }
            tbody {
                @for t in tokens {
                    tr {
                        td { (t.name) }
                        td { code { (t.prefix) "…" } }
                        td { (t.scope.as_str()) }
                        td { (when(t.created_at)) }
                        td { (maybe_when(t.expires_at)) }
                        td { (maybe_when(t.last_used_at)) }
                        td { (status(token_state(t))) }
                        td {
                            @if t.revoked_at.is_none() {
                                form.inline method="post" action=(revoke(t)) {
                                    (csrf(viewer))
                                    button.danger type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /admin/users/{id}/tokens`: an admin sees a person's tokens and may revoke any of them (a lost
/// laptop, someone leaving).
pub(crate) async fn user_tokens(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<UserId>,
    q: web::Query<TokensQuery>,
) -> Page {
    let people = app::lookup::people(&state.hub, &[*id]).await.map_err(viewer.fail())?;
    let person = people.get(&*id).ok_or_else(|| viewer.fail()(app::AppError::NotFound { what: "user" }))?;
    let after = q.after.as_deref().and_then(|a| a.parse::<TokenId>().ok());
    let page = app::identity::list_tokens(&state.hub, &viewer.caller, Some(*id), &app::page(after, Some(100)))
        .await
        .map_err(viewer.fail())?;
    let path = format!("/admin/users/{}/tokens", *id);
    let body = html! {
        p.muted { a href="/admin/users" { "Users" } " / " (person.email) }
        h1 { "API tokens of " (person.email) }
        @if let Some(name) = q.revoked.as_deref() { p.success role="status" { "Token " (name) " revoked." } }
        @if page.items.is_empty() {
            p.empty { "No tokens." }
        } @else {
            (token_table(&viewer, &page.items, |t| format!("{path}/{}/revoke", t.id)))
            (next_link(&path, &[], page.next.map(|n| n.to_string())))
        }
    };
    Ok(respond(StatusCode::OK, layout(&viewer, Section::Users, "API tokens", body)))
}

/// `POST /admin/users/{id}/tokens/{token}/revoke`: revokes it (audited as `token.revoked`) and comes back to
/// its owner's tokens.
pub(crate) async fn revoke_user_token(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(UserId, TokenId)>,
) -> Page {
    let (_, token) = path.into_inner();
    let token = app::identity::revoke_token(&state.hub, &viewer.caller, token).await.map_err(viewer.fail())?;
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.append_pair("revoked", &token.name);
    Ok(see_other(&format!("/admin/users/{}/tokens?{}", token.user_id, url.finish())))
}

fn tokens_page(
    viewer: &Viewer,
    tokens: &[ApiToken],
    next: Option<String>,
    form: &Form,
    problems: &Problems,
    notice: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "My API tokens" }
        p { "Tokens let scripts and CI call the API as you (" code { "Authorization: Bearer mh_…" } "). A read token cannot change anything." }
        @if let Some(notice) = notice { p.success role="status" { (notice) } }
        @if tokens.is_empty() {
            p.empty { "You have no tokens." }
        } @else {
            (token_table(viewer, tokens, |t| format!("/tokens/{}/revoke", t.id)))
            (next_link("/tokens", &[], next))
        }
        section.card {
            h2 id="new" { "New token" }
            (problems.summary())
            form method="post" action="/tokens" {
                (csrf(viewer))
                (forms::input(form, problems, "name", "Name", Input { required: true, max_length: Some(100), hint: Some("What it is for, e.g. “CI deploys”."), ..Input::default() }))
                (forms::select(form, problems, "scope", "Scope", &forms::names(TokenScope::NAMES), None))
                (forms::input(form, problems, "expires_in_days", "Expires in (days)", Input {
                    kind: "number", min: Some(1), max: Some(MAX_TOKEN_DAYS), required: true, ..Input::default()
                }))
                p { button type="submit" { "Create token" } }
            }
        }
    };
    layout(viewer, Section::Tokens, "My API tokens", body)
}

async fn my_tokens(
    state: &AppState,
    viewer: &Viewer,
    after: Option<&str>,
) -> Result<(Vec<ApiToken>, Option<String>), PageError> {
    let after = after.and_then(|a| a.parse::<TokenId>().ok());
    let page = app::identity::list_tokens(&state.hub, &viewer.caller, None, &app::page(after, Some(100)))
        .await
        .map_err(viewer.fail())?;
    Ok((page.items, page.next.map(|id| id.to_string())))
}

fn new_token_form() -> Form {
    Form::with(&[("scope", "write"), ("expires_in_days", &DEFAULT_TOKEN_DAYS.to_string())])
}

/// `GET /tokens`.
pub(crate) async fn tokens(state: web::Data<AppState>, viewer: Viewer, q: web::Query<TokensQuery>) -> Page {
    let (tokens, next) = my_tokens(&state, &viewer, q.after.as_deref()).await?;
    let notice = q.revoked.as_deref().map(|name| format!("Token {name} revoked."));
    let page = tokens_page(&viewer, &tokens, next, &new_token_form(), &Problems::default(), notice.as_deref());
    Ok(respond(StatusCode::OK, page))
}

fn created_page(viewer: &Viewer, created: &CreatedToken) -> Markup {
    let t = &created.token;
    let body = html! {
        h1 { "Token created" }
        div.notice role="alert" {
            p { strong { "Copy this token now: it is shown only once." } " The hub keeps only a fingerprint of it; if you lose it, revoke it and create another." }
        }
        div.field {
            label for="token-value" { "Token " (t.name) " (" (t.scope.as_str()) ", expires " (maybe_when(t.expires_at)) ")" }
            input id="token-value" type="text" readonly value=(created.value.expose_secret()) autocomplete="off" spellcheck="false";
        }
        p { a.button href="/tokens" { "Done: back to my tokens" } }
    };
    layout(viewer, Section::Tokens, "Token created", body)
}

/// `POST /tokens`: creates a token for the viewer; the answer is the one page that shows its value.
pub(crate) async fn create_token(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<Vec<(String, String)>>,
) -> Page {
    let form = Form::new(form);
    let mut problems = Problems::default();
    let scope = form.optional::<TokenScope>("scope", "scope", &mut problems);
    let days = form.required::<u32>("expires_in_days", "number of days", &mut problems);
    let name = form.needed("name", "name", &mut problems);
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if let (true, Some(name)) = (problems.is_empty(), name) {
        let input = NewTokenInput { name, scope, expires_in_days: days };
        match app::identity::create_token(&state.hub, &viewer.caller, &state.auth.token_key, input).await {
            Ok(created) => {
                let page = created_page(&viewer, &created);
                return Ok(HttpResponse::Ok()
                    .insert_header((CACHE_CONTROL, "no-store"))
                    .content_type("text/html; charset=utf-8")
                    .body(page.into_string()));
            }
            Err(e) => {
                // Refused for who is asking (e.g. with a token rather than a session): 403, as the API says.
                if e.is_forbidden() {
                    status = StatusCode::FORBIDDEN;
                }
                problems = Problems::from_app(&viewer, e, TOKEN_FIELDS)?;
            }
        }
    }
    let (tokens, next) = my_tokens(&state, &viewer, None).await?;
    Ok(respond(status, tokens_page(&viewer, &tokens, next, &form, &problems, None)))
}

/// `POST /tokens/{id}/revoke`: the viewer's own token (or, for an admin, anyone's).
pub(crate) async fn revoke_token(state: web::Data<AppState>, viewer: Viewer, id: web::Path<TokenId>) -> Page {
    let token = app::identity::revoke_token(&state.hub, &viewer.caller, *id).await.map_err(viewer.fail())?;
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.append_pair("revoked", &token.name);
    Ok(see_other(&format!("/tokens?{}", url.finish())))
}
