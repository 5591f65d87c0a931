//! Users: people who log in (OIDC or password) and own tokens.

use chrono::{DateTime, Utc};
use domain::enums::Role;
use domain::ids::UserId;
use domain::model::{NewUser, OidcIdentity, User};
use domain::values::{DisplayName, Email};
use uuid::Uuid;

use crate::convert::parse;
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    email: String,
    display_name: String,
    oidc_issuer: Option<String>,
    oidc_subject: Option<String>,
    has_password: bool,
    role: String,
    disabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for User {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let oidc_identity = match (row.oidc_issuer, row.oidc_subject) {
            (Some(issuer), Some(subject)) => Some(OidcIdentity { issuer, subject }),
            _ => None,
        };
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: parse("users.email", &row.email)?,
            display_name: parse("users.display_name", &row.display_name)?,
            role: parse("users.role", &row.role)?,
            disabled: row.disabled,
            oidc_identity,
            has_password: row.has_password,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_login_at: row.last_login_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(user.role = %new.role))]
pub async fn create(conn: &mut PgConnection, new: &NewUser) -> StorageResult<User> {
    let (issuer, subject) = match &new.oidc_identity {
        Some(identity) => (Some(identity.issuer.as_str()), Some(identity.subject.as_str())),
        None => (None, None),
    };
    sqlx::query_file_as!(
        Row,
        "../../sql/users/create.sql",
        UserId::new().as_uuid(),
        new.email.as_str(),
        new.display_name.as_str(),
        issuer,
        subject,
        new.password_hash.as_deref(),
        new.role.as_str(),
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(user.id = %id))]
pub async fn get(conn: &mut PgConnection, id: UserId) -> StorageResult<User> {
    sqlx::query_file_as!(Row, "../../sql/users/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("user"))?
        .try_into()
}

#[tracing::instrument(skip_all)]
pub async fn find_by_email(conn: &mut PgConnection, email: &Email) -> StorageResult<Option<User>> {
    sqlx::query_file_as!(Row, "../../sql/users/find_by_email.sql", email.as_str())
        .fetch_optional(conn)
        .await?
        .map(User::try_from)
        .transpose()
}

#[tracing::instrument(skip_all)]
pub async fn find_by_oidc(conn: &mut PgConnection, identity: &OidcIdentity) -> StorageResult<Option<User>> {
    sqlx::query_file_as!(Row, "../../sql/users/find_by_oidc.sql", identity.issuer, identity.subject)
        .fetch_optional(conn)
        .await?
        .map(User::try_from)
        .transpose()
}

/// Users ordered by email; the page key is the last email.
#[tracing::instrument(skip_all)]
pub async fn list(conn: &mut PgConnection, page: &PageRequest<Email>) -> StorageResult<Page<User, Email>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(Row, "../../sql/users/list.sql", page.after.as_ref().map(Email::as_str), limit)
        .fetch_all(conn)
        .await?;
    let users = rows.into_iter().map(User::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(users, limit, |u| u.email.clone()))
}

#[tracing::instrument(skip_all, fields(user.id = %id, user.role = %role))]
pub async fn set_role(conn: &mut PgConnection, id: UserId, role: Role) -> StorageResult<User> {
    sqlx::query_file_as!(Row, "../../sql/users/set_role.sql", id.as_uuid(), role.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("user"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(user.id = %id, disabled))]
pub async fn set_disabled(conn: &mut PgConnection, id: UserId, disabled: bool) -> StorageResult<User> {
    sqlx::query_file_as!(Row, "../../sql/users/set_disabled.sql", id.as_uuid(), disabled)
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("user"))?
        .try_into()
}

/// Records a login: binds the OIDC identity if the user has none yet and refreshes the display name.
#[tracing::instrument(skip_all, fields(user.id = %id))]
pub async fn record_login(
    conn: &mut PgConnection,
    id: UserId,
    identity: Option<&OidcIdentity>,
    display_name: &DisplayName,
) -> StorageResult<User> {
    sqlx::query_file_as!(
        Row,
        "../../sql/users/record_login.sql",
        id.as_uuid(),
        identity.map(|i| i.issuer.as_str()),
        identity.map(|i| i.subject.as_str()),
        display_name.as_str(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("user"))?
    .try_into()
}

/// The argon2 hash of an enabled user with a password, for password login.
#[tracing::instrument(skip_all)]
pub async fn password_hash(conn: &mut PgConnection, email: &Email) -> StorageResult<Option<(UserId, String)>> {
    let row = sqlx::query_file!("../../sql/users/password_hash.sql", email.as_str()).fetch_optional(conn).await?;
    Ok(row.map(|r| (UserId::from_uuid(r.id), r.password_hash)))
}

#[tracing::instrument(skip_all, fields(user.id = %id))]
pub async fn set_password_hash(conn: &mut PgConnection, id: UserId, hash: Option<&str>) -> StorageResult<()> {
    let done = sqlx::query_file!("../../sql/users/set_password_hash.sql", id.as_uuid(), hash).execute(conn).await?;
    if done.rows_affected() == 0 {
        return Err(StorageError::NotFound("user"));
    }
    Ok(())
}

/// Enabled admins: the last one must not be demoted or disabled.
#[tracing::instrument(skip_all)]
pub async fn count_active_admins(conn: &mut PgConnection) -> StorageResult<u64> {
    let count = sqlx::query_file_scalar!("../../sql/users/count_admins.sql").fetch_one(conn).await?;
    crate::convert::unsigned("count", count)
}

/// Locks the enabled admins (in a transaction) before a change that could leave none.
#[tracing::instrument(skip_all)]
pub async fn lock_admins(tx: &mut crate::PgTransaction<'_>) -> StorageResult<()> {
    sqlx::query_file!("../../sql/users/lock_admins.sql").fetch_all(&mut **tx).await?;
    Ok(())
}

/// The display names and emails of the given users; ids that do not exist are left out.
#[tracing::instrument(skip_all, fields(users = ids.len()))]
pub async fn names(conn: &mut PgConnection, ids: &[UserId]) -> StorageResult<Vec<(UserId, DisplayName, Email)>> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
    let rows = sqlx::query_file!("../../sql/users/names.sql", &ids).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                UserId::from_uuid(r.id),
                parse("users.display_name", &r.display_name)?,
                parse("users.email", &r.email)?,
            ))
        })
        .collect()
}
