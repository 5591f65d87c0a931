//! The server binary's operator commands (`create-admin`, `set-password`, `rotate-key`): run by whoever
//! operates the hub, on the tool database directly, each in one transaction with its audit event. The
//! audit log names the command as a system actor (`label`, e.g. `migrate-hub-server create-admin`).

use audit::Action;
use auth::password::PasswordError;
use auth::secrets::{KeyRing, RotateError, Rotation};
use chrono::{Duration, Utc};
use domain::enums::{ActorKind, Role, TokenScope};
use domain::model::{AuditActor, NewUser, User};
use domain::values::{DisplayName, Email};
use secrecy::SecretString;
use serde_json::json;

use crate::error::db;
use crate::identity::{CreatedToken, issue_token};
use crate::{AppError, Hub, Origin, record_as};

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Rotate(#[from] RotateError),
}

fn system(label: &str) -> AuditActor {
    AuditActor { kind: ActorKind::System, user_id: None, label: label.to_owned() }
}

/// What `create-admin` made: the admin and their new token (whose value leaves the hub here, once).
#[derive(Debug)]
pub struct AdminReady {
    pub user: User,
    pub token: CreatedToken,
}

/// Makes `email` an enabled admin (creating the account, audited `user.created`, or promoting and enabling
/// it, audited `user.promoted`) and creates a write token for them that expires in `token_days`, audited
/// `token.created`: all in one transaction.
pub async fn create_admin(
    hub: &Hub,
    label: &str,
    key: &ring::hmac::Key,
    email: Email,
    token_days: u32,
) -> Result<AdminReady, OperatorError> {
    let actor = system(label);
    let origin = Origin::default();
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let user = match storage::users::find_by_email(&mut tx, &email).await.map_err(AppError::from)? {
        Some(user) => {
            let mut user = user;
            if user.role != Role::Admin {
                user = storage::users::set_role(&mut tx, user.id, Role::Admin).await.map_err(AppError::from)?;
            }
            if user.disabled {
                user = storage::users::set_disabled(&mut tx, user.id, false).await.map_err(AppError::from)?;
            }
            let details = json!({ "role": "admin", "enabled": true });
            record_as(&mut tx, hub, &actor, &origin, Action::UserPromoted, "user", user.id, details).await?;
            user
        }
        None => {
            let local = email.as_str().split('@').next().unwrap_or_default().to_owned();
            let display_name = DisplayName::parse(local)
                .map_err(|e| AppError::invalid("email", domain::ErrorCode::InvalidDisplayName, e.to_string()))?;
            let new = NewUser { email, display_name, role: Role::Admin, oidc_identity: None, password_hash: None };
            let user = storage::users::create(&mut tx, &new).await.map_err(AppError::from)?;
            let details = json!({ "email": user.email.as_str(), "role": "admin" });
            record_as(&mut tx, hub, &actor, &origin, Action::UserCreated, "user", user.id, details).await?;
            user
        }
    };
    let expires_at = Utc::now() + Duration::days(i64::from(token_days));
    let token =
        issue_token(&mut tx, hub, key, &actor, &origin, user.id, "create-admin".into(), TokenScope::Write, expires_at)
            .await?;
    tx.commit().await.map_err(db)?;
    Ok(AdminReady { user, token })
}

/// Sets the password of the user with `email` (hashed here) or, with `None`, removes it; audited
/// `user.password_set` or `user.password_cleared`. `NotFound` when no user has this email.
pub async fn set_password(
    hub: &Hub,
    label: &str,
    email: &Email,
    password: Option<SecretString>,
) -> Result<(User, Action), OperatorError> {
    let hash = match password {
        Some(password) => Some(auth::password::hash(password).await?),
        None => None,
    };
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let user = storage::users::find_by_email(&mut tx, email)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound { what: "user" })?;
    storage::users::set_password_hash(&mut tx, user.id, hash.as_deref()).await.map_err(AppError::from)?;
    let action = if hash.is_some() { Action::UserPasswordSet } else { Action::UserPasswordCleared };
    record_as(&mut tx, hub, &system(label), &Origin::default(), action, "user", user.id, json!({})).await?;
    tx.commit().await.map_err(db)?;
    Ok((user, action))
}

/// Reseals every target password under the current (last) key of `ring` (`auth::secrets::rotate`), then
/// audits `secrets.rotated` with the counts.
pub async fn rotate_keys(hub: &Hub, label: &str, ring: &KeyRing) -> Result<Rotation, OperatorError> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let rotation = auth::secrets::rotate(&mut conn, ring).await?;
    drop(conn);
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let details = json!({ "resealed": rotation.resealed, "changed_meanwhile": rotation.raced });
    record_as(
        &mut tx,
        hub,
        &system(label),
        &Origin::default(),
        Action::SecretsRotated,
        "master_key",
        ring.current_id(),
        details,
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(rotation)
}
