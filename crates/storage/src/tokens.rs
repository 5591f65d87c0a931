//! API tokens: stored as a keyed hash, looked up by it.

use chrono::{DateTime, Utc};
use domain::ids::{TokenId, UserId};
use domain::model::{ApiToken, NewApiToken};
use uuid::Uuid;

use crate::convert::parse;
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    user_id: Uuid,
    name: String,
    token_prefix: String,
    scope: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for ApiToken {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(ApiToken {
            id: TokenId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            name: row.name,
            prefix: row.token_prefix,
            scope: parse("api_tokens.scope", &row.scope)?,
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

#[tracing::instrument(skip_all, fields(user.id = %new.user_id))]
pub async fn create(conn: &mut PgConnection, new: &NewApiToken) -> StorageResult<ApiToken> {
    sqlx::query_file_as!(
        Row,
        "../../sql/api_tokens/create.sql",
        TokenId::new().as_uuid(),
        new.user_id.as_uuid(),
        new.name,
        new.prefix,
        &new.hash[..],
        new.scope.as_str(),
        new.created_by.as_uuid(),
        new.expires_at,
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(token.id = %id))]
pub async fn get(conn: &mut PgConnection, id: TokenId) -> StorageResult<ApiToken> {
    sqlx::query_file_as!(Row, "../../sql/api_tokens/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("token"))?
        .try_into()
}

/// The token with this keyed hash, usable or not (the caller checks expiry and revocation), and the
/// stored hash, which the caller compares again in constant time.
#[tracing::instrument(skip_all)]
pub async fn find_by_hash(conn: &mut PgConnection, hash: &[u8; 32]) -> StorageResult<Option<(ApiToken, Vec<u8>)>> {
    let Some(r) = sqlx::query_file!("../../sql/api_tokens/find_by_hash.sql", &hash[..]).fetch_optional(conn).await?
    else {
        return Ok(None);
    };
    let row = Row {
        id: r.id,
        user_id: r.user_id,
        name: r.name,
        token_prefix: r.token_prefix,
        scope: r.scope,
        created_by: r.created_by,
        created_at: r.created_at,
        expires_at: r.expires_at,
        last_used_at: r.last_used_at,
        revoked_at: r.revoked_at,
    };
    Ok(Some((row.try_into()?, r.token_hash)))
}

/// A user's tokens, newest first.
#[tracing::instrument(skip_all, fields(user.id = %user))]
pub async fn list_for_user(
    conn: &mut PgConnection,
    user: UserId,
    page: &PageRequest<TokenId>,
) -> StorageResult<Page<ApiToken, TokenId>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/api_tokens/list_for_user.sql",
        user.as_uuid(),
        page.after.map(|t| t.as_uuid()),
        limit
    )
    .fetch_all(conn)
    .await?;
    let tokens = rows.into_iter().map(ApiToken::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(tokens, limit, |t| t.id))
}

/// Revokes a token (revoking twice keeps the first revocation time).
#[tracing::instrument(skip_all, fields(token.id = %id))]
pub async fn revoke(conn: &mut PgConnection, id: TokenId) -> StorageResult<ApiToken> {
    sqlx::query_file_as!(Row, "../../sql/api_tokens/revoke.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("token"))?
        .try_into()
}

/// Records that the token was used (at most one write a minute per token).
#[tracing::instrument(skip_all, fields(token.id = %id))]
pub async fn touch(conn: &mut PgConnection, id: TokenId) -> StorageResult<()> {
    sqlx::query_file!("../../sql/api_tokens/touch.sql", id.as_uuid()).execute(conn).await?;
    Ok(())
}
