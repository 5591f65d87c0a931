//! Turning a proven identity into a signed-in user: the account rules of SPEC §7.
//!
//! - Users are keyed by the OIDC pair (issuer, subject). A first login with an email an admin
//!   pre-provisioned binds that account to the identity; any other first login creates a `user`.
//! - An email already bound to another identity is refused (a provider reusing an address must not hand
//!   the old owner's account to a new person).
//! - Disabled users cannot log in, by any method.
//!
//! These functions work inside the caller's transaction and write no audit event: the sign-in use cases
//! (`app::sessions`) open the transaction, audit the login in it and commit.

use domain::enums::Role;
use domain::model::{NewUser, OidcIdentity, User};
use domain::values::{DisplayName, Email};
use secrecy::SecretString;
use storage::PgTransaction;

use crate::oidc::Identity;

/// A user who has just signed in, and whether this login created their account.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub account_created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("this account is disabled")]
    Disabled,
    #[error("this email address belongs to an account linked to another sign-in identity")]
    IdentityConflict,
    #[error("the identity provider's profile has no usable name or email")]
    Profile,
    #[error("wrong email or password")]
    BadCredentials,
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

impl LoginError {
    /// A short stable name for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Disabled => "user_disabled",
            LoginError::IdentityConflict => "identity_conflict",
            LoginError::BadCredentials => "bad_credentials",
            LoginError::Profile => "profile",
            LoginError::Password(_) | LoginError::Storage(_) | LoginError::Audit(_) => "internal",
        }
    }

    /// Whether the failure is the caller's (4xx) rather than ours.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            LoginError::Disabled | LoginError::IdentityConflict | LoginError::BadCredentials | LoginError::Profile
        )
    }
}

/// A display name from the provider's `name`, or the email's local part.
fn display_name(name: Option<&str>, email: &Email) -> Result<DisplayName, LoginError> {
    let local: String = email.as_str().split('@').next().unwrap_or_default().chars().take(200).collect();
    name.and_then(|n| DisplayName::parse(n.trim().chars().take(200).collect::<String>()).ok())
        .or_else(|| DisplayName::parse(local).ok())
        .ok_or(LoginError::Profile)
}

/// Signs in (and on first login, creates or binds) the user an OIDC identity belongs to.
pub async fn oidc(tx: &mut PgTransaction<'_>, identity: &Identity) -> Result<SignedIn, LoginError> {
    let pair = OidcIdentity { issuer: identity.issuer.clone(), subject: identity.subject.clone() };
    let name = display_name(identity.name.as_deref(), &identity.email)?;
    let (user, created) = match storage::users::find_by_oidc(tx, &pair).await? {
        Some(user) => (user, false),
        None => match storage::users::find_by_email(tx, &identity.email).await? {
            Some(user) if user.oidc_identity.is_some() => return Err(LoginError::IdentityConflict),
            Some(user) => (user, false),
            None => {
                let new = NewUser {
                    email: identity.email.clone(),
                    display_name: name.clone(),
                    role: Role::User,
                    oidc_identity: Some(pair.clone()),
                    password_hash: None,
                };
                (storage::users::create(tx, &new).await?, true)
            }
        },
    };
    if user.disabled {
        return Err(LoginError::Disabled);
    }
    let user = storage::users::record_login(tx, user.id, Some(&pair), &name).await?;
    Ok(SignedIn { user, account_created: created })
}

/// Signs in with email and password (when password login is enabled). The work done is the same whether
/// or not the email exists.
pub async fn password(tx: &mut PgTransaction<'_>, email: &str, password: SecretString) -> Result<SignedIn, LoginError> {
    let email = Email::parse(email.trim().to_lowercase()).ok();
    let stored = match &email {
        Some(email) => storage::users::password_hash(tx, email).await?,
        None => None,
    };
    let (id, hash) = match stored {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let ok = crate::password::verify(hash, password).await?;
    let Some(id) = id.filter(|_| ok) else { return Err(LoginError::BadCredentials) };
    let user = storage::users::get(tx, id).await?;
    if user.disabled {
        return Err(LoginError::Disabled);
    }
    let user = storage::users::record_login(tx, user.id, None, &user.display_name).await?;
    Ok(SignedIn { user, account_created: false })
}
