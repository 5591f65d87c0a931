//! `/api/v1` resources of the identity side: the caller (`me`), API tokens and users.
//!
//! Who may reach each route is declared in `routes`; rules about particular objects (whose tokens, the
//! last admin) are checked here with `domain::policy`. Every change is audited in its own transaction.
//! No response carries a secret except the one that creates a token, which shows it once.

// `#[utoipa::path(params(...))]` expands to paths the lint calls redundant.
#![allow(unused_qualifications)]

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use domain::enums::{Role, TokenScope};
use domain::ids::{TokenId, UserId};
use domain::model::{ApiToken, NewUser, User};
use domain::policy::may_administer;
use domain::values::{DisplayName, Email};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use storage::{PageRequest, StorageError};

use crate::dto::List;
use crate::error::{ApiError, internal};
use crate::guard::{Authed, Principal, Via, request_id};
use crate::login::client_ip;
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

/// Pagination parameters shared by list routes.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery<K> {
    after: Option<K>,
    limit: Option<u32>,
}

impl<K> PageQuery<K> {
    fn request(self) -> PageRequest<K> {
        PageRequest { after: self.after, limit: self.limit.unwrap_or(50).clamp(1, storage::MAX_PAGE) }
    }
}

fn storage_error(req: &HttpRequest, e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound(what) => ApiError::NotFound { what },
        StorageError::Invalid { constraint } if constraint == storage::TEXT_ENCODING => ApiError::Unprocessable {
            code: "invalid_text",
            message: "text must not contain NUL (\\u0000) characters".into(),
            field: None,
        },
        other => internal(&request_id(req), &other),
    }
}

async fn audit(
    tx: &mut storage::PgTransaction<'_>,
    req: &HttpRequest,
    principal: &Principal,
    action: &str,
    object_type: &str,
    object_id: String,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let event = audit::Event {
        actor: principal.audit_actor(),
        action: action.into(),
        object_type: object_type.into(),
        object_id: Some(object_id),
        details,
        ip: client_ip(req),
        user_agent: None,
    };
    audit::record(tx, &event).await.map(|_| ()).map_err(|e| internal(&request_id(req), &e))
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

/// Whose tokens the caller may see or manage: their own, or anyone's for an admin.
fn token_owner(p: &Principal, wanted: Option<UserId>) -> Result<UserId, ApiError> {
    match wanted {
        None => Ok(p.user.id),
        Some(id) if id == p.user.id => Ok(id),
        Some(id) => {
            may_administer(&p.actor()).map_err(|d| ApiError::forbidden(d.code(), d.to_string()))?;
            Ok(id)
        }
    }
}

/// `GET /api/v1/tokens[?user_id=]`.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", params(TokenListQuery),
    responses((status = 200, body = List<TokenDto>), Errors))]
pub(crate) async fn list_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authed,
    query: web::Query<TokenListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let owner = token_owner(&caller.0, query.user_id)?;
    let page = PageQuery { after: query.after, limit: query.limit }.request();
    let mut conn = state.pool.acquire().await.map_err(|e| internal(&request_id(&req), &e))?;
    let page = storage::tokens::list_for_user(&mut conn, owner, &page).await.map_err(|e| storage_error(&req, e))?;
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
    /// Whose token (admins only); omitted: the caller's.
    #[serde(default)]
    user_id: Option<UserId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created<'a> {
    #[serde(flatten)]
    token: TokenDto,
    /// The token itself: shown in this response only.
    token_value: &'a str,
}

/// Default lifetime of a token created without one.
const DEFAULT_TOKEN_DAYS: u32 = 90;

/// `POST /api/v1/tokens`.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", request_body = NewToken,
    responses((status = 201, body = Created), Errors))]
pub(crate) async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authed,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let p = &caller.0;
    let owner = token_owner(p, body.user_id)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_name", "the token name must be 1 to 100 characters"));
    }
    let days = body.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::bad_request("invalid_expiry", "expires_in_days must be between 1 and 3650"));
    }
    // A token can do no more than its creator's session: a read-only token cannot mint a writer.
    let scope = body.scope.unwrap_or(TokenScope::Write);
    let expires_at = Utc::now() + Duration::days(i64::from(days));
    let minted = auth::tokens::mint(&state.auth.token_key, owner, p.user.id, name, scope, Some(expires_at))
        .map_err(|e| internal(&request_id(&req), &e))?;
    let mut tx = state.pool.begin().await.map_err(|e| internal(&request_id(&req), &e))?;
    let owner_user = storage::users::get(&mut tx, owner).await.map_err(|e| storage_error(&req, e))?;
    if owner_user.disabled {
        return Err(ApiError::conflict("user_disabled", "tokens cannot be created for a disabled user"));
    }
    let token = storage::tokens::create(&mut tx, &minted.new).await.map_err(|e| storage_error(&req, e))?;
    let details = serde_json::json!({ "owner": owner, "name": token.name, "scope": scope, "expires_at": expires_at });
    audit(&mut tx, &req, p, "token.created", "api_token", token.id.to_string(), details).await?;
    tx.commit().await.map_err(|e| internal(&request_id(&req), &e))?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(Created { token: (&token).into(), token_value: minted.token.expose_secret() }))
}

/// `DELETE /api/v1/tokens/{id}`: revokes (the owner or an admin).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity", params(("id" = TokenId, Path)),
    responses((status = 200, body = TokenDto), Errors))]
pub(crate) async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authed,
    id: web::Path<TokenId>,
) -> Result<HttpResponse, ApiError> {
    let p = &caller.0;
    let mut tx = state.pool.begin().await.map_err(|e| internal(&request_id(&req), &e))?;
    let token = storage::tokens::get(&mut tx, *id).await.map_err(|e| storage_error(&req, e))?;
    if token.user_id != p.user.id && may_administer(&p.actor()).is_err() {
        // Someone else's token: not even its existence is confirmed.
        return Err(ApiError::NotFound { what: "token" });
    }
    let token = storage::tokens::revoke(&mut tx, token.id).await.map_err(|e| storage_error(&req, e))?;
    audit(
        &mut tx,
        &req,
        p,
        "token.revoked",
        "api_token",
        token.id.to_string(),
        serde_json::json!({ "owner": token.user_id }),
    )
    .await?;
    tx.commit().await.map_err(|e| internal(&request_id(&req), &e))?;
    Ok(HttpResponse::Ok().json(TokenDto::from(&token)))
}

/// `GET /api/v1/users` (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "identity", params(crate::rest::PageParams),
    responses((status = 200, body = List<UserDto>), Errors))]
pub(crate) async fn list_users(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<crate::rest::PageParams>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let after = query
        .after
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_after", format!("after: {e}")))?;
    let page = PageQuery { after, limit: query.limit }.request();
    let mut conn = state.pool.acquire().await.map_err(|e| internal(&request_id(&req), &e))?;
    let page = storage::users::list(&mut conn, &page).await.map_err(|e| storage_error(&req, e))?;
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
    caller: Authed,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = Email::parse(body.email.trim().to_lowercase())
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let name = body.display_name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or_default().to_owned());
    let display_name =
        DisplayName::parse(name).map_err(|e| ApiError::bad_request("invalid_display_name", e.to_string()))?;
    let role = body.role.unwrap_or(Role::User);
    let mut tx = state.pool.begin().await.map_err(|e| internal(&request_id(&req), &e))?;
    let new = NewUser { email, display_name, role, oidc_identity: None, password_hash: None };
    let user = match storage::users::create(&mut tx, &new).await {
        Ok(user) => user,
        Err(StorageError::Conflict { .. }) => {
            return Err(ApiError::conflict("email_taken", "a user with this email already exists"));
        }
        Err(e) => return Err(storage_error(&req, e)),
    };
    let details = serde_json::json!({ "email": user.email.as_str(), "role": role });
    audit(&mut tx, &req, &caller.0, "user.created", "user", user.id.to_string(), details).await?;
    tx.commit().await.map_err(|e| internal(&request_id(&req), &e))?;
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
    caller: Authed,
    id: web::Path<UserId>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    if patch.role.is_none() && patch.disabled.is_none() {
        return Err(ApiError::bad_request("empty_patch", "give `role`, `disabled` or both"));
    }
    let mut tx = state.pool.begin().await.map_err(|e| internal(&request_id(&req), &e))?;
    storage::users::lock_admins(&mut tx).await.map_err(|e| storage_error(&req, e))?;
    let before = storage::users::get(&mut tx, *id).await.map_err(|e| storage_error(&req, e))?;
    let mut user = before.clone();
    if let Some(role) = patch.role.filter(|r| *r != user.role) {
        user = storage::users::set_role(&mut tx, user.id, role).await.map_err(|e| storage_error(&req, e))?;
    }
    if let Some(disabled) = patch.disabled.filter(|d| *d != user.disabled) {
        user = storage::users::set_disabled(&mut tx, user.id, disabled).await.map_err(|e| storage_error(&req, e))?;
        if disabled {
            storage::sessions::delete_for_user(&mut tx, user.id).await.map_err(|e| storage_error(&req, e))?;
        }
    }
    let was_admin = before.role == Role::Admin && !before.disabled;
    let is_admin = user.role == Role::Admin && !user.disabled;
    if was_admin && !is_admin {
        let left = storage::users::count_active_admins(&mut tx).await.map_err(|e| storage_error(&req, e))?;
        if left == 0 {
            return Err(ApiError::conflict("last_admin", "the last enabled admin cannot be demoted or disabled"));
        }
    }
    let details = serde_json::json!({
        "role": { "from": before.role, "to": user.role },
        "disabled": { "from": before.disabled, "to": user.disabled },
    });
    audit(&mut tx, &req, &caller.0, "user.updated", "user", user.id.to_string(), details).await?;
    tx.commit().await.map_err(|e| internal(&request_id(&req), &e))?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
