//! Server-rendered pages (maud): the layout, the login page and the signed-in landing page. Every form
//! that changes state carries the session's CSRF token; no inline script or style (the CSP forbids them).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::guard::Principal;

/// A page as a response.
pub(crate) fn html(status: StatusCode, page: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(page.into_string())
}

#[allow(clippy::needless_pass_by_value)] // maud splices markup by value
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · migrate-hub" }
            }
            body {
                header { strong { "migrate-hub" } }
                main { (body) }
            }
        }
    }
}

/// The login page: the configured ways in, and what went wrong last time.
pub(crate) fn login(oidc_issuer: Option<&str>, password: bool, message: Option<&str>) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(message) = message {
                p role="alert" { (message) }
            }
            @if let Some(issuer) = oidc_issuer {
                p { a href="/login/oidc" { "Sign in with " (provider_name(issuer)) } }
            }
            @if password {
                form method="post" action="/login/password" {
                    p { label { "Email " input type="email" name="email" autocomplete="username" required; } }
                    p {
                        label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                    }
                    p { button type="submit" { "Sign in" } }
                }
            }
            @if oidc_issuer.is_none() && !password {
                p { "No sign-in method is configured on this server; use an API token." }
            }
        },
    )
}

fn provider_name(issuer: &str) -> &str {
    if issuer.trim_end_matches('/') == "https://accounts.google.com" { "Google" } else { issuer }
}

/// The landing page of a signed-in user.
pub(crate) fn home(principal: &Principal) -> Markup {
    let user = &principal.user;
    layout(
        "Home",
        html! {
            h1 { "Signed in" }
            p { (user.display_name.as_str()) " <" (user.email.as_str()) "> · role " (user.role.as_str()) }
            form method="post" action="/logout" {
                input type="hidden" name="csrf_token" value=(principal.csrf.as_deref().unwrap_or_default());
                button type="submit" { "Sign out" }
            }
        },
    )
}
