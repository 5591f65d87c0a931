//! Signing in and out: the login page, the OIDC round trip (`/login/oidc` → provider → `/auth/callback`),
//! optional password login, and logout.
//!
//! The OIDC `state` goes to the browser in a short-lived pre-login cookie (`SameSite=Lax`, ten minutes,
//! `HttpOnly`, path `/auth`); the nonce and PKCE verifier stay in the tool database under the state's
//! hash and are taken exactly once by the callback. A failed login says which check failed in the log and
//! a plain sentence on the page; it never echoes a code, token or state.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::ErrorCode;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::{ApiError, app_error, internal};
use crate::guard::{Authed, MaybeAuthed, Via, constant_time_eq, request_id};
use crate::session::{self, Method};
use crate::startup::AppState;
use crate::web as pages;

/// The pre-login cookie holding `state`.
const LOGIN_COOKIE: &str = "mh_login";
/// How long a login may take at the provider.
const LOGIN_TTL: Duration = Duration::from_secs(600);

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, to)).finish()
}

/// The address a request came from: the one function every user of it (rate limits, audit rows, sessions)
/// calls. It is the TCP peer, or what `X-Forwarded-For` says when the peer is a trusted proxy
/// ([`crate::settings::TrustedProxies::client_address`]).
pub(crate) fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return Some(peer.to_canonical()) };
    // A header that is not text is not an address either: it stops the walk like any other bad entry.
    let forwarded = req.headers().get_all("x-forwarded-for").map(|v| v.to_str().unwrap_or("?"));
    Some(state.proxies.client_address(peer, forwarded))
}

fn origin(req: &HttpRequest) -> app::Origin {
    app::Origin {
        ip: client_ip(req),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(500).collect()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    error: Option<String>,
}

/// `/login`: how to sign in here.
pub(crate) async fn page(
    state: web::Data<AppState>,
    caller: MaybeAuthed,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    if caller.0.is_some_and(|p| p.via == Via::Session) {
        return see_other("/");
    }
    let message = query.error.as_deref().map(|code| match code {
        "signed_out" => "You have signed out.",
        "disabled" => "Your account is disabled, so you were signed out. Ask an administrator to enable it.",
        "expired" => "Your session has ended; sign in again.",
        _ => "Signing in did not work; try again.",
    });
    login_page(&state, StatusCode::OK, message)
}

fn login_page(state: &AppState, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let oidc = state.auth.oidc.as_ref().map(|o| o.issuer());
    pages::respond(status, pages::login(oidc, state.auth.password_login, message))
}

/// `/login/oidc`: sends the browser to the provider.
pub(crate) async fn start_oidc(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound { what: "OIDC login" })?;
    if let Some(ip) = client_ip(&req)
        && state.auth.starts_by_ip.check_key(&ip).is_err()
    {
        return Err(ApiError::TooManyRequests);
    }
    let start = match oidc.begin().await {
        Ok(start) => start,
        Err(e) => return Err(provider_down(&req, &e)),
    };
    use secrecy::ExposeSecret;
    let state_text = start.state.expose_secret();
    app::sessions::save_pending_login(&state.hub, state_text, &start.pending, LOGIN_TTL)
        .await
        .map_err(|e| app_error(&request_id(&req), e))?;
    let cookie = Cookie::build(LOGIN_COOKIE, state_text.to_owned())
        .path("/auth")
        .http_only(true)
        .secure(state.auth.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(600))
        .finish();
    Ok(HttpResponse::SeeOther().insert_header((LOCATION, start.authorize_url)).cookie(cookie).finish())
}

fn provider_down(req: &HttpRequest, e: &auth::oidc::OidcError) -> ApiError {
    let request_id = request_id(req);
    tracing::warn!(request_id, error = %e, "OIDC provider unavailable");
    ApiError::Unavailable { request_id }
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback").field("error", &self.error).finish_non_exhaustive()
    }
}

/// A refused login: logged with its reason, shown as a sentence, pre-login cookie dropped.
fn refuse(state: &AppState, status: StatusCode, reason: &str, message: &str) -> HttpResponse {
    tracing::warn!(reason, "login refused");
    // The reason names the failed check (never a value): it helps the user report and the operator debug.
    let mut response = login_page(state, status, Some(&format!("{message} (reason: {reason})")));
    let mut gone = Cookie::build(LOGIN_COOKIE, "").path("/auth").finish();
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

/// `/auth/callback`: the provider sends the browser back here with a code.
pub(crate) async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Callback>,
) -> Result<HttpResponse, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound { what: "OIDC login" })?;
    let retry = "Signing in did not work; start again from the login page.";
    let Some(cookie) = req.cookie(LOGIN_COOKIE) else {
        return Ok(refuse(&state, StatusCode::BAD_REQUEST, "no_login_cookie", retry));
    };
    let Some(given) = query.state.as_deref() else {
        return Ok(refuse(&state, StatusCode::BAD_REQUEST, "no_state", retry));
    };
    if !constant_time_eq(given.as_bytes(), cookie.value().as_bytes()) {
        return Ok(refuse(&state, StatusCode::BAD_REQUEST, "state_mismatch", retry));
    }
    let pending =
        app::sessions::take_pending_login(&state.hub, given).await.map_err(|e| app_error(&request_id(&req), e))?;
    let Some(pending) = pending else {
        return Ok(refuse(&state, StatusCode::BAD_REQUEST, "state_unknown_used_or_expired", retry));
    };
    if let Some(error) = &query.error {
        let reason = format!(
            "provider_error:{}",
            error.chars().filter(char::is_ascii_alphanumeric).take(40).collect::<String>()
        );
        return Ok(refuse(&state, StatusCode::FORBIDDEN, &reason, "The identity provider did not sign you in."));
    }
    let Some(code) = query.code.clone() else {
        return Ok(refuse(&state, StatusCode::BAD_REQUEST, "no_code", retry));
    };
    let identity = match oidc.finish(&SecretString::from(code), &pending).await {
        Ok(identity) => identity,
        Err(e) if e.is_unavailable() => return Err(provider_down(&req, &e)),
        Err(e) => {
            tracing::warn!(check = e.code(), error = %e, "ID token refused");
            let message = match e {
                auth::oidc::OidcError::EmailUnverified => {
                    "Your email address is not verified by the identity provider."
                }
                auth::oidc::OidcError::DomainNotAllowed => "Accounts of your email domain may not sign in here.",
                _ => "The identity provider's answer could not be verified; sign-in refused.",
            };
            return Ok(refuse(&state, StatusCode::FORBIDDEN, e.code(), message));
        }
    };
    let user = match app::sessions::login_oidc(&state.hub, &identity, &origin(&req)).await {
        Ok(user) => user,
        Err(e) if e.is_client_error() => {
            return Ok(refuse(&state, StatusCode::FORBIDDEN, e.code(), &sentence(&e)));
        }
        Err(e) => return Err(internal(&request_id(&req), &e)),
    };
    session::begin(&req, user.id, Method::Oidc).map_err(|e| internal(&request_id(&req), &e))?;
    tracing::info!(user.id = %user.id, "signed in with OIDC");
    let mut response = see_other("/");
    let mut gone = Cookie::build(LOGIN_COOKIE, "").path("/auth").finish();
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    Ok(response)
}

fn sentence(e: &auth::login::LoginError) -> String {
    let mut text = e.to_string();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    email: String,
    password: String,
}

/// `POST /login/password` (only when password login is enabled).
pub(crate) async fn password(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.password_login {
        return Err(ApiError::NotFound { what: "password login" });
    }
    let PasswordForm { email, password } = form.into_inner();
    let account = email.trim().to_lowercase();
    let limited = client_ip(&req).is_some_and(|ip| state.auth.password_by_ip.check_key(&ip).is_err())
        || state.auth.password_by_account.check_key(&account).is_err();
    if limited {
        tracing::warn!("password login rate-limited");
        return Err(ApiError::TooManyRequests);
    }
    let origin = origin(&req);
    let user = match app::sessions::login_password(&state.hub, &account, SecretString::from(password), &origin).await {
        Ok(user) => user,
        Err(e) if e.is_client_error() => return Ok(refuse(&state, StatusCode::UNAUTHORIZED, e.code(), &sentence(&e))),
        Err(e) => return Err(internal(&request_id(&req), &e)),
    };
    session::begin(&req, user.id, Method::Password).map_err(|e| internal(&request_id(&req), &e))?;
    tracing::info!(user.id = %user.id, "signed in with a password");
    Ok(see_other("/"))
}

/// `POST /logout`: ends the session (server-side, so the cookie is worthless afterwards).
pub(crate) async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authed,
) -> Result<HttpResponse, ApiError> {
    let principal = caller.0;
    if principal.via != Via::Session {
        return Err(ApiError::bad_request(
            ErrorCode::NoSession,
            "API tokens have no session; revoke the token instead",
        ));
    }
    use actix_session::SessionExt;
    req.get_session().purge();
    app::sessions::logout(&state.hub, &principal.caller(&req)).await.map_err(|e| app_error(&request_id(&req), e))?;
    Ok(see_other("/login?error=signed_out"))
}
