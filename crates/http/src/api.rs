//! `/api/v1` resources of the identity side: the caller (`me`), API tokens and users.
//!
//! Who may reach each route is declared in `routes`; rules about particular objects (whose tokens, the
//! last admin) are `app::identity`'s, which the web pages call too. Every change is audited in its own
//! transaction. No response carries a secret except the one that creates a token, which shows it once.

// `#[utoipa::path(params(...))]` expands to paths the lint calls redundant.
#![allow(unused_qualifications)]

use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use chrono::{DateTime, Utc};
use domain::ErrorCode;
use domain::enums::{Role, TokenScope};
use domain::ids::{TokenId, UserId};
use domain::model::{ApiToken, User};
use domain::values::Email;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::dto::List;
use crate::error::{ApiError, app_error};
use crate::guard::{Authed, Via, request_id};
use crate::openapi::Errors;
use crate::startup::AppState;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDto {
    id: UserId,
    email: String,
    display_name: String,
    role: Role,
    disabled: bool,
    oidc_linked: bool,
    has_password: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id,
            email: u.email.as_str().to_owned(),
            display_name: u.display_name.as_str().to_owned(),
            role: u.role,
            disabled: u.disabled,
            oidc_linked: u.oidc_identity.is_some(),
            has_password: u.has_password,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenDto {
    id: TokenId,
    user_id: UserId,
    name: String,
    prefix: String,
    scope: TokenScope,
    created_by: UserId,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiToken> for TokenDto {
    fn from(t: &ApiToken) -> Self {
        TokenDto {
            id: t.id,
            user_id: t.user_id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scope: t.scope,
            created_by: t.created_by,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A refusal of an identity use case: a bad field value is a 400 here (as this API always answered),
/// the rest as everywhere else.
fn fail(req: &HttpRequest) -> impl FnOnce(AppError) -> ApiError + '_ {
    move |e| match e {
        AppError::Invalid { field: Some(_), code, message }
        | AppError::Invalid { field: None, code: code @ ErrorCode::EmptyPatch, message } => {
            ApiError::bad_request(code, message)
        }
        other => app_error(&request_id(req), other),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    user: UserDto,
    /// `session` or `token`.
    auth: String,
    /// The CSRF token to send as `X-CSRF-Token` with state-changing session requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// `GET /api/v1/me`.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, body = Me), Errors))]
pub(crate) async fn me(caller: Authed) -> HttpResponse {
    let p = &caller.0;
    let auth = match p.via {
        Via::Session => "session",
        Via::Token { .. } => "token",
    };
    HttpResponse::Ok().json(Me { user: (&p.user).into(), auth: auth.to_owned(), csrf_token: p.csrf.clone() })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenListQuery {
    /// Whose tokens (admins only); default the caller's.
    user_id: Option<UserId>,
    after: Option<TokenId>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /api/v1/tokens[?user_id=]`.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", params(TokenListQuery),
    responses((status = 200, body = List<TokenDto>), Errors))]
pub(crate) async fn list_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    query: web::Query<TokenListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = app::page(query.after, query.limit);
    let page =
        app::identity::list_tokens(&state.hub, &who.0.caller(&req), query.user_id, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, TokenDto::from)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    name: String,
    #[serde(default)]
    scope: Option<TokenScope>,
    /// Days until it expires (1 to 3650); omitted: 90 days.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created<'a> {
    #[serde(flatten)]
    token: TokenDto,
    /// The token itself: shown in this response only.
    token_value: &'a str,
}

/// `POST /api/v1/tokens`: a token for the caller, from a signed-in session only (a request made with a token
/// is refused with 403 `session_required`); there is no creating one for someone else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", request_body = NewToken,
    responses((status = 201, body = Created), Errors))]
pub(crate) async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input =
        app::identity::NewTokenInput { name: body.name, scope: body.scope, expires_in_days: body.expires_in_days };
    let created = app::identity::create_token(&state.hub, &who.0.caller(&req), &state.auth.token_key, input)
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(Created { token: (&created.token).into(), token_value: created.value.expose_secret() }))
}

/// `DELETE /api/v1/tokens/{id}`: revokes (the owner or an admin).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity", params(("id" = TokenId, Path)),
    responses((status = 200, body = TokenDto), Errors))]
pub(crate) async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TokenId>,
) -> Result<HttpResponse, ApiError> {
    let token = app::identity::revoke_token(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(TokenDto::from(&token)))
}

/// `GET /api/v1/users` (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "identity", params(crate::rest::PageParams),
    responses((status = 200, body = List<UserDto>), Errors))]
pub(crate) async fn list_users(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    query: web::Query<crate::rest::PageParams>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let after = query
        .after
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidAfter, format!("after: {e}")))?;
    let page = app::page(after, query.limit);
    let page = app::identity::list_users(&state.hub, &who.0.caller(&req), &page).await.map_err(fail(&req))?;
    let next = page.next.as_ref().map(|e| e.as_str().to_owned());
    Ok(HttpResponse::Ok().json(List { items: page.items.iter().map(UserDto::from).collect(), next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<Role>,
}

/// `POST /api/v1/users` (admins): pre-provisions an account; its first OIDC login with that email binds
/// to it.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", request_body = NewUserBody,
    responses((status = 201, body = UserDto), Errors))]
pub(crate) async fn create_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = app::identity::NewUserInput { email: body.email, display_name: body.display_name, role: body.role };
    let user = app::identity::create_user(&state.hub, &who.0.caller(&req), input).await.map_err(fail(&req))?;
    Ok(HttpResponse::Created().json(UserDto::from(&user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}` (admins): role and disabled flag. Disabling ends the user's sessions; the
/// last enabled admin can be neither demoted nor disabled.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "identity", params(("id" = UserId, Path)),
    request_body = UserPatch, responses((status = 200, body = UserDto), Errors))]
pub(crate) async fn update_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<UserId>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    let change = app::identity::UserChange { role: patch.role, disabled: patch.disabled };
    let user = app::identity::update_user(&state.hub, &who.0.caller(&req), *id, change).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}

/// The audit chain's newest row, to keep outside the hub (`audit verify --expect-head SEQ:HASH`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditHeadDto {
    /// The newest row's id (0 while the log is empty).
    sequence: i64,
    /// Its hash, 64 lower-case hex digits (`null` while the log is empty).
    hash: Option<String>,
}

/// `GET /api/v1/audit/head` (admins, as the audit log): the chain's newest row, as
/// `migrate-hub-server audit verify --expect-head SEQ:HASH` takes it to detect a cut tail.
#[utoipa::path(get, path = "/api/v1/audit/head", tag = "audit", responses((status = 200, body = AuditHeadDto), Errors))]
pub(crate) async fn audit_head(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
) -> Result<HttpResponse, ApiError> {
    let head = app::audit_log::head(&state.hub, &who.0.caller(&req)).await.map_err(fail(&req))?;
    let dto = match head {
        Some(head) => AuditHeadDto { sequence: head.sequence, hash: Some(hex::encode(head.hash)) },
        None => AuditHeadDto { sequence: 0, hash: None },
    };
    Ok(HttpResponse::Ok().json(dto))
}
