//! Users and API tokens: listing, pre-provisioning and changing users (admins), and each person's tokens.
//!
//! The rules: only admins see or change users; the last enabled admin can be neither demoted nor disabled
//! (checked under a lock on the admins, so two concurrent demotions cannot both pass); disabling a user
//! ends their sessions in the same transaction. A token belongs to its owner: anyone lists and revokes their
//! own, admins anyone's, and someone else's token is not even confirmed to exist. A token is created only by
//! its owner, from a signed-in session (`domain::policy::may_create_token`): an admin minting one for a
//! manager could approve their own runs as that manager, and a token minting tokens could outlive its own
//! expiry, scope and revocation. A refused creation is audited (`token.create_refused`). A token's value is
//! returned once, by [`create_token`], and stored only as a MAC.

use audit::Action;
use chrono::{DateTime, Duration, Utc};
use domain::ErrorCode;
use domain::enums::{Role, TokenScope};
use domain::ids::{TokenId, UserId};
use domain::model::{ApiToken, AuditActor, NewUser, User};
use domain::policy::{may_administer, may_create_token};
use domain::values::{DisplayName, Email};
use secrecy::SecretString;
use serde_json::json;
use storage::{Page, PageRequest, PgTransaction, StorageError};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, Origin, record, record_as};

/// Default lifetime of a token created without one, in days.
pub const DEFAULT_TOKEN_DAYS: u32 = 90;
/// Longest lifetime of a token, in days.
pub const MAX_TOKEN_DAYS: u32 = 3650;

// --- users ---

/// All users by email (admins).
pub async fn list_users(hub: &Hub, caller: &Caller, page: &PageRequest<Email>) -> AppResult<Page<User, Email>> {
    may_administer(&caller.actor)?;
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::users::list(&mut conn, page).await?)
}

/// A user to pre-provision: their first OIDC login with that email binds to the account.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    pub email: String,
    /// Omitted: the part of the email before `@`.
    pub display_name: Option<String>,
    /// Omitted: `user`.
    pub role: Option<Role>,
}

/// Pre-provisions a user (admins); audited as `user.created`.
pub async fn create_user(hub: &Hub, caller: &Caller, input: NewUserInput) -> AppResult<User> {
    may_administer(&caller.actor)?;
    let email = Email::parse(input.email.trim().to_lowercase())
        .map_err(|e| AppError::invalid("email", ErrorCode::InvalidEmail, e.to_string()))?;
    let name = input.display_name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or_default().to_owned());
    let display_name = DisplayName::parse(name)
        .map_err(|e| AppError::invalid("display_name", ErrorCode::InvalidDisplayName, e.to_string()))?;
    let role = input.role.unwrap_or(Role::User);
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let new = NewUser { email, display_name, role, oidc_identity: None, password_hash: None };
    let user = match storage::users::create(&mut tx, &new).await {
        Ok(user) => user,
        Err(StorageError::Conflict { .. }) => {
            return Err(AppError::conflict(ErrorCode::EmailTaken, "a user with this email already exists"));
        }
        Err(e) => return Err(e.into()),
    };
    let details = json!({ "email": user.email.as_str(), "role": role });
    record(&mut tx, hub, caller, Action::UserCreated, "user", user.id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(user)
}

/// Changes to a user; absent fields keep their value.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// Changes a user's role and disabled flag (admins); audited as `user.updated`. Disabling ends the user's
/// sessions; the last enabled admin can be neither demoted nor disabled (409 `last_admin`).
pub async fn update_user(hub: &Hub, caller: &Caller, id: UserId, change: UserChange) -> AppResult<User> {
    may_administer(&caller.actor)?;
    if change.role.is_none() && change.disabled.is_none() {
        return Err(AppError::Invalid {
            field: None,
            code: ErrorCode::EmptyPatch,
            message: "give `role`, `disabled` or both".into(),
        });
    }
    let mut tx = hub.pool.begin().await.map_err(db)?;
    storage::users::lock_admins(&mut tx).await?;
    let before = storage::users::get(&mut tx, id).await?;
    let mut user = before.clone();
    if let Some(role) = change.role.filter(|r| *r != user.role) {
        user = storage::users::set_role(&mut tx, user.id, role).await?;
    }
    if let Some(disabled) = change.disabled.filter(|d| *d != user.disabled) {
        user = storage::users::set_disabled(&mut tx, user.id, disabled).await?;
        if disabled {
            storage::sessions::delete_for_user(&mut tx, user.id).await?;
        }
    }
    let was_admin = before.role == Role::Admin && !before.disabled;
    let is_admin = user.role == Role::Admin && !user.disabled;
    if was_admin && !is_admin && storage::users::count_active_admins(&mut tx).await? == 0 {
        return Err(AppError::conflict(ErrorCode::LastAdmin, "the last enabled admin cannot be demoted or disabled"));
    }
    let details = json!({
        "role": { "from": before.role, "to": user.role },
        "disabled": { "from": before.disabled, "to": user.disabled },
    });
    record(&mut tx, hub, caller, Action::UserUpdated, "user", user.id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(user)
}

// --- tokens ---

/// Whose tokens the caller may see or manage: their own, or anyone's for an admin.
fn token_owner(caller: &Caller, wanted: Option<UserId>) -> AppResult<UserId> {
    match wanted {
        None => Ok(caller.actor.user_id),
        Some(id) if id == caller.actor.user_id => Ok(id),
        Some(id) => {
            may_administer(&caller.actor)?;
            Ok(id)
        }
    }
}

/// The tokens of `owner` (default the caller), newest first; someone else's only for an admin.
pub async fn list_tokens(
    hub: &Hub,
    caller: &Caller,
    owner: Option<UserId>,
    page: &PageRequest<TokenId>,
) -> AppResult<Page<ApiToken, TokenId>> {
    let owner = token_owner(caller, owner)?;
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::tokens::list_for_user(&mut conn, owner, page).await?)
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewTokenInput {
    pub name: String,
    /// Omitted: `write`.
    pub scope: Option<TokenScope>,
    /// Days until it expires, 1 to [`MAX_TOKEN_DAYS`]; omitted: [`DEFAULT_TOKEN_DAYS`].
    pub expires_in_days: Option<u32>,
}

/// A token just created, with its value: the only time the value leaves the hub.
pub struct CreatedToken {
    pub token: ApiToken,
    pub value: SecretString,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken").field("token", &self.token).finish_non_exhaustive()
    }
}

/// Creates a token for the caller, who must be signed in with a session (not a token); audited as
/// `token.created`, a refusal as `token.create_refused`.
pub async fn create_token(
    hub: &Hub,
    caller: &Caller,
    key: &ring::hmac::Key,
    input: NewTokenInput,
) -> AppResult<CreatedToken> {
    if let Err(denial) = may_create_token(&caller.actor, caller.audit.kind) {
        let error = AppError::from(denial);
        record_refusal(hub, caller, &error).await;
        return Err(error);
    }
    let owner = caller.actor.user_id;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid("name", ErrorCode::InvalidName, "the token name must be 1 to 100 characters"));
    }
    let days = input.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(AppError::invalid(
            "expires_in_days",
            ErrorCode::InvalidExpiry,
            format!("expires_in_days must be between 1 and {MAX_TOKEN_DAYS}"),
        ));
    }
    let scope = input.scope.unwrap_or(TokenScope::Write);
    let expires_at = Utc::now() + Duration::days(i64::from(days));
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let owner_user = storage::users::get(&mut tx, owner).await?;
    if owner_user.disabled {
        return Err(AppError::conflict(ErrorCode::UserDisabled, "tokens cannot be created for a disabled user"));
    }
    let created =
        issue_token(&mut tx, hub, key, &caller.audit, &caller.origin(), owner, name, scope, expires_at).await?;
    tx.commit().await.map_err(db)?;
    Ok(created)
}

/// Mints a token for `owner`, who creates it themself (`auth::tokens::mint`), stores its MAC and audits
/// `token.created` as `actor`, inside the caller's transaction: the one place a token is made, for the
/// API and the web UI ([`create_token`]) and for the operator's `create-admin`.
#[allow(clippy::too_many_arguments)] // each is a different fact of the token or its audit event
pub(crate) async fn issue_token(
    tx: &mut PgTransaction<'_>,
    hub: &Hub,
    key: &ring::hmac::Key,
    actor: &AuditActor,
    origin: &Origin,
    owner: UserId,
    name: String,
    scope: TokenScope,
    expires_at: DateTime<Utc>,
) -> AppResult<CreatedToken> {
    let minted = auth::tokens::mint(key, owner, owner, name, scope, Some(expires_at))
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    let token = storage::tokens::create(tx, &minted.new).await?;
    let details = json!({ "owner": owner, "name": token.name, "scope": scope, "expires_at": expires_at });
    record_as(tx, hub, actor, origin, Action::TokenCreated, "api_token", token.id, details).await?;
    Ok(CreatedToken { token, value: minted.token })
}

/// Records a refused token creation in a transaction of its own. A failure to record is logged, not
/// returned: the caller still gets the refusal.
async fn record_refusal(hub: &Hub, caller: &Caller, error: &AppError) {
    let result = async {
        let mut tx = hub.pool.begin().await.map_err(db)?;
        let details = json!({ "reason": error.code().as_str(), "message": error.to_string() });
        record(&mut tx, hub, caller, Action::TokenCreateRefused, "user", caller.actor.user_id, details).await?;
        tx.commit().await.map_err(db)
    }
    .await;
    if let Err(e) = result {
        let error = auth::error_chain(&e);
        tracing::warn!(user.id = %caller.actor.user_id, %error, "could not audit a refused token creation");
    }
}

/// Revokes a token (its owner or an admin); audited as `token.revoked`. Someone else's token is
/// `NotFound` for a non-admin, so its existence is not confirmed.
pub async fn revoke_token(hub: &Hub, caller: &Caller, id: TokenId) -> AppResult<ApiToken> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let token = storage::tokens::get(&mut tx, id).await?;
    if token.user_id != caller.actor.user_id && may_administer(&caller.actor).is_err() {
        return Err(AppError::NotFound { what: "token" });
    }
    let token = storage::tokens::revoke(&mut tx, token.id).await?;
    record(&mut tx, hub, caller, Action::TokenRevoked, "api_token", token.id, json!({ "owner": token.user_id }))
        .await?;
    tx.commit().await.map_err(db)?;
    Ok(token)
}
