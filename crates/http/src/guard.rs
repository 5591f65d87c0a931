//! The one guard every route passes: who is asking ([`Principal`]), whether the route's declared
//! [`Policy`] lets them, and, for browser requests that change state, the CSRF checks.
//!
//! - Credentials: `Authorization: Bearer <API token>` or the session cookie. A request that presents a
//!   token is judged by the token alone (a bad token is a 401 even with a valid session).
//! - The user is loaded on every request, so a disabled user or a changed role counts at once; a disabled
//!   user's session is ended.
//! - A read-scoped token may only use safe methods.
//! - A state-changing request authenticated by the session must carry the session's CSRF token (header
//!   `X-CSRF-Token` or form field `csrf_token`, compared in constant time) and come from the hub's own
//!   origin (`Origin`, else `Referer`). Token-authenticated calls are exempt: browsers never attach them.
//! - Rules about particular objects (may this user approve this run?) are decided by `domain::policy` in
//!   the handlers; this guard decides who may reach the route at all.

use std::future::{Ready, ready};

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN, REFERER};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use app::sessions::WhoError;
use domain::ErrorCode;
use domain::enums::{ActorKind, Role, TokenScope};
use domain::ids::TokenId;
use domain::model::{AuditActor, User};
use domain::policy::Actor;
use secrecy::SecretString;
use tracing_actix_web::RequestId;

use crate::error::{ApiError, internal};
use crate::startup::AppState;

/// Why a disabled user's request is refused (the web UI tells them so on the login page).
pub(crate) const DISABLED: &str = "this account is disabled";

/// Who may reach a route. Every route declares one (see `routes`); there is no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, signed in or not (health, login pages). State-changing public routes still need the
    /// hub's own `Origin`.
    Public,
    /// Any signed-in, enabled user.
    SignedIn,
    /// A user with at least this role.
    AtLeast(Role),
}

impl Policy {
    /// The least role that passes, `None` for public routes.
    pub fn least_role(self) -> Option<Role> {
        match self {
            Policy::Public => None,
            Policy::SignedIn => Some(Role::User),
            Policy::AtLeast(role) => Some(role),
        }
    }
}

/// How the principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    Token { id: TokenId, scope: TokenScope },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub via: Via,
    /// The session's CSRF token, for pages that render forms.
    pub(crate) csrf: Option<String>,
}

impl Principal {
    /// The caller as the domain rules see them.
    pub fn actor(&self) -> Actor {
        Actor { user_id: self.user.id, role: self.user.role }
    }

    /// The caller as the use cases of `app` take them: who, and where the request came from.
    pub fn caller(&self, req: &HttpRequest) -> app::Caller {
        app::Caller {
            actor: self.actor(),
            audit: self.audit_actor(),
            ip: crate::login::client_ip(req),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// The caller as the audit log records them.
    pub fn audit_actor(&self) -> AuditActor {
        let kind = match self.via {
            Via::Session => ActorKind::User,
            Via::Token { .. } => ActorKind::Token,
        };
        AuditActor { kind, user_id: Some(self.user.id), label: self.user.email.as_str().to_owned() }
    }
}

/// The caller of a route whose policy needs one: handlers take this extractor.
#[derive(Debug, Clone)]
pub struct Authed(pub Principal);

impl FromRequest for Authed {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Principal>().cloned().map(Authed).ok_or_else(|| {
            // Only reachable if a route needing a caller was declared public: a bug, not the caller's fault.
            let request_id = req.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
            tracing::error!(request_id, path = req.path(), "a handler needs a caller but its route is public");
            ApiError::Internal { request_id }
        }))
    }
}

/// The caller if there is one (public routes that behave differently when signed in).
#[derive(Debug, Clone)]
pub struct MaybeAuthed(pub Option<Principal>);

impl FromRequest for MaybeAuthed {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(MaybeAuthed(req.extensions().get::<Principal>().cloned())))
    }
}

pub(crate) fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware wrapped around every route, with that route's policy. A refusal is answered here as a
/// response (so the outer middleware, e.g. the security headers, still applies to it).
pub(crate) async fn enforce(
    policy: Policy,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match admit(policy, &mut req).await {
        Ok(()) => next.call(req).await.map(ServiceResponse::map_into_left_body),
        Err(refusal) if crate::web::wants_html(req.request()) => {
            let page = crate::web::error_page(&refusal, Some(&request_id(req.request())));
            Ok(req.into_response(page).map_into_right_body())
        }
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// Decides whether the request may reach its handler; on success the caller, if any, is in its extensions.
async fn admit(policy: Policy, req: &mut ServiceRequest) -> Result<(), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal { request_id: request_id(req.request()) })?;
    let principal = authenticate(&state, req.request()).await?;
    let safe = is_safe(req.method());
    match (policy.least_role(), &principal) {
        (None, _) => {}
        (Some(_), None) => return Err(ApiError::unauthenticated("sign in or present an API token")),
        (Some(least), Some(p)) => {
            domain::policy::has_role(&p.actor(), least).map_err(|d| ApiError::forbidden(d.code(), d.to_string()))?;
        }
    }
    if !safe {
        match principal.as_ref().map(|p| (p.via, p.csrf.as_deref())) {
            Some((Via::Token { scope: TokenScope::Read, .. }, _)) => {
                return Err(ApiError::forbidden(ErrorCode::ReadOnlyToken, "this API token may only read"));
            }
            Some((Via::Token { .. }, _)) => {}
            Some((Via::Session, csrf)) => {
                check_origin(&state, req.request())?;
                check_csrf_token(req, csrf).await?;
            }
            None => check_origin(&state, req.request())?,
        }
    }
    if let Some(principal) = principal {
        req.extensions_mut().insert(principal);
    }
    Ok(())
}

/// The caller, from a bearer token or the session; `None` when neither is presented.
async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Option<Principal>, ApiError> {
    if let Some(header) = req.headers().get(AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be `Bearer <API token>`"))?;
        let token = SecretString::from(token.trim().to_owned());
        return match app::sessions::authenticate_token(&state.hub, &state.auth.token_key, &token).await {
            Ok((token, user)) => {
                Ok(Some(Principal { user, via: Via::Token { id: token.id, scope: token.scope }, csrf: None }))
            }
            Err(WhoError::Refused(e)) => {
                tracing::info!(reason = %e, "API token refused");
                Err(ApiError::unauthenticated(e.to_string()))
            }
            Err(e) => Err(who_failed(req, &e)),
        };
    }
    let session = req.get_session();
    let Some(signed_in) = crate::session::signed_in(&session) else { return Ok(None) };
    let user = match app::sessions::session_user(&state.hub, signed_in.user).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            session.purge();
            return Ok(None);
        }
        Err(e) => return Err(who_failed(req, &e)),
    };
    if user.disabled {
        session.purge();
        return Err(ApiError::unauthenticated(DISABLED));
    }
    Ok(Some(Principal { user, via: Via::Session, csrf: Some(signed_in.csrf) }))
}

/// A failure to find out who is asking: 503 when the tool database gave no connection, else 500.
fn who_failed(req: &HttpRequest, error: &WhoError) -> ApiError {
    match error {
        WhoError::Unavailable(e) => unavailable(req, e.as_ref()),
        other => internal(&request_id(req), other),
    }
}

fn unavailable(req: &HttpRequest, error: &(dyn std::error::Error + 'static)) -> ApiError {
    let request_id = request_id(req);
    tracing::warn!(request_id, error = %crate::error::chain(error), "tool database unavailable");
    ApiError::Unavailable { request_id }
}

/// A state-changing browser request must come from the hub's own origin.
pub(crate) fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let expected = state.auth.origin.as_str();
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let same = match (header(ORIGIN), header(REFERER)) {
        (Some(origin), _) => origin.eq_ignore_ascii_case(expected),
        (None, Some(referer)) => {
            referer.len() > expected.len()
                && referer[..expected.len()].eq_ignore_ascii_case(expected)
                && referer.as_bytes()[expected.len()] == b'/'
        }
        (None, None) => false,
    };
    if same {
        Ok(())
    } else {
        Err(ApiError::forbidden(ErrorCode::BadOrigin, "state-changing requests must come from the hub's own pages"))
    }
}

/// Most bytes of a form body read to find its CSRF token.
const FORM_LIMIT: usize = 1 << 20;

async fn check_csrf_token(req: &mut ServiceRequest, expected: Option<&str>) -> Result<(), ApiError> {
    let refuse = || ApiError::forbidden(ErrorCode::Csrf, "missing or wrong CSRF token; reload the page and try again");
    let expected = expected.ok_or_else(refuse)?;
    if let Some(given) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if constant_time_eq(given.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(refuse()) };
    }
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if content_type.starts_with("multipart/form-data") {
        return check_multipart_csrf(req, &content_type, expected).await.map_err(|e| e.unwrap_or_else(refuse));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(refuse());
    }
    // Read the form, find the token, and put the body back for the handler.
    let (http_req, payload) = req.parts_mut();
    let body = web::Bytes::from_request(http_req, payload)
        .await
        .map_err(|_| ApiError::bad_request(ErrorCode::BodyTooLarge, "the form is too large"))?;
    if body.len() > FORM_LIMIT {
        return Err(ApiError::bad_request(ErrorCode::BodyTooLarge, "the form is too large"));
    }
    let given = url::form_urlencoded::parse(&body).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    req.set_payload(bytes_payload(body));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(refuse()),
    }
}

/// Most bytes of a multipart form (a directory upload) read to find its CSRF token.
pub(crate) const UPLOAD_LIMIT: usize = 16 << 20;

/// A multipart form's CSRF token is its `csrf_token` field: the body is read (at most [`UPLOAD_LIMIT`]
/// bytes), the field found, and the body put back for the handler. `Err(None)`: no or a wrong token.
async fn check_multipart_csrf(
    req: &mut ServiceRequest,
    content_type: &str,
    expected: &str,
) -> Result<(), Option<ApiError>> {
    let boundary = multipart_boundary(content_type).ok_or(None)?;
    let (http_req, payload) = req.parts_mut();
    let too_large = || {
        Some(ApiError::bad_request(
            ErrorCode::BodyTooLarge,
            format!("the upload is larger than {} MiB", UPLOAD_LIMIT >> 20),
        ))
    };
    let body = web::Payload::from_request(http_req, payload)
        .await
        .map_err(|_| too_large())?
        .to_bytes_limited(UPLOAD_LIMIT)
        .await
        .map_err(|_| too_large())?
        .map_err(|_| Some(ApiError::bad_request(ErrorCode::InvalidForm, "the upload was cut off")))?;
    let given = multipart_field(&body, &boundary, "csrf_token");
    req.set_payload(bytes_payload(body));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(None),
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type (quoted or not).
fn multipart_boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        (key.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The value of the plain field `name` in a multipart/form-data body (RFC 7578) as browsers write it: a
/// part whose only header is `Content-Disposition: form-data; name="<name>"`. Files and other fields are
/// skipped over, never interpreted.
fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<String> {
    let delimiter = format!("\r\n--{boundary}");
    let wanted = format!("content-disposition: form-data; name=\"{name}\"");
    // The first delimiter has no CRLF before it: read the body as if it had.
    let mut rest = body.strip_prefix(&delimiter.as_bytes()[2..])?;
    loop {
        let part = rest.strip_prefix(b"\r\n")?;
        let end = find(part, delimiter.as_bytes()).unwrap_or(part.len());
        let (content, next) = part.split_at(end);
        if let Some(blank) = find(content, b"\r\n\r\n")
            && std::str::from_utf8(&content[..blank]).is_ok_and(|h| h.trim().eq_ignore_ascii_case(&wanted))
        {
            return String::from_utf8(content[blank + 4..].to_vec()).ok();
        }
        rest = next.get(delimiter.len()..)?;
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bytes_payload(body: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(body);
    Payload::from(payload)
}

/// Equality whose time depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "------b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok-123\r\n\
        ------b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"m/001.sql\"\r\nContent-Type: \
        application/sql\r\n\r\nSELECT 1; -- name=\"csrf_token\"\r\n------b--\r\n";

    #[test]
    fn a_multipart_form_gives_its_csrf_field_and_nothing_else() {
        assert_eq!(multipart_boundary("multipart/form-data; boundary=----b").as_deref(), Some("----b"));
        assert_eq!(multipart_boundary("multipart/form-data; boundary=\"----b\"").as_deref(), Some("----b"));
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_field(BODY.as_bytes(), "----b", "csrf_token").as_deref(), Some("tok-123"));
        // A file whose content mentions the field is not the field; a missing field is none.
        let only_file = BODY.replacen("name=\"csrf_token\"\r\n\r\ntok-123", "name=\"other\"\r\n\r\nx", 1);
        assert_eq!(multipart_field(only_file.as_bytes(), "----b", "csrf_token"), None);
        assert_eq!(multipart_field(BODY.as_bytes(), "----other", "csrf_token"), None);
        assert_eq!(multipart_field(b"", "----b", "csrf_token"), None);
    }
}
